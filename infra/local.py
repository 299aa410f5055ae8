"""Run a task root as one Lambda execution environment, locally and without Docker.

``LocalLambda`` starts the AWS Lambda Runtime Interface Emulator (``infra.rie``) with the real
``awslambdaric`` as its runtime, exactly as the Lambda Python base image's entrypoint does
(``aws-lambda-rie /var/runtime/bootstrap <handler>``). The runtime is a fresh interpreter in
isolated mode whose ``sys.path`` is the task root, a runtime folder and the stdlib
(``infra.runtime_dir``). Where the RIE cannot run, the stdlib emulator in ``infra.runtime_api``
plays the Runtime API instead and this module enforces the timeout itself.

Invocations are serialized (one environment handles one request at a time). The runtime starts
on the first invocation (a cold start) and stays warm until a timeout or crash resets it.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from mlflow_lambda.handler import ENTRY_POINT
from mlflow_lambda.handler.payload import MAX_PAYLOAD_BYTES
from mlflow_lambda.infra import runtime_api
from mlflow_lambda.infra.errors import LocalInvokeError, RieUnavailableError
from mlflow_lambda.infra.results import InvokeResult, classify
from mlflow_lambda.infra.rie import free_ports, listening_ports, locate_rie, rie_reason
from mlflow_lambda.infra.runtime_dir import (
    BOOTSTRAP_NAME,
    Interpreter,
    ensure_runtime_dir,
    find_python,
    lambda_env,
)
from mlflow_lambda.infra.runtime_proc import MemorySampler, child_pids, stop_pids

logger = logging.getLogger(__name__)

# Lambda gives the init phase 10 s before it retries init inside the first invoke.
INIT_LIMIT_S = 10
_READY_TIMEOUT_S = 15.0
_RIE_START_ATTEMPTS = 3
_LOG_SETTLE_S = 3.0
_INIT_REPORT = re.compile(r"INIT REPORT\(durationMs: ([\d.]+)\)")
_RTDONE = re.compile(r"INVOKE RTDONE\(.*duration: ([\d.]+)ms\)")
_REPORT_DURATION = re.compile(r"^REPORT RequestId: .*\tDuration: ([\d.]+) ms")
# The RIE's last line for an invocation: its REPORT, or "Invoke DONE failed" when none follows.
_TERMINAL = re.compile(r"^REPORT RequestId:|\(rapid\) Invoke DONE failed")
_NOT_LOGS = ("START RequestId:", "END RequestId:", "REPORT RequestId:")


def _parent_of(pid: int) -> int | None:
    try:  # field 4 of /proc/<pid>/stat; field 2 (comm) is parenthesised and may hold spaces
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _first(pattern: re.Pattern[str], lines: list[str]) -> float | None:
    for line in lines:
        m = pattern.search(line)
        if m:
            return float(m.group(1))
    return None


class LocalLambda:
    """One local Lambda execution environment for ``task_root``; use as a context manager."""

    def __init__(
        self,
        task_root: Path,
        *,
        handler: str = ENTRY_POINT,
        python: Interpreter | None = None,
        memory_mb: int = 1024,
        timeout_s: int = 30,
        function_name: str = "mlflow-lambda-local",
        region: str = "us-east-1",
        env: Mapping[str, str] | None = None,
        emulator: str = "auto",
        log_sink: Callable[[str], None] | None = None,
        tmp_dir: Path | None = None,
    ) -> None:
        if emulator not in ("auto", "rie", "python"):
            raise ValueError(f"emulator must be 'auto', 'rie' or 'python', not {emulator!r}")
        self.task_root = Path(task_root).resolve()
        self.handler, self.memory_mb, self.timeout_s = handler, memory_mb, timeout_s
        self.function_name, self.region = function_name, region
        self._python, self._extra_env, self._wanted = python, dict(env or {}), emulator
        self._log_sink = log_sink
        self.emulator = ""
        self._lock = threading.Lock()
        self._lines: queue.Queue[str] = queue.Queue()
        self._tmp: Path | None = tmp_dir
        self._own_tmp = tmp_dir is None
        self._rie: subprocess.Popen[bytes] | None = None
        self._rie_port = 0
        self._runtime_pid: int | None = None  # the RIE's runtime child, once known
        self._api: runtime_api.RuntimeApiServer | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._readers: list[threading.Thread] = []

    def __enter__(self) -> LocalLambda:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- setup -----------------------------------------------------------------------------
    def start(self) -> None:
        """Prepare the runtime folder and start the emulator (the runtime starts lazily)."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        python = self._python or find_python(None)
        self._python = python
        self._runtime_dir = ensure_runtime_dir(python)
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="mlflow-lambda-tmp-"))
        self._env = lambda_env(
            python, self.task_root, self._runtime_dir, self._tmp, handler=self.handler,
            function_name=self.function_name, memory_mb=self.memory_mb,
            timeout_s=self.timeout_s, region=self.region, extra=self._extra_env,
        )  # fmt: skip
        # -I: no host site-packages, no PYTHON* variables; -S: no site; -B: write no bytecode
        # (/var/task is read-only on Lambda, and root would ignore our chmod a-w).
        bootstrap = str(self._runtime_dir / BOOTSTRAP_NAME)
        self._argv = [str(python.path), "-I", "-S", "-B", bootstrap]
        self._argv.append(self.handler)
        if self._wanted in ("auto", "rie"):
            try:
                self._start_rie()
                self.emulator = "rie"
                return
            except RieUnavailableError as exc:
                if self._wanted == "rie":
                    raise
                logger.warning("%s; using the stdlib Runtime API emulator instead", exc)
        arn = f"arn:aws:lambda:{self.region}:123456789012:function:{self.function_name}"
        self._api = runtime_api.RuntimeApiServer(arn)
        self.emulator = "python"

    def _reader(self, stream: IO[bytes]) -> None:
        # Split on b"\n" only: awslambdaric frames multi-line tracebacks with "\r".
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n").replace("\r", "\n")
            self._lines.put(line)
            # The RIE's own START/END/REPORT lines carry fake memory figures: keep them out.
            if self._log_sink and "(rapid)" not in line and not line.startswith(_NOT_LOGS):
                self._log_sink(line)
        stream.close()

    def _spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            argv, cwd=self.task_root, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        assert proc.stdout is not None
        reader = threading.Thread(target=self._reader, args=(proc.stdout,), daemon=True)
        reader.start()
        self._readers.append(reader)
        return proc

    def _start_rie(self) -> None:
        rie = locate_rie()
        # The ports are free when chosen but another process can take one before the RIE binds
        # it; the RIE then panics (exit 2). Try again on fresh ports, a bounded number of times.
        for attempt in range(1, _RIE_START_ATTEMPTS + 1):
            self._rie_port, api_port = free_ports(2)
            argv = [str(rie), "--runtime-interface-emulator-address", f"127.0.0.1:{self._rie_port}"]
            argv += ["--runtime-api-address", f"127.0.0.1:{api_port}", *self._argv]
            try:
                self._rie = self._spawn(argv, self._env)
            except OSError as exc:  # e.g. ENOEXEC: a binary for another platform
                raise RieUnavailableError(f"cannot run {str(rie)!r}: {exc}") from exc
            code = self._wait_rie_listening(api_port)
            if code is None:
                return
            output = self._drain_rie_output()
            if attempt == _RIE_START_ATTEMPTS or "address already in use" not in output:
                raise RieUnavailableError(f"the RIE exited with code {code}: {rie_reason(output)}")
            logger.info("the RIE could not bind its ports; retrying on others")

    def _wait_rie_listening(self, api_port: int) -> int | None:
        """None once the RIE listens on both its ports, else its exit code.

        Where ``/proc`` says which ports the RIE holds, both must be its own (see
        :func:`listening_ports`); elsewhere, its emulator port accepting a connection.
        """
        assert self._rie is not None
        end = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < end:
            if self._rie.poll() is not None:
                return self._rie.returncode
            held = listening_ports(self._rie.pid)
            if held is not None:
                if {self._rie_port, api_port} <= held:
                    return None
                time.sleep(0.02)
                continue
            try:
                socket.create_connection(("127.0.0.1", self._rie_port), timeout=1).close()
                return None
            except OSError:
                time.sleep(0.05)
        raise RieUnavailableError(f"the RIE did not listen on port {self._rie_port} in time")

    def _drain_rie_output(self) -> str:
        """Everything the exited RIE printed (its reader finishes when its stdout closes)."""
        self._readers[-1].join(timeout=5)
        lines = []
        while not self._lines.empty():
            lines.append(self._lines.get_nowait())
        self._rie = None
        return "\n".join(lines)

    # -- invoke ----------------------------------------------------------------------------
    def invoke(self, event: Any) -> InvokeResult:
        """Invoke the function once with ``event`` (JSON-serializable) and wait for it."""
        body = json.dumps(event).encode()
        if len(body) > MAX_PAYLOAD_BYTES:
            raise LocalInvokeError(
                f"the event is {len(body)} bytes, over Lambda's {MAX_PAYLOAD_BYTES}-byte "
                "synchronous invocation limit; send a smaller batch"
            )
        with self._lock:
            while not self._lines.empty():  # lines from before this invocation
                self._lines.get_nowait()
            if self.emulator == "rie":
                return self._invoke_rie(body)
            if self.emulator == "python":
                return self._invoke_python(body)
            raise LocalInvokeError("LocalLambda is not started; use it as a context manager")

    def _collect(self, settle_s: float, done: Callable[[list[str]], bool]) -> list[str]:
        lines: list[str] = []
        end = time.monotonic() + settle_s
        while not done(lines):
            try:
                lines.append(self._lines.get(timeout=max(0.0, end - time.monotonic())))
            except queue.Empty:
                break
        return lines

    def _result(
        self, payload: bytes, error: tuple[str | None, str | None], init_ms: float | None,
        duration_ms: float | None, peak: float | None, lines: list[str],
    ) -> InvokeResult:  # fmt: skip
        logs = tuple(ln for ln in lines if "(rapid)" not in ln and not ln.startswith(_NOT_LOGS))
        return InvokeResult(
            payload, error[0], error[1], init_ms, duration_ms, peak, self.memory_mb,
            self.emulator, logs,
        )  # fmt: skip

    def _invoke_rie(self, body: bytes) -> InvokeResult:
        assert self._rie is not None
        rie = self._rie.pid
        # Finding the runtime scans all of /proc (milliseconds of CPU on a busy host): do it
        # once per runtime, not once per request, which matters under `serve`'s load.
        known = self._runtime_pid
        if known is not None and _parent_of(known) != rie:
            known = self._runtime_pid = None
        sampler = MemorySampler(pid=known) if known else MemorySampler(parent=rie)
        conn = http.client.HTTPConnection(
            "127.0.0.1", self._rie_port, timeout=self.timeout_s + INIT_LIMIT_S + 30
        )
        try:
            conn.request("POST", "/2015-03-31/functions/function/invocations", body)
            resp = conn.getresponse()
            status, payload = resp.status, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise LocalInvokeError(f"the RIE did not answer the invocation: {exc}") from exc
        finally:
            conn.close()
            peak = sampler.stop()
        if self._runtime_pid is None:
            self._runtime_pid = next(iter(child_pids(rie)), None)
        lines = self._collect(_LOG_SETTLE_S, lambda ls: bool(ls) and bool(_TERMINAL.search(ls[-1])))
        duration = _first(_RTDONE, lines) or _first(_REPORT_DURATION, lines)
        error = classify(status, payload)
        return self._result(payload, error, _first(_INIT_REPORT, lines), duration, peak, lines)

    def _invoke_python(self, body: bytes) -> InvokeResult:
        assert self._api is not None
        api = self._api.api
        cold = self._proc is None or self._proc.poll() is not None
        if cold:
            api.abandon()
            env = dict(self._env, AWS_LAMBDA_RUNTIME_API=self._api.address)
            spawned_at = time.monotonic()
            self._proc = self._spawn(self._argv, env)
        proc = self._proc
        assert proc is not None
        sampler = MemorySampler(pid=proc.pid)
        request_id = api.submit(body, self.timeout_s)
        start = time.monotonic()
        outcome, deadline = None, None
        while outcome is None:
            outcome = api.wait(request_id, 0.05)
            handed = api.handed_out_at(request_id)
            now = time.monotonic()
            if deadline is None and handed is not None:
                deadline = handed + self.timeout_s
            limit = deadline if deadline is not None else start + INIT_LIMIT_S + self.timeout_s
            if outcome is None and (now > limit or proc.poll() is not None):
                outcome = api.wait(request_id, 0.2)  # it may have answered just before exiting
                if outcome is None:
                    return self._python_failure(proc, sampler, handed, now > limit)
        peak = sampler.stop()
        init_ms = None
        if cold and (api.first_poll_at or outcome.kind == "init_error"):
            init_ms = ((api.first_poll_at or outcome.at) - spawned_at) * 1000
        duration = None
        if outcome.started_at is not None:
            duration = (outcome.at - outcome.started_at) * 1000
        if outcome.kind == "init_error":
            stop_pids([proc.pid], grace_s=5)
            proc.wait(timeout=5)
        error = classify(502, outcome.body) if outcome.kind != "response" else (None, None)
        # The runtime wrote its log before reporting; give the reader thread a moment on errors.
        lines = self._collect(0.1 if error[0] else 0.0, lambda ls: False)
        return self._result(outcome.body, error, init_ms, duration, peak, lines)

    def _python_failure(self, proc: subprocess.Popen[bytes], sampler: MemorySampler,
                        handed: float | None, timed_out: bool) -> InvokeResult:  # fmt: skip
        stop_pids([proc.pid], grace_s=0)
        proc.wait(timeout=10)
        peak = sampler.stop()
        assert self._api is not None
        self._api.api.abandon()
        lines = self._collect(0.1, lambda ls: False)
        if timed_out:
            text = f"Task timed out after {self.timeout_s:.2f} seconds"
            duration: float | None = self.timeout_s * 1000.0
            return self._result(text.encode(), ("Sandbox.Timedout", text), None, duration,
                                peak, lines)  # fmt: skip
        text = f"Runtime exited with error: exit status {proc.returncode}"
        payload = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": text}).encode()
        duration = (time.monotonic() - handed) * 1000 if handed else None
        return self._result(payload, ("Runtime.ExitError", text), None, duration, peak, lines)

    def sibling(self, tmp_dir: Path) -> LocalLambda:
        """Another environment of the same function: same task root, runtime and settings, its
        own ``tmp_dir`` (Lambda gives each concurrent instance a /tmp of its own). Not started."""
        mine = str(self._tmp) if self._tmp is not None else None
        env = {}
        for key, value in self._extra_env.items():
            if mine and (value == mine or value.startswith(mine + "/")):
                value = str(tmp_dir) + value[len(mine) :]
            env[key] = value
        return LocalLambda(
            self.task_root, handler=self.handler, python=self._python, memory_mb=self.memory_mb,
            timeout_s=self.timeout_s, function_name=self.function_name, region=self.region,
            env=env, emulator=self.emulator or self._wanted, log_sink=self._log_sink,
            tmp_dir=tmp_dir,
        )  # fmt: skip

    # -- teardown --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the runtime and the emulator by PID and remove the writable temp folder."""
        procs = [p for p in (self._proc, self._rie) if p is not None]
        if self._rie is not None:
            # The RIE SIGKILLs its runtime on SIGTERM; take the runtime's PID first in case not.
            children = child_pids(self._rie.pid)
            stop_pids([self._rie.pid], grace_s=5)
            stop_pids(children, grace_s=0)
        if self._proc is not None:
            stop_pids([self._proc.pid], grace_s=2)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._api is not None:
            self._api.close()
        for reader in self._readers:
            reader.join(timeout=5)
        self._proc = self._rie = self._api = None
        if self._tmp is not None and self._own_tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.emulator = ""
