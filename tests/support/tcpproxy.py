"""A loopback TCP proxy whose connections a test can cut, to break a client's long-lived watch.

The bytes pass through untouched (TLS stays end to end: the apiserver's certificate names 127.0.0.1,
whatever the port). Invariant: while cut, nothing passes in either direction — every open connection is
closed and new ones are closed as they are accepted — until `resume()`. Listens on 127.0.0.1 only, on a
port chosen at run time; `close()` ends every thread it started.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

_ACCEPT_POLL_S = 0.2
_CONNECT_TIMEOUT_S = 5.0
_JOIN_TIMEOUT_S = 5.0
_CHUNK = 65536


class CuttableProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_ACCEPT_POLL_S)
        self._closed = threading.Event()
        self._cut = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> Self:
        self._acceptor.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def cut(self) -> None:
        """Close every open connection and refuse new ones until `resume()`."""
        self._cut.set()
        self._close_all()

    def resume(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self._acceptor.join(_JOIN_TIMEOUT_S)
        self._listener.close()
        self._close_all()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT_S)

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                _close(downstream)
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=_CONNECT_TIMEOUT_S)
            except OSError:
                _close(downstream)
                continue
            upstream.settimeout(None)
            downstream.settimeout(None)
            with self._lock:
                self._sockets.update((downstream, upstream))
                for source, sink in ((downstream, upstream), (upstream, downstream)):
                    thread = threading.Thread(target=_pump, args=(source, sink), name="proxy-pump")
                    thread.start()
                    self._threads.append(thread)
                self._threads = [t for t in self._threads if t.is_alive()]


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy one direction until either side closes; then close both, so the peer notices at once."""
    try:
        while chunk := source.recv(_CHUNK):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected any more
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
