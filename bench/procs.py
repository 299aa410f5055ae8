"""Processes for the benchmarks: start servers on 127.0.0.1, talk to them, measure, stop by PID.

Every server is started in a session of its own (its PID is its process group id) and stopped
in a ``finally`` through :func:`stop_tree`: SIGTERM to that group (``mlflow-lambda serve``
turns it into a graceful shutdown that stops its emulator), then SIGKILL to whatever of the
tree, as recorded before, is still there. Nothing is found or killed by name.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from mlflow_lambda.infra.runtime_proc import child_pids, peak_rss_mb, stop_pids

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, parents first."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        found.append(current)
        todo += child_pids(current)
    return found


def tree_rss_mb(pid: int) -> dict[int, float]:
    """Peak RSS (VmHWM, MiB) of ``pid`` and each descendant that is still running."""
    out = {}
    for member in tree(pid):
        value = peak_rss_mb(member)
        if value is not None:
            out[member] = value
    return out


def command_line(pid: int) -> str:
    """The process's command line, for telling a server's processes apart in the results."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:200]


def start(
    argv: Sequence[str], *, env: Mapping[str, str], log: IO[bytes], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, output to ``log``."""
    return subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_tree(proc: subprocess.Popen[bytes], *, grace_s: float = 10.0) -> None:
    """Stop ``proc`` and everything it started: SIGTERM its group, then SIGKILL stragglers."""
    members = tree(proc.pid) if proc.poll() is None else []
    # Children that started sessions of their own (the Lambda emulator) are not in the group.
    sessions = [pid for pid in members[1:] if _session(pid) == pid]
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    for pid in sessions:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    stop_pids(members[1:], grace_s=0)


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


class Client:
    """One keep-alive HTTP/1.1 connection to a local server (TCP_NODELAY, as ``curl`` does)."""

    def __init__(self, port: int, timeout_s: float = 120.0) -> None:
        self.port, self.timeout_s = port, timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout_s)
            self._conn.connect()
            assert self._conn.sock is not None
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._conn

    def post(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """POST ``body``; return status and response body (reconnects once if dropped)."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", path, body, {"Content-Type": content_type})
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (ConnectionError, http.client.RemoteDisconnected):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def wait_first_answer(
    proc: subprocess.Popen[bytes], port: int, body: bytes, *, started: float, limit_s: float
) -> tuple[float, bytes]:
    """Poll ``POST /invocations`` until it answers 200; return (ms since ``started``, body).

    ``started`` is the ``time.perf_counter()`` taken just before the server was launched.
    Raises RuntimeError if the server exits or does not answer within ``limit_s``.
    """
    deadline = started + limit_s
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before answering")
        client = Client(port, timeout_s=limit_s)
        try:
            status, answer = client.post("/invocations", body)
        except OSError:
            time.sleep(0.02)
            continue
        finally:
            client.close()
        if status == 200:
            return (time.perf_counter() - started) * 1000, answer
        time.sleep(0.02)  # up, but the model is not loaded yet (503) or another hiccup
    raise RuntimeError(f"server on port {port} gave no 200 within {limit_s:.0f} s")
