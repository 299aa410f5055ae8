"""A small fault-injecting HTTP proxy on 127.0.0.1, in front of a real server (moto's S3).

Point a client's endpoint at the proxy; every request is forwarded to ``upstream`` unless a
fault is queued for it. Faults are queued per path suffix and HTTP method and used up in
order, one per matching request; requests with no fault left pass through::

    with moto_server() as endpoint, FaultProxy(endpoint) as proxy:
        proxy.inject("/models/1/model.skops", "GET", ["slowdown", "reset", "truncate"])
        ...  # a client of proxy.url: the fourth GET of that key gets the real object
        assert proxy.count("/models/1/model.skops", "GET") == 4

Faults:
    slowdown   503 with S3's SlowDown error body (what S3 answers when throttling)
    error500   500 with S3's InternalError body
    reset      the connection is reset (RST) before any answer
    truncate   the real answer's status and headers (full Content-Length), half of its body,
               then a reset
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

FAULTS = ("slowdown", "error500", "reset", "truncate")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "server", "date"}
_S3_ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "error500": (500, "InternalError", "We encountered an internal error. Please try again."),
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        fault = self.server.proxy.take(path, self.command)
        if fault == "reset":
            self._reset()
            return
        if fault in _S3_ERRORS:
            status, code, message = _S3_ERRORS[fault]
            xml = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message><Resource>{path}</Resource></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            self.wfile.write(xml)
            return
        status, headers, answer = self._forward(body)
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.end_headers()
        if fault == "truncate":
            self.wfile.write(answer[: len(answer) // 2])
            self.wfile.flush()
            self._reset()
            return
        self.wfile.write(answer)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        host, port = self.server.proxy.upstream
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy


class FaultProxy:
    """Forwards to ``upstream`` (``http://host:port``), injecting queued faults."""

    def __init__(self, upstream: str) -> None:
        url = urlsplit(upstream)
        if url.scheme != "http" or url.hostname != "127.0.0.1" or url.port is None:
            raise ValueError(f"upstream must be http://127.0.0.1:PORT, not {upstream!r}")
        self.upstream = (url.hostname, url.port)
        self._lock = threading.Lock()
        self._faults: dict[tuple[str, str], deque[str]] = defaultdict(deque)
        self._seen: list[tuple[str, str]] = []
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def inject(self, path_suffix: str, method: str, faults: Iterable[str]) -> None:
        """Queue ``faults`` for the next requests whose path ends with ``path_suffix``."""
        faults = list(faults)
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown!r}; choose from {FAULTS!r}")
        with self._lock:
            self._faults[(path_suffix, method.upper())].extend(faults)

    def take(self, path: str, method: str) -> str | None:
        """Record a request; return the fault to inject into it, if one is queued."""
        with self._lock:
            self._seen.append((method, path))
            for (suffix, wanted), queued in self._faults.items():
                if wanted == method and path.endswith(suffix) and queued:
                    return queued.popleft()
        return None

    def count(self, path_suffix: str, method: str) -> int:
        """How many ``method`` requests for a path ending with ``path_suffix`` arrived."""
        with self._lock:
            return sum(1 for m, p in self._seen if m == method and p.endswith(path_suffix))

    def reset(self) -> None:
        """Forget every queued fault and every request seen."""
        with self._lock:
            self._faults.clear()
            self._seen.clear()
