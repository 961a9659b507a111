"""The probe and metrics HTTP endpoints: `/healthz` (liveness), `/readyz` (node cache synced), `/metrics`.

Probes are plain HTTP, meant for loopback (the kubelet of a host-network pod reaches the node's
127.0.0.1). Metrics are HTTPS by default and answered only when a `routectl.access.Gate` admits the
caller's bearer token for `get /metrics` (401 no or bad token, 403 not allowed, 500 the gate could not
decide); the certificate is the one mounted in a directory (re-read when its files change) or a
self-signed one made at start. Plain-HTTP metrics are the loopback opt-in (the config refuses other
addresses).

Every server runs in its own threads and only reads state through the callables it is given, so a probe
or a scrape can never block the controller; the TLS handshake happens on the request's own thread, under
the per-connection timeout, so a client that connects and stalls holds nothing but itself.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from routectl.access import Gate, Verdict

log = logging.getLogger(__name__)

Check = Callable[[], bool]
Route = Callable[[], tuple[int, str, bytes]]

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
"""File names in a certificate directory: those of a `kubernetes.io/tls` Secret (and cert-manager's)."""
_CONNECTION_TIMEOUT_S = 10.0
_SELF_SIGNED_DAYS = 365
_REFUSALS = {
    Verdict.UNAUTHENTICATED: b"Unauthorized\n",
    Verdict.FORBIDDEN: b"Forbidden\n",
    Verdict.UNAVAILABLE: b"Authorization could not be checked\n",
}


class ServingCertificate:
    """The TLS side of the metrics server: the files in `cert_dir`, re-read when they change (a renewed
    Secret), or a self-signed certificate when `cert_dir` is ""."""

    def __init__(self, cert_dir: str = "") -> None:
        self._dir = Path(cert_dir) if cert_dir else None
        self._lock = threading.Lock()
        self._stamp: tuple[float, float] | None = None
        self._context = self._load() if self._dir is not None else _self_signed_context()

    def context(self) -> ssl.SSLContext:
        if self._dir is None:
            return self._context
        with self._lock:
            if self._files_stamp() != self._stamp:
                try:
                    self._context = self._load()
                except (OSError, ssl.SSLError) as err:  # caught mid-rotation: keep serving the old one
                    log.warning("metrics certificate not reloaded", extra={"error": str(err)})
            return self._context

    def _files_stamp(self) -> tuple[float, float] | None:
        assert self._dir is not None
        try:
            return (os.stat(self._dir / CERT_FILE).st_mtime, os.stat(self._dir / KEY_FILE).st_mtime)
        except OSError:
            return None

    def _load(self) -> ssl.SSLContext:
        assert self._dir is not None
        stamp = self._files_stamp()
        context = _server_context()
        context.load_cert_chain(self._dir / CERT_FILE, self._dir / KEY_FILE)
        self._stamp = stamp
        return context


def self_signed(common_name: str, hosts: Sequence[str] = ()) -> tuple[bytes, bytes]:
    """PEM certificate and key of a fresh P-256 key, self-signed for `common_name` and naming `hosts`
    (names or IP addresses), valid from five minutes ago for a year."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_SELF_SIGNED_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), False)
    cert = builder.sign(key, hashes.SHA256())
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 at least) for a certificate chain and key held in memory; ssl loads
    them from files only, so they pass through a private temp dir that is removed at once."""
    context = _server_context()
    with tempfile.TemporaryDirectory(prefix="routectl-tls-") as directory:
        cert_path, key_path = Path(directory) / CERT_FILE, Path(directory) / KEY_FILE
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _self_signed_context() -> ssl.SSLContext:
    """A certificate naming this host (the chart's /tmp, where the temp dir goes, is an emptyDir)."""
    host = socket.gethostname()
    return server_context(*self_signed(f"routectl@{host}", (host, "localhost", "127.0.0.1", "::1")))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    gate: Gate | None
    certificate: ServingCertificate | None

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.certificate is not None:
            sock = self.certificate.context().wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A failed handshake, a plain-HTTP request to the HTTPS port, a client gone mid-answer: the
        # caller's problem, not a traceback on stderr.
        log.debug("request not served", extra={"op": "serve", "outcome": str(client_address)})


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    disable_nagle_algorithm = True
    timeout = _CONNECTION_TIMEOUT_S

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        route = self.server.routes.get(path)
        if route is None:
            self._answer(404, "text/plain", b"not found\n")
            return
        gate = self.server.gate
        if gate is not None:
            token = _bearer(self.headers.get("Authorization", ""))
            verdict = gate.admit(token, "get", path) if token else Verdict.UNAUTHENTICATED
            if verdict is not Verdict.ALLOWED:
                self._answer(verdict.value, "text/plain", _REFUSALS[verdict], verdict)
                return
        self._answer(*route())

    def _answer(self, status: int, content_type: str, body: bytes, verdict: Verdict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if verdict is Verdict.UNAUTHENTICATED:
            self.send_header("WWW-Authenticate", 'Bearer realm="routectl"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


def _bearer(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _probe(check: Check) -> Route:
    def respond() -> tuple[int, str, bytes]:
        ok = check()
        return (200, "text/plain", b"ok\n") if ok else (503, "text/plain", b"failing\n")

    return respond


def _metrics(registry: CollectorRegistry) -> Route:
    return lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry))


class HttpEndpoint:
    """One listening socket serving a fixed set of paths; `stop()` closes it and joins its thread."""

    def __init__(
        self,
        address: tuple[str, int],
        routes: dict[str, Route],
        *,
        gate: Gate | None = None,
        certificate: ServingCertificate | None = None,
    ) -> None:
        self._server = (_Server6 if ":" in address[0] else _Server)(address, _Handler)
        self._server.routes = routes
        self._server.gate = gate
        self._server.certificate = certificate
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-{self.port}")

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HttpEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def health_endpoint(address: tuple[str, int], healthy: Check, ready: Check) -> HttpEndpoint:
    return HttpEndpoint(address, {"/healthz": _probe(healthy), "/readyz": _probe(ready)})


def metrics_endpoint(
    address: tuple[str, int],
    registry: CollectorRegistry,
    *,
    gate: Gate | None = None,
    certificate: ServingCertificate | None = None,
) -> HttpEndpoint:
    """Plain HTTP when `certificate` is None (the loopback opt-in); HTTPS otherwise, and with a `gate`
    every scrape is authenticated and authorized first."""
    return HttpEndpoint(address, {"/metrics": _metrics(registry)}, gate=gate, certificate=certificate)
