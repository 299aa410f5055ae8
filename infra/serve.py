"""``mlflow-lambda serve``: a local HTTP front for a bundle, a drop-in for ``mlflow models serve``.

Each request becomes an API Gateway HTTP API (payload 2.0) event, goes through the same local
Lambda as ``invoke`` and the function's 2.0 response is mapped back to HTTP, as API Gateway
does. Like Lambda under load, ``serve`` runs several warm environments (``--workers``, one per
CPU by default; ``infra.pool``), each answering one request at a time. Routing and answers are the
handler's own, so ``/ping``, ``/health``, ``/version`` and ``/invocations`` behave as deployed.
Defaults match ``mlflow models serve``: 127.0.0.1, port 5000.
"""

from __future__ import annotations

import base64
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mlflow_lambda.handler.payload import MAX_PAYLOAD_BYTES
from mlflow_lambda.infra.errors import LocalInvokeError
from mlflow_lambda.infra.invoke import describe_failure, format_report, open_bundle
from mlflow_lambda.infra.local import LocalLambda
from mlflow_lambda.infra.pool import LocalLambdaPool, default_workers
from mlflow_lambda.infra.results import InvokeResult
from mlflow_lambda.infra.runtime_api import KeepAliveHandler
from mlflow_lambda.packager.events import make_event

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
# What API Gateway HTTP APIs answer when the Lambda integration fails (function error, timeout).
_GATEWAY_ERROR = (500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
Response = tuple[int, dict[str, str], bytes]
_DRAIN_MAX = 64 * 1024 * 1024


def _too_large(size: int, limit: int) -> Response:
    message = (
        f"Request body is {size} bytes, over the {limit}-byte limit of a synchronous Lambda "
        "invocation (6 MB); send fewer rows per request"
    )
    body = json.dumps({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": message}).encode()
    return 413, {"content-type": "application/json"}, body


def to_event(method: str, target: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event for one HTTP request."""
    url = urlsplit(target)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    event = make_event(
        "v2", body if body else None, method=method, path=url.path or "/",
        content_type=content_type, headers=dict(headers),
    )  # fmt: skip
    if url.query:
        event["rawQueryString"] = url.query
        params: dict[str, str] = {}
        for key, value in parse_qsl(url.query, keep_blank_values=True):
            # Payload 2.0 joins repeated parameters with commas.
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    return event


def from_result(result: InvokeResult) -> Response:
    """Map a payload 2.0 response to HTTP, as API Gateway does (AWS docs, "Create AWS Lambda
    proxy integrations for HTTP APIs": a result without ``statusCode`` is sent as JSON, 200)."""
    if not result.ok:
        return _GATEWAY_ERROR
    try:
        doc = result.json()
    except ValueError:
        return _GATEWAY_ERROR
    if not (isinstance(doc, dict) and "statusCode" in doc):
        return 200, {"content-type": "application/json"}, json.dumps(doc).encode()
    headers = {str(k).lower(): str(v) for k, v in (doc.get("headers") or {}).items()}
    body = doc.get("body") or ""
    raw = base64.b64decode(body) if doc.get("isBase64Encoded") else str(body).encode()
    for i, cookie in enumerate(doc.get("cookies") or []):
        headers[f"set-cookie\0{i}"] = str(cookie)  # de-duplicated key, split when sent
    return int(doc["statusCode"]), headers, raw


class _Handler(KeepAliveHandler):
    server: _Server

    def _handle(self) -> None:
        limit = self.server.max_body_bytes
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked(limit)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > limit:
                self._discard(length)
                self._send(*_too_large(length, limit))
                return
            body = self.rfile.read(length)
        if body is None:
            self._send(*_too_large(limit + 1, limit))
            return
        event = to_event(self.command, self.path, dict(self.headers.items()), body)
        try:
            result = self.server.fn.invoke(event)
        except LocalInvokeError as exc:  # the event itself is over Lambda's payload limit
            logger.error("%s", exc)
            self._send(*_too_large(len(json.dumps(event)), MAX_PAYLOAD_BYTES))
            return
        if not result.ok:
            self.server.say(f"error: {describe_failure(result, self.server.fn.timeout_s)}")
        if result.init_ms is not None or not result.ok:
            self.server.say(format_report(result))
        self._send(*from_result(result))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def _discard(self, length: int) -> None:
        # Read what the client is sending so it gets our 413 rather than a broken pipe; past
        # _DRAIN_MAX bytes, just close the connection.
        if length > _DRAIN_MAX:
            self.close_connection = True
            return
        while length > 0:
            length -= len(self.rfile.read(min(length, 1 << 20)) or b"\0" * length)

    def _read_chunked(self, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > limit:
                self.close_connection = True
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name.split("\0")[0], value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.say(f"{self.address_string()} - {format % args}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen() backlog: many clients connecting at once (default 5)
    fn: LocalLambda | LocalLambdaPool  # set by make_server, or by serve_bundle once it is open

    def __init__(self, addr: tuple[str, int], max_body: int, quiet: bool) -> None:
        try:
            super().__init__(addr, _Handler)
        except OSError as exc:  # EADDRINUSE, EACCES (a port below 1024), EADDRNOTAVAIL
            host, port = addr
            raise LocalInvokeError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop what uses port "
                f"{port} or choose another with -p/--port"
            ) from None
        self.max_body_bytes, self.quiet = max_body, quiet

    def say(self, line: str) -> None:
        if not self.quiet:
            print(line, file=sys.stderr, flush=True)


def make_server(
    fn: LocalLambda | LocalLambdaPool,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    max_body_bytes: int = MAX_PAYLOAD_BYTES,
    quiet: bool = False,
) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) that forwards every request to ``fn``."""
    server = bind(host, port, max_body_bytes=max_body_bytes, quiet=quiet)
    server.fn = fn
    return server


def bind(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    max_body_bytes: int = MAX_PAYLOAD_BYTES,
    quiet: bool = False,
) -> _Server:
    """Bind ``host:port`` now, before anything slow, so a busy port fails at once.

    Raises :class:`LocalInvokeError` (one line, naming the port) when the port is taken.
    """
    return _Server((host, port), max_body_bytes, quiet)


def serve_bundle(
    outdir: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    emulator: str = "auto",
    memory_mb: int | None = None,
    timeout_s: int | None = None,
    env: Mapping[str, str] | None = None,
    warm: bool = True,
    workers: int | None = None,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    quiet: bool = False,
    server: _Server | None = None,
) -> None:
    """Serve the bundle in ``outdir`` on ``host:port`` until Ctrl-C, SIGTERM or ``stop`` is set.

    The port is bound first (or ``server``, from :func:`bind`, is used), so a busy port fails
    before the bundle is opened. ``workers`` warm environments (default: one per CPU) answer
    requests concurrently. With ``warm``, a ``GET /ping`` cold-starts each of them first, so an
    import error stops ``serve`` at once (LocalInvokeError) instead of failing the first request.
    """
    size = workers if workers is not None else default_workers()
    if size < 1:
        raise LocalInvokeError(f"--workers must be at least 1, not {size!r}")

    def sink(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    bound = server or bind(host, port, quiet=quiet)
    try:
        url = f"http://{host}:{bound.server_address[1]}"
        options = _Options(emulator, memory_mb, timeout_s, env, warm, size)
        _serve(outdir, bound, url, sink, options, on_ready, stop)
    finally:
        bound.server_close()


@dataclass(frozen=True)
class _Options:
    emulator: str
    memory_mb: int | None
    timeout_s: int | None
    env: Mapping[str, str] | None
    warm: bool
    workers: int


def _serve(
    outdir: Path,
    server: _Server,
    url: str,
    sink: Callable[[str], None],
    opts: _Options,
    on_ready: Callable[[str], None] | None,
    stop: threading.Event | None,
) -> None:
    with open_bundle(
        outdir, emulator=opts.emulator, memory_mb=opts.memory_mb, timeout_s=opts.timeout_s,
        env=opts.env, log_sink=sink,
    ) as first, LocalLambdaPool(first, opts.workers) as fn:  # fmt: skip
        if opts.warm:
            ping = make_event("v2", None, method="GET", path="/ping", content_type=None)
            for result in fn.warm(ping):
                if not result.ok:
                    raise LocalInvokeError(describe_failure(result, fn.timeout_s))
                sink(format_report(result))
        server.fn = fn
        sink(f"serving {outdir} on {url} ({fn.emulator}, {opts.workers} workers); Ctrl-C to stop")
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        previous = _on_sigterm()
        try:
            thread.start()
            if on_ready:
                on_ready(url)
            done = stop or threading.Event()
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            sink("shutting down")
        finally:
            server.shutdown()
            thread.join(timeout=10)
            sink(f"requests answered per worker: {', '.join(map(str, fn.answered))}")
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _on_sigterm() -> Any:
    """Turn SIGTERM into KeyboardInterrupt (main thread only) so both stop gracefully."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, raise_interrupt)
