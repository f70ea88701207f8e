"""TLS, mutual TLS and bearer tokens on the gRPC servers, with real certificates made here (the
`cryptography` package): a CA, a server certificate for 127.0.0.1, client certificates from that
CA and from another one. The query service runs as a process configured by the same environment
variables the Helm chart sets, reading the files the chart mounts from its Secrets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conceptfreq.adapters.grpc_security import ServerSecurity
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.devservers._process import free_port
from conceptfreq.errors import UserError
from conceptfreq.v1 import frequency_pb2, frequency_pb2_grpc
from tests.paths import REPO
from tests.pki import Authority, Issued

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Files as the chart mounts them: tls.crt, tls.key, ca.crt, and the token."""
    root = tmp_path_factory.mktemp("pki")
    ca, other = Authority("conceptfreq test CA"), Authority("somebody else")
    server = ca.issue("query", server=True)
    (root / "tls.crt").write_bytes(server.cert)
    (root / "tls.key").write_bytes(server.key)
    (root / "ca.crt").write_bytes(ca.pem)
    (root / "token").write_text(TOKEN + "\n")
    return {"root": root, "ca": ca, "client": ca.issue("reporter", server=False), "stranger": other.issue("x", server=False),
            "other_ca": other}


def channel(port: int, pki, *, client: str | None = "client", ca: bytes | None = None) -> grpc.Channel:
    issued = pki[client] if client else None
    credentials = grpc.ssl_channel_credentials(root_certificates=ca or pki["ca"].pem,
                                               private_key=issued.key if issued else None,
                                               certificate_chain=issued.cert if issued else None)
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials)


def list_datasets(ch: grpc.Channel, token: str | None = TOKEN):
    metadata = [("authorization", f"Bearer {token}")] if token else None
    return frequency_pb2_grpc.FrequencyServiceStub(ch).ListDatasets(frequency_pb2.ListDatasetsRequest(), timeout=10, metadata=metadata)


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code()


@pytest.fixture(scope="module")
def query_service(pki, tmp_path_factory):
    """`python -m conceptfreq.query` with mutual TLS, a token and a plaintext health port, set up
    through CONCEPTFREQ_* variables as the chart does."""
    root = pki["root"]
    health_port = free_port()
    log = tmp_path_factory.mktemp("query") / "query.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CONCEPTFREQ_TLS_CERT": str(root / "tls.crt"),
           "CONCEPTFREQ_TLS_KEY": str(root / "tls.key"), "CONCEPTFREQ_TLS_CLIENT_CA": str(root / "ca.crt"),
           "CONCEPTFREQ_AUTH_TOKEN_FILE": str(root / "token"), "CONCEPTFREQ_HEALTH_PORT": str(health_port)}
    process = subprocess.Popen([sys.executable, "-m", "conceptfreq.query", "--store", f"chdb://{log.parent / 'store'}",
                                "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"],
                               stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO)
    deadline = time.monotonic() + 60
    while not (found := re.search(r"query service on [\d.]+:(\d+)", log.read_text())):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield int(found.group(1)), health_port
    process.terminate()
    assert process.wait(30) == 0, log.read_text()


def test_a_client_with_the_cas_certificate_and_the_token_is_served(query_service, pki):
    port, _ = query_service
    with channel(port, pki) as ch:
        assert list(list_datasets(ch).datasets) == []


def test_calls_without_the_right_token_are_unauthenticated(query_service, pki):
    port, _ = query_service
    with channel(port, pki) as ch:
        assert code_of(lambda: list_datasets(ch, token=None)) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(lambda: list_datasets(ch, token="wrong")) == grpc.StatusCode.UNAUTHENTICATED
        # Health checks stay open: probes send no credentials.
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="conceptfreq.v1.FrequencyService"), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_mutual_tls_turns_away_clients_without_a_certificate_from_the_ca(query_service, pki):
    port, _ = query_service
    for client in (None, "stranger"):
        with channel(port, pki, client=client) as ch:
            assert code_of(lambda: list_datasets(ch)) == grpc.StatusCode.UNAVAILABLE, client
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        assert code_of(lambda: list_datasets(ch)) == grpc.StatusCode.UNAVAILABLE, "plaintext to the TLS port"
    # A client that trusts another CA refuses the server's certificate.
    with channel(port, pki, ca=pki["other_ca"].pem) as ch:
        assert code_of(lambda: list_datasets(ch)) == grpc.StatusCode.UNAVAILABLE


def test_the_health_port_serves_health_checks_in_plaintext_and_nothing_else(query_service, pki):
    _, health_port = query_service
    with grpc.insecure_channel(f"127.0.0.1:{health_port}") as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert code_of(lambda: list_datasets(ch)) == grpc.StatusCode.UNIMPLEMENTED


def test_a_rotated_certificate_is_used_for_new_connections_without_a_restart(tmp_path):
    old_ca, new_ca = Authority("before"), Authority("after")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"

    def install(issued: Issued) -> None:
        # As the kubelet updates a Secret volume: write elsewhere, then rename into place.
        for path, content in ((cert, issued.cert), (key, issued.key)):
            path.with_suffix(".new").write_bytes(content)
            path.with_suffix(".new").replace(path)

    install(old_ca.issue("server", server=True))
    server, port = serve([], 0, "127.0.0.1", security=ServerSecurity(str(cert), str(key)))
    try:
        def health(ca: Authority) -> int:
            with grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(ca.pem)) as ch:
                return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10).status

        assert health(old_ca) == health_pb2.HealthCheckResponse.SERVING
        time.sleep(0.01)  # a new modification time
        install(new_ca.issue("server", server=True))
        assert health(new_ca) == health_pb2.HealthCheckResponse.SERVING
        assert code_of(lambda: health(old_ca)) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


def test_incomplete_or_unreadable_tls_settings_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="both a certificate and a key"):
        ServerSecurity(cert_file="/etc/tls.crt")
    with pytest.raises(UserError, match="needs server TLS"):
        ServerSecurity(client_ca_file="/etc/ca.crt")
    with pytest.raises(UserError, match="cannot read the TLS certificate"):
        ServerSecurity(str(tmp_path / "missing.crt"), str(tmp_path / "missing.key")).credentials()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UserError, match="is empty"):
        ServerSecurity(token_file=str(tmp_path / "empty")).interceptor()
