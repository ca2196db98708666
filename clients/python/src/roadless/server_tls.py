"""Server-side TLS from PEM files for Python servers of Roadless (the trainer's control server),
reloaded when the files change, like the Java services' ``TlsFiles``."""

import logging
import threading
import time

import grpc


class ServerTls:
    """Server credentials from PEM files, re-read when their content changed (checked at most
    every ``reload_seconds``, on a new connection): rotation needs no restart. With a client CA
    every connection must show a certificate it signed (mutual TLS; gRPC Python cannot ask for a
    certificate without requiring one)."""

    def __init__(self, cert_file, key_file, client_ca_file=None, reload_seconds=30.0):
        if not cert_file or not key_file:
            raise ValueError("TLS needs tls_cert_file and tls_key_file (or plaintext=True)")
        self.files = (cert_file, key_file, client_ca_file)
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._loaded = self._read()
        self._checked = time.monotonic()

    def _read(self):
        out = []
        for path in self.files:
            if path is None:
                out.append(None)
                continue
            with open(path, "rb") as f:
                data = f.read()
            if b"-----BEGIN" not in data:
                raise ValueError("%s is not a PEM file" % path)
            out.append(data)
        return tuple(out)

    def _config(self):
        cert, key, ca = self._loaded
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def _fetch(self):
        now = time.monotonic()
        with self._lock:
            if now - self._checked < self.reload_seconds:
                return None
            self._checked = now
            try:
                fresh = self._read()
            except (OSError, ValueError) as e:
                logging.getLogger(__name__).warning("TLS files not reloaded: %s", e)
                return None
            if fresh == self._loaded:
                return None
            self._loaded = fresh
            return self._config()

    def credentials(self):
        return grpc.dynamic_ssl_server_credentials(
            self._config(), self._fetch,
            require_client_authentication=self._loaded[2] is not None)


__all__ = ["ServerTls"]
