"""Transport security of the gRPC servers: TLS, mutual TLS, and an optional bearer token.

- TLS from a certificate and key file (PEM); with a client CA as well, every client must present
  a certificate that CA signed (mutual TLS).
- Certificate and token files are read again when they change on disk, so a rotated Secret (for
  example cert-manager's renewal) takes effect on the next connection, without a restart.
- A bearer token (`authorization: Bearer TOKEN` metadata) is required on every call when a token
  file is configured; a call without it gets UNAUTHENTICATED. Health checks stay open, because
  the kubelet's gRPC probes carry no credentials.
- Kubernetes' gRPC probes cannot speak TLS either, so with TLS on, `health_port` serves the
  health service alone, in plaintext, beside the TLS port.
"""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from conceptfreq.errors import UserError

log = logging.getLogger(__name__)

HEALTH_PREFIX = "/grpc.health.v1.Health/"


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UserError(f"cannot read the {what} {path}: {error.strerror}") from error


class _Watched:
    """A file's content, read again when its modification time or size changes."""

    def __init__(self, path: str, what: str):
        self.path, self.what = path, what
        self._stamp = self._stat()
        self.content = _read(path, what)

    def _stat(self) -> tuple[int, int]:
        try:
            stat = os.stat(self.path)
            return stat.st_mtime_ns, stat.st_size
        except OSError:
            return (0, 0)

    def changed(self) -> bool:
        """Reload if the file changed; True when it did. A file that is missing or unreadable
        mid-rotation keeps the old content."""
        stamp = self._stat()
        if stamp == self._stamp or stamp == (0, 0):
            return False
        try:
            self.content = Path(self.path).read_bytes()
        except OSError:
            return False
        self._stamp = stamp
        return True


@dataclass(frozen=True)
class ServerSecurity:
    """What a gRPC server requires of its clients; all empty means plaintext and no token."""

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""  # set: mutual TLS
    token_file: str = ""  # set: every call but health checks needs `authorization: Bearer <token>`
    health_port: int = 0  # with TLS: a plaintext port serving health checks only (0: none)

    def __post_init__(self):
        if bool(self.cert_file) != bool(self.key_file):
            raise UserError("TLS needs both a certificate and a key (--tls-cert and --tls-key)")
        if self.client_ca_file and not self.cert_file:
            raise UserError("mutual TLS (--tls-client-ca) needs server TLS too (--tls-cert and --tls-key)")

    @property
    def tls(self) -> bool:
        return bool(self.cert_file)

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials that follow the certificate files as they are rotated."""
        files = [_Watched(self.cert_file, "TLS certificate"), _Watched(self.key_file, "TLS key")]
        if self.client_ca_file:
            files.append(_Watched(self.client_ca_file, "TLS client CA"))

        def configuration() -> grpc.ServerCertificateConfiguration:
            cert, key = files[0].content, files[1].content
            ca = files[2].content if len(files) > 2 else None
            return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

        try:
            initial = configuration()
        except Exception as error:  # grpc raises plain errors on unparsable PEM
            raise UserError(f"invalid TLS certificate or key ({self.cert_file}, {self.key_file}): {error}") from error

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            # Called on each new connection; None keeps the current certificates.
            changed = [f.changed() for f in files]
            if any(changed):
                log.info("TLS certificate files changed; new connections use the new ones")
                return configuration()
            return None

        return grpc.dynamic_ssl_server_credentials(initial, fetch, require_client_authentication=bool(self.client_ca_file))

    def interceptor(self) -> grpc.ServerInterceptor | None:
        return BearerTokenInterceptor(_Watched(self.token_file, "auth token file")) if self.token_file else None


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """UNAUTHENTICATED for a call without the right `authorization: Bearer` metadata; health
    checks pass without it."""

    def __init__(self, token: _Watched):
        self._token = token
        if not self._expected():
            raise UserError(f"the auth token file {token.path} is empty")

    def _expected(self) -> bytes:
        self._token.changed()
        return self._token.content.strip()

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(HEALTH_PREFIX):
            return continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = metadata.get("authorization", "")
        scheme, _, token = given.partition(" ")
        expected = self._expected()
        if scheme.lower() == "bearer" and expected and hmac.compare_digest(token.strip().encode(), expected):
            return continuation(handler_call_details)
        message = "missing bearer token" if not given else "invalid bearer token"

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{message}: send `authorization: Bearer <token>` metadata")

        return grpc.unary_unary_rpc_method_handler(deny)
