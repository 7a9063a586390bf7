"""An https webhook is sent over TLS to the checked address, with the certificate checked against the URL's host
name (not the address), through the process's one shared TLS context."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.webhooks import transport


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for `name` (and 127.0.0.1): its files, and its PEM to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(pem)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file, pem


class _Answer204(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def _https_server(cert: Path, key: Path) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer204)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def localhost_server(tmp_path: Path) -> Iterator[int]:
    cert, key, pem = _certificate(tmp_path, "localhost")
    transport.tls_context().load_verify_locations(cadata=pem.decode())  # trusted by this test process only
    yield from _https_server(cert, key)


def test_an_https_endpoint_is_posted_to_with_its_certificate_checked(localhost_server: int) -> None:
    _Answer204.bodies.clear()
    for n in range(3):
        answer = transport.post(f"https://localhost:{localhost_server}/hooks", {"Content-Type": "application/json"},
                                b'{"n": %d}' % n, allow_private=True)
        assert answer.succeeded and answer.status_code == 204, answer
    assert _Answer204.bodies == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert transport.tls_context() is transport.tls_context()  # one context for every attempt


def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    cert, key, pem = _certificate(tmp_path, "elsewhere.example")
    transport.tls_context().load_verify_locations(cadata=pem.decode())  # trusted, but not for "localhost"
    for port in _https_server(cert, key):
        answer = transport.post(f"https://localhost:{port}/hooks", {}, b"{}", allow_private=True)
        assert not answer.succeeded and answer.status_code is None
        assert answer.error is not None and answer.error.startswith("TLS error"), answer.error
