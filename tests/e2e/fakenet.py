"""The cloud's public endpoints, on this machine: each cloud API host name answered by a local emulator.

A process under test keeps its SDK's real endpoint names (`sts.eu-west-1.amazonaws.com`,
`compute.googleapis.com`, `sts.aliyuncs.com` ...), exactly as in a pod. Two ways in:
- as an HTTPS proxy (`HTTPS_PROXY=proxy_url`, which every SDK here honours): the client sends
  `CONNECT host:443`, so it never resolves the name itself;
- as the address those names resolve to (`front(address)`, with a test resolver answering them): the
  client connects to port 443 directly and names the host in its TLS handshake (SNI).
Either way TLS ends here with a certificate for the requested host signed by a test CA (trusted by the
client through the CA bundle variables of `trust_env`), and each request goes on in plain HTTP to the
upstream serving that host, keeping its Host header. Every request and its answer is recorded, so a test
can read which credentials a call carried and what an STS handed out.

Invariants: listens on 127.0.0.0/8 only; a host no route matches gets 502 and is recorded, so a test
sees any endpoint it did not expect; `close()` ends every thread it started.
"""

from __future__ import annotations

import contextlib
import fnmatch
import http.client
import ipaddress
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from routectl.ops.serving import server_context
from tests.support.pki import certificate, leaf_extensions, new_ca

_TIMEOUT_S = 30.0
_HOLD_S = 60.0
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request as the client sent it (after TLS) and the upstream's answer."""

    host: str
    method: str
    path: str
    headers: Mapping[str, str] = field(hash=False)
    """Lower-case names."""
    body: bytes
    status: int
    response: bytes

    @property
    def query(self) -> dict[str, str]:
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query, keep_blank_values=True))
        if "x-www-form-urlencoded" in self.headers.get("content-type", ""):
            params.update(urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True))
        return params


class TestCA:
    """A CA made for one test run, and a leaf certificate per host name it is asked for."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path) -> None:
        self._issuer, cert = new_ca("routectl test clouds CA")
        self.pem = cert.public_bytes(serialization.Encoding.PEM)
        self.file = directory / "ca.crt"
        self.file.write_bytes(self.pem)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context_for(self, host: str) -> ssl.SSLContext:
        """A server context presenting a certificate for `host` (made on first use)."""
        with self._lock:
            context = self._contexts.get(host)
            if context is None:
                context = self._contexts[host] = self._leaf_context(host)
            return context

    def _leaf_context(self, host: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        leaf = certificate(self._issuer, subject, key, leaf_extensions(ExtendedKeyUsageOID.SERVER_AUTH, name))
        pem_key = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return server_context(leaf.public_bytes(serialization.Encoding.PEM) + self.pem, pem_key)

    def trust_env(self) -> dict[str, str]:
        """The variables through which the SDKs here take a CA bundle: botocore, requests (google-auth,
        google-cloud-compute), OpenSSL's default paths (Tea, the Alibaba SDKs' HTTP core)."""
        bundle = str(self.file)
        return {"AWS_CA_BUNDLE": bundle, "REQUESTS_CA_BUNDLE": bundle, "SSL_CERT_FILE": bundle}


class LocalClouds:
    """Routes host names (shell patterns, first match wins) to upstream `http://127.0.0.1:PORT` URLs."""

    def __init__(self, ca: TestCA, routes: Mapping[str, str]) -> None:
        self.ca = ca
        self._routes = dict(routes)
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._server_names: dict[int, str] = {}
        self._holds: list[tuple[str, bytes, threading.Event]] = []
        self._holding = 0
        self._servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
        self._proxy = self._serve(("127.0.0.1", 0), _ProxyHandler)

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        while self._servers:
            server, thread = self._servers.pop()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def _serve(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise ValueError(f"{address[0]}: the local clouds listen on loopback only")
        bound = type("_Bound", (handler,), {"clouds": self})
        server = _Server(address, bound)
        thread = threading.Thread(target=server.serve_forever, name=f"local-clouds-{address[1]}")
        thread.start()
        self._servers.append((server, thread))
        return server

    # -- the two ways in ---------------------------------------------------------------------------

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self._proxy.server_address[1]}"

    def proxy_env(self) -> dict[str, str]:
        """What a process needs to reach the clouds through the proxy, and only them."""
        no_proxy = "127.0.0.1,localhost"
        return {"HTTPS_PROXY": self.proxy_url, "NO_PROXY": no_proxy, **self.ca.trust_env()}

    def front(self, address: tuple[str, int]) -> None:
        """Also answer TLS connections made straight to `address` (names resolved to it by a test
        resolver), picking the host from the handshake's server name."""
        server = self._serve(address, _FrontHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

        def by_server_name(sock: Any, name: str | None, _: ssl.SSLContext) -> None:
            host = name or address[0]
            with self._lock:
                self._server_names[id(sock)] = host
            sock.context = self.ca.context_for(host)

        context.sni_callback = by_server_name
        server.tls_context = context

    def server_name(self, sock: ssl.SSLSocket) -> str:
        """The host a direct TLS connection asked for (its handshake is done)."""
        with self._lock:
            return self._server_names.pop(id(sock), "")

    # -- routing and the record ----------------------------------------------------------------------

    def hold(self, host: str, body_contains: bytes) -> threading.Event:
        """Requests to hosts matching `host` whose body contains `body_contains` are taken and not
        answered (the upstream is not even asked) until the returned event is set, or for 60 s: a cloud
        call in flight."""
        release = threading.Event()
        with self._lock:
            self._holds.append((host, body_contains, release))
        return release

    def held(self, host: str, body: bytes) -> threading.Event | None:
        with self._lock:
            holds = [e for h, b, e in self._holds if fnmatch.fnmatch(host, h) and b in body]
        return next((e for e in holds if not e.is_set()), None)

    def holding(self) -> int:
        """Requests taken and held unanswered right now."""
        with self._lock:
            return self._holding

    def _held_while(self, release: threading.Event) -> None:
        with self._lock:
            self._holding += 1
        try:
            release.wait(_HOLD_S)
        finally:
            with self._lock:
                self._holding -= 1

    def upstream(self, host: str) -> str | None:
        return next((url for pattern, url in self._routes.items() if fnmatch.fnmatch(host, pattern)), None)

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def exchanges(self, host: str = "*") -> list[Exchange]:
        """What went to hosts matching `host`, in order."""
        with self._lock:
            return [e for e in self._exchanges if fnmatch.fnmatch(e.host, host)]

    def hosts(self) -> set[str]:
        return {e.host for e in self.exchanges()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tls_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls_context is not None:
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-request is not worth a traceback."""


class _Forwarding(BaseHTTPRequestHandler):
    """Answers requests for one host by asking its upstream; records each exchange."""

    clouds: ClassVar[LocalClouds]
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = _TIMEOUT_S
    host = ""

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_PATCH(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the record is the log."""

    def _forward(self) -> None:
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        held = self.clouds.held(self.host, body)
        if held is not None:
            self.clouds._held_while(held)
        upstream = self.clouds.upstream(self.host)
        if upstream is None:
            status, reply_headers, reply = 502, [], f"no local cloud serves {self.host}\n".encode()
        else:
            status, reply_headers, reply = _ask(upstream, self.command, self.path, self.headers.items(), body)
        self.clouds.record(Exchange(self.host, self.command, self.path, headers, body, status, reply))
        self.send_response(status)
        for name, value in reply_headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


def _ask(
    upstream: str, method: str, path: str, headers: Any, body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    target = urllib.parse.urlsplit(upstream)
    connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=_TIMEOUT_S)
    try:
        forwarded = {k: v for k, v in headers if k.lower() not in _HOP_BY_HOP}
        forwarded["Content-Length"] = str(len(body))
        connection.request(method, path, body=body, headers=forwarded)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


class _ProxyHandler(_Forwarding):
    """`CONNECT host:port`, then TLS as that host, then requests forwarded on the same connection."""

    def do_CONNECT(self) -> None:
        host = self.path.rsplit(":", 1)[0].strip("[]")
        self.send_response(200, "Connection established")
        self.end_headers()
        tls = self.clouds.ca.context_for(host).wrap_socket(self.connection, server_side=True)
        bound = type("_ForHost", (_Forwarding,), {"clouds": self.clouds, "host": host})
        with contextlib.suppress(OSError, ssl.SSLError):
            bound(tls, self.client_address, self.server)
        self.close_connection = True


class _FrontHandler(_Forwarding):
    """A direct TLS connection: the host is the server name of the handshake."""

    def setup(self) -> None:
        super().setup()
        assert isinstance(self.connection, ssl.SSLSocket)
        self.connection.do_handshake()
        self.host = self.clouds.server_name(self.connection)


class Resolver:
    """A DNS server on `address` (UDP port 53 of a loopback address), standing in for the node's
    resolver: names the local clouds serve resolve to `answer`, every other name is NXDOMAIN. Every
    question is recorded, so a test can tell what a process looked up."""

    def __init__(self, address: str, answer: str, clouds: LocalClouds) -> None:
        self.address = address
        self._answer = ipaddress.IPv4Address(answer).packed
        self._clouds = clouds
        self._lock = threading.Lock()
        self._questions: list[tuple[str, int]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((address, 53))
        self._sock.settimeout(0.2)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="local-resolver")
        self._thread.start()

    def resolv_conf(self) -> str:
        return f"nameserver {self.address}\noptions timeout:1 attempts:1\n"

    def questions(self) -> list[tuple[str, int]]:
        """(name, qtype) asked so far: 1 = A, 28 = AAAA."""
        with self._lock:
            return list(self._questions)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                query, client = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(ValueError, IndexError):
                self._sock.sendto(self._reply(query), client)

    def _reply(self, query: bytes) -> bytes:
        labels, offset = [], 12
        while query[offset]:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode("ascii"))
            offset += 1 + length
        qtype = int.from_bytes(query[offset + 1 : offset + 3])
        question = query[12 : offset + 5]
        name = ".".join(labels).lower()
        with self._lock:
            self._questions.append((name, qtype))
        known = self._clouds.upstream(name) is not None
        answers = b""
        if known and qtype == 1:  # A: one record, pointing at the name in the question (0xc00c)
            answers = b"\xc0\x0c" + (1).to_bytes(2) + (1).to_bytes(2) + (30).to_bytes(4) + (4).to_bytes(2)
            answers += self._answer
        rcode = 0 if known else 3  # NOERROR (an AAAA question gets no record) or NXDOMAIN
        flags = 0x8180 | rcode  # response, recursion desired and available
        counts = (1).to_bytes(2) + (1 if answers else 0).to_bytes(2) + bytes(4)  # QD, AN, NS, AR
        return query[:2] + flags.to_bytes(2) + counts + question + answers
