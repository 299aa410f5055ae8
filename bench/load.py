"""Sustained concurrent load: ``mlflow-lambda serve`` (N workers) vs ``mlflow models serve``.

Each server runs alone, in turn, with its default options (``serve``: one warm Lambda
environment per CPU; MLflow: ``mlflow models serve -m URI --env-manager local``). ``CLIENTS``
threads, each on one keep-alive connection, POST the same 2-row request back to back: first
``WARMUP_S`` uncounted, then ``DURATION_S`` counted. Reported per server: answers, errors (any
status but 200, any exception, any answer other than the first one), answers per second, and
the resident memory of the server's whole process tree (VmRSS summed) sampled each second from
the end of the warm-up: growth = last / first - 1.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procs
from bench.bundles import Bundle
from bench.coldstart import LIMIT_S, VENV_BIN, mlflow_env
from bench.models import BenchModel

CLIENTS = 16
DURATION_S = 30.0
WARMUP_S = 5.0
ROWS = 2


def _rss_mb(pid: int) -> float:
    """Current resident memory of ``pid`` and its descendants, MiB (VmRSS, proc(5))."""
    total = 0.0
    for member in procs.tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def _argv(name: str, model: BenchModel, bundle: Bundle, port: int) -> list[str]:
    if name == "ours_serve":
        return [str(VENV_BIN / "mlflow-lambda"), "serve", str(bundle.outdir),
                "-h", procs.HOST, "-p", str(port)]  # fmt: skip
    return [str(VENV_BIN / "mlflow"), "models", "serve", "-m", model.uri,
            "--env-manager", "local", "-h", procs.HOST, "-p", str(port)]  # fmt: skip


class _Load:
    """``clients`` threads posting ``body`` until told to stop; counts while ``counting``."""

    def __init__(self, port: int, body: bytes, expected: bytes, clients: int) -> None:
        self.port, self.body, self.expected = port, body, expected
        self.counting = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = 0
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        client = procs.Client(self.port, timeout_s=60)
        try:
            while not self.stop.is_set():
                try:
                    status, answer = client.post("/invocations", self.body)
                    error = None if status == 200 and answer == self.expected else (
                        f"{status}: {answer[:200]!r}"
                    )  # fmt: skip
                except OSError as exc:
                    error = repr(exc)
                if self.counting.is_set() and not self.stop.is_set():
                    with self.lock:
                        if error is None:
                            self.answers += 1
                        else:
                            self.errors.append(error)
        finally:
            client.close()


def _one(name: str, argv: list[str], port: int, body: bytes, duration_s: float, logdir: Path,
         say: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    log = (logdir / f"load-{name}.log").open("ab")
    started = time.perf_counter()
    proc = procs.start(argv, env=mlflow_env(), log=log)
    log.close()
    try:
        _, expected = procs.wait_first_answer(proc, port, body, started=started, limit_s=LIMIT_S)
        load = _Load(port, body, expected, CLIENTS)
        for thread in load.threads:
            thread.start()
        time.sleep(WARMUP_S)
        rss = [_rss_mb(proc.pid)]
        load.counting.set()
        begin = time.perf_counter()
        while time.perf_counter() - begin < duration_s:
            time.sleep(max(0.0, min(1.0, duration_s - (time.perf_counter() - begin))))
            rss.append(_rss_mb(proc.pid))
        load.stop.set()
        elapsed = time.perf_counter() - begin
        for thread in load.threads:
            thread.join(timeout=LIMIT_S)
    finally:
        procs.stop_tree(proc)
    result = {
        "answers": load.answers, "errors": len(load.errors), "first_errors": load.errors[:5],
        "seconds": elapsed, "per_s": load.answers / elapsed, "rss_mb": rss,
        "rss_growth": rss[-1] / rss[0] - 1 if rss[0] else None,
    }  # fmt: skip
    growth = 100 * (result["rss_growth"] or 0)
    say(f"  load {name}: {result['per_s']:.0f}/s, {result['errors']} errors, RSS "
        f"{rss[0]:.0f} -> {rss[-1]:.0f} MB ({growth:+.1f}%)")  # fmt: skip
    return result


def run(model: BenchModel, bundle: Bundle, logdir: Path, say: Callable[[str], None],
        duration_s: float = DURATION_S) -> dict[str, Any]:  # fmt: skip
    """Both servers under the same load, one after the other; see the module docstring."""
    body = json.dumps(model.body(ROWS)).encode()
    out: dict[str, Any] = {"clients": CLIENTS, "duration_s": duration_s,
                           "warmup_s": WARMUP_S, "rows": ROWS}  # fmt: skip
    for name in ("ours_serve", "mlflow_serve"):
        port = procs.free_port()
        argv = _argv(name, model, bundle, port)
        out[name] = _one(name, argv, port, body, duration_s, logdir, say)
    out["throughput_ratio"] = out["ours_serve"]["per_s"] / out["mlflow_serve"]["per_s"]
    say(f"  load: ours / mlflow throughput {out['throughput_ratio']:.2f}x")
    return out


def section(results: dict[str, Any]) -> list[str]:
    """The report's "Concurrent load" section (nothing if the phase did not run)."""
    runs = results.get("load") or {}
    if not runs:
        return []
    lines = ["## Concurrent load", ""]
    for key, r in runs.items():
        lines += [
            f"{key}: {r['clients']} clients, {r['rows']}-row requests on keep-alive connections, "
            f"{r['warmup_s']:.0f} s warm-up then {r['duration_s']:.0f} s counted, each server "
            "alone with its default options.",
            "",
            "| server | answers/s | answers | errors | RSS after warm-up | RSS at end | growth |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, label in (("ours_serve", "`mlflow-lambda serve`"),
                            ("mlflow_serve", "`mlflow models serve`")):  # fmt: skip
            s = r[name]
            growth = f"{100 * s['rss_growth']:+.1f}%" if s["rss_growth"] is not None else "n/a"
            lines.append(
                f"| {label} | {s['per_s']:.0f} | {s['answers']} | {s['errors']} | "
                f"{s['rss_mb'][0]:.0f} MB | {s['rss_mb'][-1]:.0f} MB | {growth} |"
            )
        lines += ["", f"Throughput, ours / MLflow: **{r['throughput_ratio']:.2f}x**.", ""]
    return lines
