"""The probe and metrics HTTP endpoints: `/healthz` (liveness), `/readyz` (node cache synced), `/metrics`.

Both servers are plain stdlib HTTP servers in their own threads; they only read state through the
callables they are given, so a probe can never block the controller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], bool]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Callable[[], tuple[int, str, bytes]]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path.split("?", 1)[0])
        status, content_type, body = route() if route else (404, "text/plain", b"not found\n")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


def _probe(check: Check) -> Callable[[], tuple[int, str, bytes]]:
    def respond() -> tuple[int, str, bytes]:
        ok = check()
        return (200, "text/plain", b"ok\n") if ok else (503, "text/plain", b"failing\n")

    return respond


def _metrics(registry: CollectorRegistry) -> Callable[[], tuple[int, str, bytes]]:
    return lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry))


class HttpEndpoint:
    """One listening socket serving a fixed set of paths; `stop()` closes it and joins its thread."""

    def __init__(self, address: tuple[str, int], routes: dict[str, Callable[[], tuple[int, str, bytes]]]):
        self._server = _Server(address, _Handler)
        self._server.routes = routes
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-{address[1]}")

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


def metrics_endpoint(address: tuple[str, int], registry: CollectorRegistry) -> HttpEndpoint:
    return HttpEndpoint(address, {"/metrics": _metrics(registry)})
