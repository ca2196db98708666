"""The Python trainer's control server (issue 17): TLS, mutual TLS and the Java services'
access file and role table, against a real server started here. Every role against every
trainer RPC: allowed calls reach the servicer, refused ones end UNAUTHENTICATED or
PERMISSION_DENIED with ErrorInfo (domain roadless.dev) and reach nothing."""

import grpc
import pytest

pytest.importorskip("cryptography")
import pki  # noqa: E402
from roadless import access, errors  # noqa: E402
from roadless.torch.trainer import TrainerControl, serve  # noqa: E402
from roadless.trainer.v1 import trainer_service_pb2 as tpb  # noqa: E402
from roadless.trainer.v1 import trainer_service_pb2_grpc as tpb_grpc  # noqa: E402

RUN = "team-a-run"
TOKENS = {"trainer": "t-trainer", "reader": "t-reader", "operator": "t-operator",
          "admin": "t-admin", "wrong-run": "t-wrong", "root": "t-root"}
ACCESS = """# identity   token hash   grants
trainer-id   {trainer}   {run}=trainer
reader-id    {reader}    {run}=reader
operator-id  {operator}  team-a-*=operator
admin-id     {admin}     {run}=admin
wrong-id     {wrong}     team-b-*=operator team-b-*=admin
root-id      {root}      *=admin
ckpt         -           *=operator
"""


def access_text():
    hashes = {k.split("-")[0]: access.sha256_hex(v) for k, v in TOKENS.items()}
    return ACCESS.format(run=RUN, **hashes)


class FakeClient:
    def __init__(self):
        self.calls = []

    def get_parameters(self, run_id, sequence, min_step=0, deadline=None):
        self.calls.append(run_id)
        raise errors.RoadlessError(grpc.StatusCode.NOT_FOUND, "no such run here", "RUN_NOT_FOUND")


class FakeOptimizer:
    run_id, replica, replicas, step_count = RUN, 0, 1, 7

    def __init__(self):
        self.client = FakeClient()


class Recording(TrainerControl):
    """Records which RPCs reached the servicer."""

    def __init__(self):
        super().__init__(None, FakeOptimizer(), None, None, 8)
        self.reached = []

    def _reach(name):
        def method(self, request, context):
            self.reached.append(name)
            return getattr(TrainerControl, name)(self, request, context)
        return method

    Start, Stop, GetStatus = _reach("Start"), _reach("Stop"), _reach("GetStatus")
    ComputeBatchNormStatistics = _reach("ComputeBatchNormStatistics")
    Evaluate = _reach("Evaluate")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("trainer-tls")
    ca, other = pki.Ca(d, "trainer-test"), pki.Ca(d, "other")
    out = {"ca": ca.file, "server": ca.issue("localhost", server=True),
           "ckpt": ca.issue("ckpt"), "stranger": ca.issue("stranger"),
           "foreign": other.issue("ckpt-foreign"), "access": d / "access"}
    out["access"].write_text(access_text())
    return out


@pytest.fixture(scope="module")
def tls_server(files):
    """TLS, tokens (no client CA): one server for the whole matrix."""
    control = Recording()
    server, port = serve(control, tls_cert_file=str(files["server"][0]),
                         tls_key_file=str(files["server"][1]), access_file=str(files["access"]))
    yield control, port
    server.stop(0)


@pytest.fixture(scope="module")
def mtls_server(files):
    control = Recording()
    server, port = serve(control, tls_cert_file=str(files["server"][0]),
                         tls_key_file=str(files["server"][1]),
                         tls_client_ca_file=str(files["ca"]), access_file=str(files["access"]))
    yield control, port
    server.stop(0)


def _stub(port, files, client=None):
    key = cert = None
    if client is not None:
        cert, key = (p.read_bytes() for p in client)
    creds = grpc.ssl_channel_credentials(files["ca"].read_bytes(), key, cert)
    return tpb_grpc.TrainerServiceStub(grpc.secure_channel("localhost:%d" % port, creds))


CALLS = {
    "Start": lambda s, md: s.Start(tpb.StartRequest(run_id=RUN), metadata=md, timeout=10),
    "Stop": lambda s, md: s.Stop(tpb.StopRequest(), metadata=md, timeout=10),
    "GetStatus": lambda s, md: s.GetStatus(tpb.GetStatusRequest(), metadata=md, timeout=10),
    "ComputeBatchNormStatistics": lambda s, md: s.ComputeBatchNormStatistics(
        tpb.ComputeBatchNormStatisticsRequest(
            run_id=RUN, mode=tpb.BATCH_NORM_STATISTICS_MODE_PRECISE), metadata=md, timeout=10),
    "Evaluate": lambda s, md: s.Evaluate(tpb.EvaluateRequest(run_id=RUN), metadata=md,
                                         timeout=10),
}
ALLOWED = {
    "trainer": {"GetStatus"},
    "reader": {"GetStatus", "Evaluate"},
    "operator": set(CALLS),
    "admin": set(CALLS),
    "wrong-run": set(),
    "anonymous": set(),
    "bad-token": set(),
}


def _call(stub, method, token):
    md = () if token is None else (("authorization", "Bearer " + token),)
    try:
        CALLS[method](stub, md)
        return None
    except grpc.RpcError as e:
        return errors.from_rpc_error(e)


@pytest.mark.parametrize("role", sorted(ALLOWED))
@pytest.mark.parametrize("method", sorted(CALLS))
def test_role_by_rpc(tls_server, files, role, method):
    control, port = tls_server
    token = {"anonymous": None, "bad-token": "not-a-token"}.get(role, TOKENS.get(role))
    reached, fetched = len(control.reached), len(control.optimizer.client.calls)
    e = _call(_stub(port, files), method, token)
    if method in ALLOWED[role]:
        assert control.reached[reached:] == [method]
        assert e is None or e.reason in ("TRAINER_BUSY", "RUN_NOT_FOUND"), e
        return
    assert e is not None and control.reached[reached:] == []
    assert len(control.optimizer.client.calls) == fetched  # nothing reached the optimizer
    assert e.domain == errors.DOMAIN
    if role in ("anonymous", "bad-token"):
        assert (e.code, e.reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"), e
    else:
        assert (e.code, e.reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"), e
        assert e.metadata["run_id"] == RUN
        assert e.metadata["method"] == "roadless.trainer.v1.TrainerService/" + method
        assert e.metadata["identity"].endswith("-id")
        assert e.metadata["required"] == ",".join(sorted(access.TRAINER_POLICY[
            "/roadless.trainer.v1.TrainerService/" + method]))


def test_a_call_about_no_run_needs_admin_of_every_run(tls_server, files):
    control, port = tls_server
    stub = _stub(port, files)
    e = _call(stub, "Evaluate", TOKENS["operator"])  # run RUN: reaches the servicer
    assert e.reason == "RUN_NOT_FOUND"
    bare = lambda token: stub.Evaluate(  # noqa: E731
        tpb.EvaluateRequest(), metadata=(("authorization", "Bearer " + token),), timeout=10)
    with pytest.raises(grpc.RpcError) as refused:
        bare(TOKENS["operator"])
    e = errors.from_rpc_error(refused.value)
    assert e.reason == "PERMISSION_DENIED" and e.metadata["required"] == "admin"
    assert "run_id" not in e.metadata
    with pytest.raises(grpc.RpcError) as passed:
        bare(TOKENS["root"])
    assert errors.from_rpc_error(passed.value).reason == "RUN_NOT_FOUND"


def test_health_stays_open(tls_server, files):
    _, port = tls_server
    creds = grpc.ssl_channel_credentials(files["ca"].read_bytes())
    with grpc.secure_channel("localhost:%d" % port, creds) as ch:
        check = ch.unary_unary("/grpc.health.v1.Health/Check")
        assert check(b"", timeout=10) == b"\x08\x01"


def test_plaintext_client_cannot_talk_to_a_tls_server(tls_server):
    _, port = tls_server
    stub = tpb_grpc.TrainerServiceStub(grpc.insecure_channel("127.0.0.1:%d" % port))
    with pytest.raises(grpc.RpcError) as e:
        stub.GetStatus(tpb.GetStatusRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_identity_is_the_certificate_cn(mtls_server, files):
    control, port = mtls_server
    ok = _stub(port, files, files["ckpt"]).GetStatus(tpb.GetStatusRequest(), timeout=10)
    assert ok.status.run_id == RUN
    with pytest.raises(grpc.RpcError) as e:  # a CN the file does not list: no grants
        _stub(port, files, files["stranger"]).Stop(tpb.StopRequest(), timeout=10)
    err = errors.from_rpc_error(e.value)
    assert err.reason == "PERMISSION_DENIED" and err.metadata["identity"] == "stranger"
    with pytest.raises(grpc.RpcError) as e:  # a token not in the file wins over the certificate
        _stub(port, files, files["ckpt"]).GetStatus(
            tpb.GetStatusRequest(), metadata=(("authorization", "Bearer nope"),), timeout=10)
    assert errors.from_rpc_error(e.value).reason == "UNAUTHENTICATED"


@pytest.mark.parametrize("client", [None, "foreign"])
def test_mutual_tls_refuses_missing_or_foreign_certificates(mtls_server, files, client):
    control, port = mtls_server
    reached = len(control.reached)
    stub = _stub(port, files, files[client] if client else None)
    with pytest.raises(grpc.RpcError) as e:
        stub.Stop(tpb.StopRequest(), metadata=(("authorization", "Bearer " + TOKENS["admin"]),),
                  timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake fails
    assert control.reached[reached:] == []


def test_tls_is_the_default_and_bad_settings_are_refused(files, monkeypatch):
    for k in ("ROADLESS_PLAINTEXT", "ROADLESS_TLS_CERT", "ROADLESS_TLS_KEY",
              "ROADLESS_TLS_CLIENT_CA", "ROADLESS_ACCESS_FILE"):
        monkeypatch.delenv(k, raising=False)
    control = Recording()
    with pytest.raises(ValueError, match="access_file"):
        serve(control)  # no silent plaintext
    with pytest.raises(ValueError, match="tls_cert_file"):
        serve(control, access_file=str(files["access"]))
    with pytest.raises(ValueError, match="contradicts"):
        serve(control, plaintext=True, tls_cert_file=str(files["server"][0]))
    with pytest.raises(ValueError, match="not a PEM"):
        serve(control, tls_cert_file=str(files["access"]), tls_key_file=str(files["access"]),
              access_file=str(files["access"]))


@pytest.mark.parametrize("text, says", [
    ("alice", "line 1: expected"),
    ("al ice - run=reader", "line 1: the second field"),
    ("alice - run=boss", "unknown role 'boss'"),
    ("alice - RUN=reader", "bad grant"),
    ("a - r=reader\na - r=reader", "line 2: identity 'a' listed twice"),
    ("a %s r=reader\nb %s r=reader" % ("0" * 64, "0" * 64), "line 2: two identities share"),
])
def test_a_bad_access_file_names_its_line(tmp_path, text, says):
    path = tmp_path / "access"
    path.write_text(text)
    with pytest.raises(ValueError, match=says):
        access.AccessControl(str(path))


def test_the_access_file_is_reloaded_and_a_bad_one_keeps_the_last_good(tmp_path):
    path = tmp_path / "access"
    path.write_text("a %s r=reader\n" % access.sha256_hex("one"))
    control = access.AccessControl(str(path), reload_seconds=0)
    assert control.authenticate("Bearer one", None).name == "a"
    path.write_text("a %s r=reader\n" % access.sha256_hex("two"))
    assert control.authenticate("Bearer two", None).name == "a"
    with pytest.raises(access.Refusal):
        control.authenticate("Bearer one", None)
    path.write_text("broken")
    assert control.authenticate("bearer two", None).name == "a"


def test_a_rotated_server_certificate_takes_effect_without_a_restart(tmp_path, files):
    (tmp_path / "new").mkdir()
    first, second = pki.Ca(tmp_path, "first"), pki.Ca(tmp_path / "new", "second")
    cert, key = first.issue("localhost", server=True)
    server, port = serve(Recording(), tls_cert_file=str(cert), tls_key_file=str(key),
                         access_file=str(files["access"]), tls_reload_seconds=0)
    try:
        md = (("authorization", "Bearer " + TOKENS["reader"]),)

        def status(ca):
            creds = grpc.ssl_channel_credentials(ca.file.read_bytes())
            with grpc.secure_channel("localhost:%d" % port, creds) as ch:
                return tpb_grpc.TrainerServiceStub(ch).GetStatus(
                    tpb.GetStatusRequest(), metadata=md, timeout=5)

        assert status(first).status.run_id == RUN
        new_cert, new_key = second.issue("localhost", server=True)
        cert.write_bytes(new_cert.read_bytes())
        key.write_bytes(new_key.read_bytes())
        assert status(second).status.run_id == RUN
        with pytest.raises(grpc.RpcError):
            status(first)
    finally:
        server.stop(0)
