"""Who may call a Python server of Roadless: the same access file, roles and checks as the Java
services (``dev.roadless.common.security.AccessFile``, ``AccessControl``, ``RpcPolicy``).

The access file has one identity per line, ``#`` comments::

    # identity   sha256(token) in hex, or - (certificate only)                   grants
    ckpt         -                                                                 *=operator
    team-a       2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae  team-a-*=trainer

A grant is ``run=role``: an exact run id, a prefix ending in ``*``, or ``*``; roles ``trainer``,
``reader``, ``operator``, ``admin``. A caller is the identity of its ``authorization: Bearer
<token>`` metadata (an unknown token is refused even with a certificate) or, without a token, the
identity named by its verified client certificate's CN (an identity without grants when the file
does not list it). No credentials: UNAUTHENTICATED; a known identity without a role the call's
row allows on the call's run: PERMISSION_DENIED (ErrorInfo with ``identity``, ``method``,
``run_id``, ``required``). Either way the servicer never sees the request, so nothing changes.
``admin`` on a run allows every call on it; a call about no run needs ``admin`` on ``*``.
"""

import hashlib
import json
import logging
import os
import re
import threading
import time

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from roadless import errors
from roadless.server_tls import ServerTls

ROLES = ("trainer", "reader", "operator", "admin")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}\Z")
_HASH = re.compile(r"[0-9a-f]{64}\Z")
_RUN = re.compile(r"(\*|[a-z0-9][a-z0-9._-]{0,62}\*?)\Z")
_BEARER = "bearer "
_AUDIT = logging.getLogger("roadless.audit")

_TRN = "/roadless.trainer.v1.TrainerService/"
_READ = frozenset(("trainer", "reader", "operator", "admin"))
_VIEW = frozenset(("reader", "operator", "admin"))
_OPERATE = frozenset(("operator", "admin"))

# The trainer rows of RpcPolicy: method -> roles that allow it; the mutating ones are audited
# when they are allowed, too.
TRAINER_MUTATING = frozenset((_TRN + "Start", _TRN + "Stop"))
TRAINER_POLICY = {
    _TRN + "Start": _OPERATE,
    _TRN + "Stop": _OPERATE,
    _TRN + "GetStatus": _READ,
    _TRN + "ComputeBatchNormStatistics": _OPERATE,
    _TRN + "Evaluate": _VIEW,
}


def sha256_hex(token):
    """What the access file stores for ``token``: ``printf %s "$TOKEN" | sha256sum``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Identity:
    def __init__(self, name, token_sha256=None, grants=()):
        self.name, self.token_sha256, self.grants = name, token_sha256, tuple(grants)

    def roles_on(self, run_id):
        return {role for run, role in self.grants
                if (run_id.startswith(run[:-1]) if run.endswith("*") else run == run_id)}

    def holds_everywhere(self, role):
        return ("*", role) in self.grants


class AccessFile:
    """The parsed file; :meth:`parse` raises ValueError naming the line that is wrong."""

    def __init__(self, identities):
        self.by_name = {i.name: i for i in identities}
        self.by_hash = {i.token_sha256: i for i in identities if i.token_sha256}

    @classmethod
    def parse(cls, text):
        identities, names, hashes = [], set(), set()
        for number, line in enumerate(text.splitlines(), 1):
            content = line.split("#", 1)[0].strip()
            if not content:
                continue
            where = "access file line %d: " % number
            f = content.split()
            if len(f) < 3:
                raise ValueError(where + "expected '<identity> <sha256-hex or -> <run>=<role> ...'")
            if not _NAME.match(f[0]):
                raise ValueError(where + "bad identity name '%s'" % f[0])
            if f[0] in names:
                raise ValueError(where + "identity '%s' listed twice" % f[0])
            token_hash = None if f[1] == "-" else f[1].lower()
            if token_hash is not None and not _HASH.match(token_hash):
                raise ValueError(where + "the second field must be the token's SHA-256 in hex "
                                 "(64 digits) or -")
            if token_hash is not None and token_hash in hashes:
                raise ValueError(where + "two identities share one token hash")
            grants = []
            for g in f[2:]:
                run, eq, role = g.rpartition("=")
                if not eq or not run or not _RUN.match(run):
                    raise ValueError(where + "bad grant '%s' (expected run=role; run: an id, a "
                                     "prefix*, or *)" % g)
                if role not in ROLES:
                    raise ValueError(where + "unknown role '%s' (expected trainer, reader, "
                                     "operator or admin)" % role)
                grants.append((run, role))
            names.add(f[0])
            if token_hash:
                hashes.add(token_hash)
            identities.append(Identity(f[0], token_hash, grants))
        return cls(identities)


class AccessControl:
    """The access file in force: read at start (a bad file raises ValueError naming the file and
    line), read again at most every ``reload_seconds`` when a call comes and swapped in when its
    content changed and parses (a bad file keeps the last good one and logs why)."""

    def __init__(self, path, reload_seconds=5.0):
        self.path, self.reload_seconds = path, reload_seconds
        self._lock = threading.Lock()
        with open(path, "rb") as f:
            self._content = f.read()
        try:
            self.current = AccessFile.parse(self._content.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError("%s: %s" % (path, e)) from None
        self._checked = time.monotonic()

    def _maybe_reload(self):
        now = time.monotonic()
        with self._lock:
            if now - self._checked < self.reload_seconds:
                return
            self._checked = now
            try:
                with open(self.path, "rb") as f:
                    content = f.read()
                if content != self._content:
                    self.current = AccessFile.parse(content.decode("utf-8"))
                    self._content = content
            except (OSError, ValueError, UnicodeDecodeError) as e:
                logging.getLogger(__name__).warning(
                    "access file %s not reloaded, keeping the last good one: %s", self.path, e)

    def authenticate(self, authorization, certificate_cn):
        """The caller; raises :class:`Refusal` (UNAUTHENTICATED) when nothing identifies it."""
        self._maybe_reload()
        access = self.current
        if authorization is not None:
            if not authorization.lower().startswith(_BEARER):
                raise Refusal(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED",
                              "the authorization metadata must be 'Bearer <token>'")
            found = access.by_hash.get(sha256_hex(authorization[len(_BEARER):].strip()))
            if found is None:
                raise Refusal(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED",
                              "the bearer token is not valid here")
            return found
        if certificate_cn:
            return access.by_name.get(certificate_cn) or Identity(certificate_cn)
        raise Refusal(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED",
                      "no credentials: send 'authorization: Bearer <token>' metadata or a client "
                      "certificate")


class Refusal(Exception):
    def __init__(self, code, reason, message, **metadata):
        super().__init__(message)
        self.code, self.reason, self.metadata = code, reason, metadata


class _Status(grpc.Status):
    def __init__(self, code, details, trailing_metadata):
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


def abort(context, refusal):
    """Ends the call with the refusal's code and a google.rpc.ErrorInfo (domain roadless.dev)."""
    info = error_details_pb2.ErrorInfo(reason=refusal.reason, domain=errors.DOMAIN,
                                       metadata={k: str(v) for k, v in refusal.metadata.items()})
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=refusal.code.value[0], message=str(refusal), details=[detail])
    context.abort_with_status(_Status(refusal.code, str(refusal), (
        ("grpc-status-details-bin", status.SerializeToString()),)))


def _certificate_cn(context):
    auth = context.auth_context() or {}
    if auth.get("transport_security_type") != [b"ssl"]:
        return None
    names = auth.get("x509_common_name") or ()
    return names[0].decode("utf-8", "replace") if names else None


class Authorization(grpc.ServerInterceptor):
    """Authenticates and authorizes every unary ``roadless.*`` call before the servicer sees it;
    other services (health, reflection) stay open. ``policy`` maps full method names to the roles
    that allow them; ``resolvers`` maps a method to ``request -> [run ids]`` where the request does
    not name its run by ``run_id`` (an empty list: the call is server-wide)."""

    def __init__(self, access, policy, resolvers=None):
        self.access, self.policy, self.resolvers = access, policy, dict(resolvers or {})

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        method = details.method
        if handler is None or not method.startswith("/roadless."):
            return handler
        if handler.unary_unary is None:  # every roadless.trainer.v1 call is unary
            raise ValueError("no authorization for the streaming method " + method)
        behavior = handler.unary_unary

        def guarded(request, context):
            try:
                caller = self.check(method, request, context)
            except Refusal as r:
                _AUDIT.warning(json.dumps({"event": "denied", "method": method[1:],
                                           "reason": r.reason, "message": str(r),
                                           **{k: str(v) for k, v in r.metadata.items()}}))
                abort(context, r)
            if method in TRAINER_MUTATING:
                _AUDIT.info(json.dumps({"event": "call", "method": method[1:],
                                        "identity": caller.name}))
            return behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(
            guarded, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)

    def check(self, method, request, context):
        """The caller; raises :class:`Refusal` unless it may make this call."""
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value
        caller = self.access.authenticate(header, _certificate_cn(context))
        allowed = self.policy.get(method)
        resolver = self.resolvers.get(method)
        runs = resolver(request) if resolver else [getattr(request, "run_id", "")]
        runs = [r for r in runs if r]
        if allowed is None or not runs:  # no row, or about no run: admin on * only
            if not caller.holds_everywhere("admin"):
                raise _denied(caller, method, None, {"admin"})
            return caller
        for run in runs:
            held = caller.roles_on(run)
            if "admin" not in held and not held & allowed:
                raise _denied(caller, method, run, allowed)
        return caller


def _denied(caller, method, run, allowed):
    required = ",".join(sorted(allowed))
    name = method[1:]
    message = "identity '%s' may not call %s%s; needs one of: %s" % (
        caller.name, name[name.index("/") + 1:],
        " (server-wide: needs admin on *)" if run is None else " on run '%s'" % run, required)
    metadata = {"identity": caller.name, "method": name, "required": required}
    if run is not None:
        metadata["run_id"] = run
    return Refusal(grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED", message, **metadata)


def server_options(plaintext, tls_cert_file, tls_key_file, tls_client_ca_file, access_file,
                   env=None):
    """Resolves a Python server's security settings (arguments win over ``ROADLESS_*``
    variables, the same names as the Java services' keys): returns (ServerTls or None,
    AccessControl or None). Raises ValueError on a contradiction or a missing file."""
    env = os.environ if env is None else env
    plaintext = (plaintext if plaintext is not None
                 else env.get("ROADLESS_PLAINTEXT", "").strip().lower() in ("1", "true", "yes"))
    cert = tls_cert_file or env.get("ROADLESS_TLS_CERT") or None
    key = tls_key_file or env.get("ROADLESS_TLS_KEY") or None
    ca = tls_client_ca_file or env.get("ROADLESS_TLS_CLIENT_CA") or None
    access_file = access_file or env.get("ROADLESS_ACCESS_FILE") or None
    if plaintext:
        if cert or key or ca:
            raise ValueError("plaintext=True contradicts the TLS files given")
        return None, AccessControl(access_file) if access_file else None
    if not access_file:
        raise ValueError("a TLS server needs access_file (identities and grants), or "
                         "plaintext=True for a local test")
    return ServerTls(cert, key, ca), AccessControl(access_file)


__all__ = ["AccessControl", "AccessFile", "Authorization", "ServerTls", "TRAINER_POLICY",
           "server_options", "sha256_hex"]
