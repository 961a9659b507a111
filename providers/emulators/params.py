"""The parameters of a request to an emulator, wherever the SDK put them: the query string, and a form or
JSON body (RPC-style clouds send the same parameters either way)."""

from __future__ import annotations

import json
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any


def request_params(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    """Query parameters, then those of the body (read whole) on top; nested JSON values are left out."""
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(handler.path).query, keep_blank_values=True))
    length = int(handler.headers.get("content-length") or 0)
    body = handler.rfile.read(length).decode("utf-8") if length else ""
    content_type = handler.headers.get("content-type") or ""
    if body and "json" in content_type:
        params.update({k: str(v) for k, v in json.loads(body).items() if not isinstance(v, list | dict)})
    elif body and "x-www-form-urlencoded" in content_type:
        params.update(urllib.parse.parse_qsl(body, keep_blank_values=True))
    return params


class RpcHandler(BaseHTTPRequestHandler):
    """The handler of an RPC-style emulator: keep-alive HTTP/1.1 without Nagle's delay (the SDKs reuse
    connections), GET and POST both answered by `serve`, no per-request log (the emulator's own record
    of calls is the log)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.serve()

    def do_POST(self) -> None:
        self.serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def serve(self) -> None:
        raise NotImplementedError
