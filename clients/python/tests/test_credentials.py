"""Client credentials (issue 17): the token travels as ``authorization: Bearer <token>`` and TLS
(and mutual TLS) is really used. A small gRPC server in the test, with a CA and certificates made
here, records what each call brought: the metadata and the TLS peer."""

import concurrent.futures
import datetime
import ipaddress

import grpc
import pytest
import torch

import roadless.torch as rt
from roadless import ClientOptions, OptimizerClient, credentials, errors
from roadless.optimizer.v1 import optimizer_service_pb2 as pb

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

SERVICE = "roadless.optimizer.v1.OptimizerService"
NO_RETRY = ClientOptions(retry_for=0, deadline=10)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn, key, issuer_cn, issuer_key, ca=False, server=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(issuer_cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(obj):
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for localhost/127.0.0.1, a client certificate, and a second
    CA that signed nothing here: PEM files."""
    d = tmp_path_factory.mktemp("pki")
    files = {}
    for ca_name in ("ca", "other-ca"):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("roadless test " + ca_name, ca_key, "roadless test " + ca_name, ca_key, ca=True)
        files[ca_name] = (ca, ca_key)
    ca, ca_key = files["ca"]
    out = {"ca": d / "ca.pem", "other_ca": d / "other-ca.pem"}
    out["ca"].write_bytes(_pem(ca))
    out["other_ca"].write_bytes(_pem(files["other-ca"][0]))
    for who, server in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert("roadless-test-" + who, key, "roadless test ca", ca_key, server=server)
        out[who + "_cert"], out[who + "_key"] = d / (who + ".pem"), d / (who + ".key")
        out[who + "_cert"].write_bytes(_pem(cert))
        out[who + "_key"].write_bytes(_pem(key))
    return out


class Recorder:
    """Answers ListRuns with ["seen"], refuses every other method (UNIMPLEMENTED), and records
    each call's method, metadata and TLS peer."""

    def __init__(self):
        self.calls = []

    def _record(self, method, context):
        auth = context.auth_context()
        self.calls.append({
            "method": method,
            "metadata": dict(context.invocation_metadata()),
            "tls": auth.get("transport_security_type") == [b"ssl"],
            "client_cn": (auth.get("x509_common_name") or [b""])[0].decode(),
        })

    def service(self, details):
        method = details.method.rsplit("/", 1)[-1]
        if method == "ListRuns":
            def list_runs(request, context):
                self._record(method, context)
                return pb.ListRunsResponse(run_ids=["seen"])
            return grpc.unary_unary_rpc_method_handler(
                list_runs, request_deserializer=pb.ListRunsRequest.FromString,
                response_serializer=pb.ListRunsResponse.SerializeToString)

        def refuse(request, context):
            self._record(method, context)
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this test server")
        return grpc.unary_unary_rpc_method_handler(refuse)


def start_server(pki=None, client_auth=False):
    recorder = Recorder()
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))

    class Generic(grpc.GenericRpcHandler):
        def service(self, details):
            return recorder.service(details) if details.method.startswith("/" + SERVICE) else None

    server.add_generic_rpc_handlers((Generic(),))
    if pki is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        creds = grpc.ssl_server_credentials(
            [(pki["server_key"].read_bytes(), pki["server_cert"].read_bytes())],
            root_certificates=pki["ca"].read_bytes() if client_auth else None,
            require_client_auth=client_auth)
        port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    return server, port, recorder


@pytest.fixture
def clean_env(monkeypatch):
    for k in ("ROADLESS_TOKEN", "ROADLESS_TLS_CA_FILE", "ROADLESS_TLS_CERT_FILE",
              "ROADLESS_TLS_KEY_FILE", "ROADLESS_PLAINTEXT"):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_tls_withToken_serverSeesTlsAndBearerHeader(pki, clean_env):
    server, port, rec = start_server(pki)
    try:
        with OptimizerClient("localhost:%d" % port, options=NO_RETRY, token="s3cret-token",
                             tls_ca_file=str(pki["ca"])) as c:
            assert c.list_runs() == ["seen"]
        call = rec.calls[-1]
        assert call["tls"] and call["metadata"]["authorization"] == "Bearer s3cret-token"
        assert call["client_cn"] == ""
    finally:
        server.stop(0)


def test_mutualTls_clientCertificatePresented_andRequired(pki, clean_env):
    server, port, rec = start_server(pki, client_auth=True)
    try:
        target = "127.0.0.1:%d" % port
        with OptimizerClient(target, options=NO_RETRY, token="t", tls_ca_file=str(pki["ca"]),
                             tls_cert_file=str(pki["client_cert"]),
                             tls_key_file=str(pki["client_key"])) as c:
            assert c.list_runs() == ["seen"]
        assert rec.calls[-1]["client_cn"] == "roadless-test-client"
        assert rec.calls[-1]["metadata"]["authorization"] == "Bearer t"
        # Without a client certificate the handshake fails and no call arrives.
        before = len(rec.calls)
        with OptimizerClient(target, options=NO_RETRY, tls_ca_file=str(pki["ca"])) as c:
            with pytest.raises(errors.RoadlessError) as e:
                c.list_runs()
        assert e.value.code == grpc.StatusCode.UNAVAILABLE
        assert len(rec.calls) == before
    finally:
        server.stop(0)


def test_tls_serverFromAnotherCa_refusedBeforeAnyCall(pki, clean_env):
    server, port, rec = start_server(pki)
    try:
        with OptimizerClient("localhost:%d" % port, options=NO_RETRY, token="never-sent",
                             tls_ca_file=str(pki["other_ca"])) as c:
            with pytest.raises(errors.RoadlessError) as e:
                c.list_runs()
        assert e.value.code == grpc.StatusCode.UNAVAILABLE
        assert rec.calls == []
    finally:
        server.stop(0)


def test_environment_tokenAndCa_usedByTheDropInOptimizer(pki, clean_env):
    clean_env.setenv("ROADLESS_TOKEN", "from-env")
    clean_env.setenv("ROADLESS_TLS_CA_FILE", str(pki["ca"]))
    server, port, rec = start_server(pki)
    try:
        model = torch.nn.Linear(2, 1)
        # The test server refuses CreateRun; what matters is what the call carried.
        with pytest.raises(errors.RoadlessError):
            rt.SGDScheduleFree(model.named_parameters(), target="localhost:%d" % port,
                               run_id="creds", options=NO_RETRY)
        assert rec.calls[-1]["method"] == "CreateRun"
        assert rec.calls[-1]["tls"]
        assert rec.calls[-1]["metadata"]["authorization"] == "Bearer from-env"
        # An argument wins over the environment.
        with pytest.raises(errors.RoadlessError):
            rt.SGDScheduleFree(model.named_parameters(), target="localhost:%d" % port,
                               run_id="creds", options=NO_RETRY, token="from-arg")
        assert rec.calls[-1]["metadata"]["authorization"] == "Bearer from-arg"
    finally:
        server.stop(0)


def test_loopbackWithoutTlsSettings_plaintext_tokenStillSent(clean_env):
    server, port, rec = start_server()
    try:
        with OptimizerClient("127.0.0.1:%d" % port, options=NO_RETRY, token="loop") as c:
            assert c.list_runs() == ["seen"]
        assert not rec.calls[-1]["tls"]
        assert rec.calls[-1]["metadata"]["authorization"] == "Bearer loop"
        with OptimizerClient("127.0.0.1:%d" % port, options=NO_RETRY) as c:
            c.list_runs()
        assert "authorization" not in rec.calls[-1]["metadata"]
    finally:
        server.stop(0)


def test_security_plaintextOnlyWhenExplicitOrLoopback(clean_env):
    none = credentials.Settings.resolve()
    assert credentials.security("localhost:50051", none) == "plaintext"
    assert credentials.security("127.0.0.1:50051", none) == "plaintext"
    assert credentials.security("[::1]:50051", none) == "plaintext"
    assert credentials.security("unix:/tmp/roadless.sock", none) == "plaintext"
    assert credentials.security("optimizer:50051", none) == "tls-system-roots"
    assert credentials.security("dns:///optimizer.roadless.svc:50051", none) == "tls-system-roots"
    assert credentials.security("10.0.0.7:50051", none) == "tls-system-roots"
    explicit = credentials.Settings.resolve(plaintext=True)
    assert credentials.security("optimizer:50051", explicit) == "plaintext"
    clean_env.setenv("ROADLESS_PLAINTEXT", "1")
    assert credentials.security("optimizer:50051", credentials.Settings.resolve()) == "plaintext"
    tls = credentials.Settings.resolve(plaintext=False, tls_ca_file="ca.pem")
    assert credentials.security("localhost:50051", tls) == "tls"


def test_settings_contradictionsRefused_tokenNotInRepr(clean_env):
    with pytest.raises(ValueError):
        credentials.Settings.resolve(tls_cert_file="c.pem")  # without its key
    with pytest.raises(ValueError):
        credentials.Settings.resolve(plaintext=True, tls_ca_file="ca.pem")
    with pytest.raises(ValueError):
        credentials.Settings.resolve(token="two words")
    with pytest.raises(ValueError):
        OptimizerClient(channel=grpc.insecure_channel("localhost:1"), token="x")
    assert "hidden" not in repr(credentials.Settings.resolve(token="hidden"))
