"""An HTTP proxy in front of moto's server that answers chosen EC2 actions with an EC2 error, so a
routectl *process* meets the cloud refusing it (a botocore hook only reaches clients in the test's own
process).

EC2's Query API names the action in the form-encoded body (`Action=CreateRoute&...`); a denied action
gets the status and `<Response><Errors>` XML the real EC2 sends, everything else is passed to moto
unchanged. Invariant: listens on 127.0.0.1 only; `close()` stops it and joins its thread; the count of
each denied action is kept for the test to check it was exercised.
"""

from __future__ import annotations

import http.client
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

_TIMEOUT_S = 30.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: tuple[str, int]
    deny: dict[str, tuple[int, str]]
    denied: Counter[str]
    lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        action = (parse_qs(body.decode(errors="replace")).get("Action") or [""])[0]
        if action in self.server.deny:
            status, code = self.server.deny[action]
            with self.server.lock:
                self.server.denied[action] += 1
            self._send(status, {"Content-Type": "text/xml;charset=UTF-8"}, _ec2_error(code))
            return
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=_TIMEOUT_S)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            self._send(response.status, kept, payload)
        finally:
            upstream.close()

    def do_GET(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return None


def _ec2_error(code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code>"
        "<Message>You are not authorized to perform this operation.</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


class Ec2FaultProxy:
    """`with Ec2FaultProxy(moto_url, deny={"CreateRoute": (403, "UnauthorizedOperation")}) as proxy:`
    point routectl's `--cloud-endpoint` at `proxy.url`."""

    def __init__(self, upstream_url: str, deny: dict[str, tuple[int, str]]) -> None:
        parts = urlsplit(upstream_url)
        assert parts.hostname is not None
        assert parts.port is not None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.upstream = (parts.hostname, parts.port)
        self._server.deny = dict(deny)
        self._server.denied = Counter()
        self._server.lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, name="ec2-fault-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def denied(self, action: str) -> int:
        with self._server.lock:
            return self._server.denied[action]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
