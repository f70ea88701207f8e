"""Kafka over TLS and SASL: the bus URL's security options become kafka-python's own, and the
clients really use them. No broker here speaks TLS (tansu's TLS listener did not accept
kafka-python's handshake), so a TLS listener made with Python's ssl module stands in for the
broker's port: it checks that the client completes a handshake against our CA and, for mutual TLS,
presents the client certificate from the URL."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from conceptfreq.adapters.bus import open_bus
from conceptfreq.adapters.bus.kafka import open_kafka
from conceptfreq.errors import UnavailableError, UserError
from tests.pki import Authority


@pytest.fixture
def certs(tmp_path):
    ca = Authority("kafka test CA")
    broker, client = ca.issue("broker", server=True), ca.issue("conceptfreq", server=False)
    files = {"ca": ca.pem, "broker.crt": broker.cert, "broker.key": broker.key, "client.crt": client.cert, "client.key": client.key}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


class TLSListener:
    """Accepts TLS connections with client certificates required, and records each peer's CN."""

    def __init__(self, certs):
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "ca"))
        self.context.load_cert_chain(str(certs / "broker.crt"), str(certs / "broker.key"))
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    subject = dict(item[0] for item in tls.getpeercert()["subject"])
                    self.peers.append(subject["commonName"])
            except (ssl.SSLError, OSError):
                raw.close()

    def close(self):
        self.sock.close()


def test_security_options_become_kafka_python_arguments(tmp_path):
    (tmp_path / "password").write_text("hunter2\n")
    bus = open_kafka(f"kafka://svc-conceptfreq@k0:9093,k1:9093?security_protocol=SASL_SSL&sasl_mechanism=SCRAM-SHA-512"
                     f"&sasl_password_file={tmp_path / 'password'}&ssl_check_hostname=1&session_timeout_ms=30000")
    assert bus.bootstrap == ["k0:9093", "k1:9093"] and bus.options["session_timeout_ms"] == 30000
    assert bus.security == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "ssl_check_hostname": True,
                            "sasl_plain_username": "svc-conceptfreq", "sasl_plain_password": "hunter2"}
    assert "hunter2" not in bus.url


@pytest.mark.parametrize("query, message", [
    ("security_protocol=TLS", "must be one of PLAINTEXT, SSL"),
    ("security_protocol=SASL_SSL", "needs a user"),
    ("sasl_mechanism=PLAIN", "needs security_protocol=SASL_SSL"),
    ("ssl_cafile=/nonexistent/ca.pem", "no such file"),
    ("sasl_password_file=/nonexistent", "cannot read the Kafka password file"),
    ("sslcafile=x", "unknown Kafka option 'sslcafile'"),
])
def test_bad_security_options_are_one_line_errors(query, message):
    with pytest.raises(UserError, match=message):
        open_kafka(f"kafka://k0:9093?{query}")


def test_a_tls_client_handshakes_with_the_ca_and_presents_its_certificate(certs):
    listener = TLSListener(certs)
    try:
        bus = open_bus(f"kafka://127.0.0.1:{listener.port}?security_protocol=SSL&ssl_cafile={certs / 'ca'}"
                       f"&ssl_certfile={certs / 'client.crt'}&ssl_keyfile={certs / 'client.key'}"
                       "&bootstrap_timeout_ms=1500&request_timeout_ms=1500")
        # The listener speaks no Kafka after the handshake, so the client gives up: UnavailableError.
        with pytest.raises(UnavailableError):
            bus.create_topics(["t"], 1)
        assert "conceptfreq" in listener.peers, "the client completed mutual TLS with the URL's certificate"
    finally:
        listener.close()


def test_a_plaintext_client_never_completes_a_handshake(certs):
    listener = TLSListener(certs)
    try:
        bus = open_bus(f"kafka://127.0.0.1:{listener.port}?bootstrap_timeout_ms=1500&request_timeout_ms=1500")
        with pytest.raises(UnavailableError):
            bus.create_topics(["t"], 1)
        assert listener.peers == []
    finally:
        listener.close()
