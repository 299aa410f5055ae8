"""A small stdlib emulator of the Lambda Runtime API, for hosts where the RIE cannot run.

It serves the four routes a Python runtime uses (AWS docs, "Using the Lambda runtime API for
custom runtimes", API version 2018-06-01):

    GET  /2018-06-01/runtime/invocation/next          -> blocks until an event is queued
    POST /2018-06-01/runtime/invocation/{id}/response -> 202, the invocation succeeded
    POST /2018-06-01/runtime/invocation/{id}/error    -> 202, the function raised
    POST /2018-06-01/runtime/init/error               -> 202, the handler failed to import

``RuntimeApi`` is the state machine (socket-free, so unit tests drive ``dispatch`` directly);
``RuntimeApiServer`` puts it behind a ``ThreadingHTTPServer`` bound to 127.0.0.1.
One invocation is in flight at a time, as in one Lambda execution environment.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mlflow_lambda.handler.payload import MAX_PAYLOAD_BYTES

# Lambda's synchronous response limit: 6 MB; the RIE's exact figure is 6 MiB + 100 bytes
# ("Response payload size exceeded maximum allowed payload size (6291556 bytes).").
MAX_RESPONSE_BYTES = MAX_PAYLOAD_BYTES + 100
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_PREFIX = "/2018-06-01/runtime"
_INVOCATION = re.compile(rf"^{_PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")


@dataclass(frozen=True)
class Outcome:
    """How an invocation (or the init phase) ended, as the runtime reported it."""

    kind: str  # "response" | "error" | "init_error"
    body: bytes
    error_type: str | None
    at: float  # time.monotonic() when it was reported
    started_at: float | None = None  # when the runtime received the event from /next


@dataclass
class _Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    handed_out_at: float | None = None
    outcome: Outcome | None = None


Reply = tuple[int, dict[str, str], bytes]


def _json_reply(status: int, payload: dict[str, str]) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


class RuntimeApi:
    """The Runtime API's state for one function instance; thread-safe."""

    def __init__(self, function_arn: str) -> None:
        self.function_arn = function_arn
        self._cond = threading.Condition()
        self._pending: _Invocation | None = None
        self._current: _Invocation | None = None
        self._closed = False
        self.first_poll_at: float | None = None
        self.init_error: Outcome | None = None

    def submit(self, event: bytes, timeout_s: float) -> str:
        """Queue one event for the runtime's next ``/next`` poll; return its request id."""
        request_id = str(uuid.uuid4())
        deadline = int(time.time() * 1000 + timeout_s * 1000)
        with self._cond:
            if self._pending is not None or self._current is not None:
                raise RuntimeError("an invocation is already in flight")
            self._pending = _Invocation(request_id, event, deadline)
            self._cond.notify_all()
        return request_id

    def wait(self, request_id: str, timeout_s: float) -> Outcome | None:
        """Wait up to ``timeout_s`` for the outcome of ``request_id`` (or an init error)."""
        end = time.monotonic() + timeout_s
        with self._cond:
            while True:
                inv = self._current if self._current else self._pending
                if inv and inv.request_id == request_id and inv.outcome:
                    self._current = None
                    return inv.outcome
                if self.init_error is not None:
                    self._pending = self._current = None
                    return self.init_error
                left = end - time.monotonic()
                if left <= 0 or self._closed:
                    return None
                self._cond.wait(left)

    def handed_out_at(self, request_id: str) -> float | None:
        """When the runtime received ``request_id`` from ``/next`` (monotonic), if it has."""
        with self._cond:
            for inv in (self._current, self._pending):
                if inv and inv.request_id == request_id:
                    return inv.handed_out_at
        return None

    def abandon(self) -> None:
        """Forget the in-flight invocation (after a timeout killed the runtime)."""
        with self._cond:
            self._pending = self._current = None
            self.init_error = None
            self.first_poll_at = None

    def close(self) -> None:
        """Wake every blocked ``/next`` poll so server threads can finish."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one Runtime API request; ``/next`` blocks until an event is submitted."""
        if method == "GET" and path == f"{_PREFIX}/invocation/next":
            return self._next()
        if method == "POST" and path == f"{_PREFIX}/init/error":
            with self._cond:
                error_type = headers.get(ERROR_TYPE_HEADER)
                self.init_error = Outcome("init_error", body, error_type, time.monotonic())
                self._cond.notify_all()
            return _json_reply(202, {"status": "OK"})
        match = _INVOCATION.match(path)
        if method == "POST" and match:
            return self._report(match["id"], match["kind"], headers, body)
        return _json_reply(404, {"errorType": "NotFound", "errorMessage": f"{method} {path}"})

    def _next(self) -> Reply:
        with self._cond:
            if self.first_poll_at is None:
                self.first_poll_at = time.monotonic()
                self._cond.notify_all()
            while self._pending is None and not self._closed:
                self._cond.wait()
            if self._pending is None:
                return _json_reply(410, {"errorType": "Shutdown", "errorMessage": "closing"})
            inv, self._pending = self._pending, None
            inv.handed_out_at = time.monotonic()
            self._current = inv
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
        }
        return 200, headers, inv.event

    def _report(self, request_id: str, kind: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._cond:
            inv = self._current
            if inv is None or inv.request_id != request_id or inv.outcome is not None:
                return _json_reply(
                    400,
                    {"errorType": "InvalidRequestID", "errorMessage": f"{request_id!r} unknown"},
                )
            now = time.monotonic()
            if kind == "response" and len(body) > MAX_RESPONSE_BYTES:
                message = (
                    "Response payload size exceeded maximum allowed payload size "
                    f"({MAX_RESPONSE_BYTES} bytes)."
                )
                payload = {"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message}
                err = json.dumps(payload).encode()
                too_large = "Function.ResponseSizeTooLarge"
                inv.outcome = Outcome("error", err, too_large, now, inv.handed_out_at)
                self._cond.notify_all()
                return _json_reply(
                    413, {"errorType": "RequestEntityTooLarge", "errorMessage": message}
                )
            error_type = headers.get(ERROR_TYPE_HEADER) if kind == "error" else None
            inv.outcome = Outcome(kind, body, error_type, now, inv.handed_out_at)
            self._cond.notify_all()
        return _json_reply(202, {"status": "OK"})


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive with TCP_NODELAY, for the Runtime API and for ``serve``.

    Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the
    peer's delayed ACK add ~40 ms to every warm request on a reused connection.
    """

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Handler(KeepAliveHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        status, out_headers, out = self.server.api.dispatch(self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: object) -> None:
        """Silence per-request logging; the runtime's own log is what users want to see."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: RuntimeApi) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet when a runtime we killed (timeout, shutdown) drops its connection."""


class RuntimeApiServer:
    """``RuntimeApi`` served over HTTP on 127.0.0.1 at a free port, in a background thread."""

    def __init__(self, function_arn: str) -> None:
        self.api = RuntimeApi(function_arn)
        self._server = _Server(self.api)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """``host:port`` to put in ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self.api.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
