"""How a client reaches a Roadless server: TLS (optionally mutual) and a bearer token.

The contract, the same in every Roadless client:

- **Token.** ``token=`` (else ``$ROADLESS_TOKEN``) is sent on every call as the gRPC metadata
  ``authorization: Bearer <token>``.
- **TLS.** ``tls_ca_file=`` (else ``$ROADLESS_TLS_CA_FILE``) is the PEM bundle that verifies the
  server's certificate; ``tls_cert_file=`` and ``tls_key_file=`` (else ``$ROADLESS_TLS_CERT_FILE``,
  ``$ROADLESS_TLS_KEY_FILE``), always together, are this client's certificate chain and key for
  mutual TLS. Any of them selects TLS.
- **Plaintext** only when asked for explicitly (``plaintext=True`` or ``$ROADLESS_PLAINTEXT=1``),
  or when no TLS setting is given and the target is on this machine (``localhost``, ``127.x``,
  ``::1``, ``unix:``). Any other target without TLS settings gets TLS verified against the
  system's roots: nothing falls back to cleartext by accident.
"""

import dataclasses
import os
import warnings

import grpc

_LOOPBACK = {"localhost", "ip6-localhost", "::1"}
_TRUE = ("1", "true", "yes")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved credentials of one channel (the token is kept out of repr)."""

    token: str = dataclasses.field(default=None, repr=False)
    tls_ca_file: str = None
    tls_cert_file: str = None
    tls_key_file: str = None
    plaintext: bool = False

    @classmethod
    def resolve(cls, token=None, tls_ca_file=None, tls_cert_file=None, tls_key_file=None,
                plaintext=None, env=None):
        """Arguments win over the environment. Raises ValueError on a contradiction."""
        env = os.environ if env is None else env
        s = cls(
            token=token if token is not None else (env.get("ROADLESS_TOKEN") or None),
            tls_ca_file=tls_ca_file or env.get("ROADLESS_TLS_CA_FILE") or None,
            tls_cert_file=tls_cert_file or env.get("ROADLESS_TLS_CERT_FILE") or None,
            tls_key_file=tls_key_file or env.get("ROADLESS_TLS_KEY_FILE") or None,
            plaintext=bool(plaintext) if plaintext is not None
            else env.get("ROADLESS_PLAINTEXT", "").strip().lower() in _TRUE,
        )
        if (s.tls_cert_file is None) != (s.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together (mutual TLS)")
        if s.plaintext and s.tls:
            raise ValueError("plaintext=True contradicts the TLS settings given")
        if s.token is not None and (not s.token or not s.token.isprintable() or " " in s.token):
            raise ValueError("token must be a non-empty printable string without spaces")
        return s

    @property
    def tls(self):
        return bool(self.tls_ca_file or self.tls_cert_file)


def is_loopback(target):
    """True for targets on this machine: localhost, 127.0.0.0/8, ::1 and unix sockets."""
    t = target
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if t.startswith(scheme):
            t = t[len(scheme):]
            break
    if t.startswith(("unix:", "unix-abstract:")):
        return True
    if t.startswith("["):
        host = t[1:t.find("]")]
    elif t.count(":") == 1:
        host = t.split(":")[0]
    else:
        host = t
    return host.lower() in _LOOPBACK or host.startswith("127.")


def security(target, settings):
    """How a channel to ``target`` is secured: "tls" (the given CA and/or client certificate),
    "tls-system-roots", or "plaintext"."""
    if settings.tls:
        return "tls"
    if settings.plaintext or is_loopback(target):
        return "plaintext"
    return "tls-system-roots"


def _read(path):
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def channel(target, settings, options=()):
    """A channel to ``target`` secured as :func:`security` says, sending the token on every
    call."""
    mode = security(target, settings)
    if mode == "plaintext":
        ch = grpc.insecure_channel(target, options=list(options))
        if settings.token and not is_loopback(target):
            warnings.warn("the token for %s travels in cleartext (plaintext=True)" % target)
    else:
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read(settings.tls_ca_file),
            private_key=_read(settings.tls_key_file),
            certificate_chain=_read(settings.tls_cert_file),
        )
        ch = grpc.secure_channel(target, creds, options=list(options))
    if settings.token:
        ch = grpc.intercept_channel(ch, _BearerToken(settings.token))
    return ch


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every call's metadata."""

    def __init__(self, token):
        self._header = ("authorization", "Bearer " + token)

    def _details(self, d):
        metadata = [m for m in (d.metadata or ()) if m[0] != "authorization"] + [self._header]
        return _CallDetails(d.method, d.timeout, metadata, d.credentials,
                            getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, d, request):
        return continuation(self._details(d), request)

    def intercept_unary_stream(self, continuation, d, request):
        return continuation(self._details(d), request)

    def intercept_stream_unary(self, continuation, d, requests):
        return continuation(self._details(d), requests)

    def intercept_stream_stream(self, continuation, d, requests):
        return continuation(self._details(d), requests)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = (
            credentials, wait_for_ready, compression)


__all__ = ["Settings", "channel", "is_loopback", "security"]
