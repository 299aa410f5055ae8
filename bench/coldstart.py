"""Cold start: from process start to the first successful prediction, ours and MLflow's.

* ``ours``: the bundle's task root run by ``infra.local.LocalLambda`` (the AWS Runtime
  Interface Emulator and the real ``awslambdaric``, as ``mlflow-lambda invoke`` does); the
  first invocation spawns the runtime, so its wall time is process start to response.
  ``init_ms`` is the INIT REPORT the emulator prints, i.e. Lambda's "Init Duration".
* ``mlflow_load``: a fresh ``python`` that imports MLflow, ``mlflow.pyfunc.load_model(URI)``
  (the registry URI, resolved through the sqlite store) and predicts; ``mlflow_load_path``
  the same from the model's local directory, which skips the registry.
* ``ours_skops`` (the seed model): the same, for a bundle built with ``preload=False``, which
  loads ``model.skops`` with skops instead of the build's pickle (``packager.preload``).
* ``mlflow_serve``: ``mlflow models serve --env-manager local`` from launch to the first
  200 from ``/invocations``; its process tree's peak RSS is read right then.

The task root and model files are in the page cache for every run, as after a first start;
a real Lambda cold start also downloads and unpacks the code, which is not measured here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procs
from bench.bundles import Bundle
from bench.models import BenchModel
from mlflow_lambda.infra.local import LocalLambda
from mlflow_lambda.infra.runtime_dir import find_python
from mlflow_lambda.packager.events import make_event

VENV_BIN = Path(sys.executable).parent
LIMIT_S = 120.0

_LOAD_AND_PREDICT = """
import json, sys
import mlflow.pyfunc
import pandas as pd
body = json.loads(sys.argv[2])["dataframe_split"]
model = mlflow.pyfunc.load_model(sys.argv[1])
predictions = model.predict(pd.DataFrame(body["data"], columns=body["columns"]))
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM:"))
print("READY " + json.dumps({"rows": len(predictions), "peak_rss_mb": peak}), flush=True)
"""


def mlflow_env() -> dict[str, str]:
    """The host environment with the venv's ``bin`` first (``mlflow models serve`` execs
    ``uvicorn`` from PATH, docs/findings.md) and MLflow's tracking URI as the bench set it."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def ours(root: Path, bundle: Bundle, body: dict[str, Any]) -> dict[str, Any]:
    """One cold invocation of the task root ``root``."""
    python = find_python(str(bundle.manifest["python_version"]))
    event = make_event("v2", body)
    with LocalLambda(root, python=python, memory_mb=bundle.memory_mb, timeout_s=60) as fn:
        started = time.perf_counter()
        result = fn.invoke(event)
        wall = (time.perf_counter() - started) * 1000
        emulator = fn.emulator
    answer = result.json() if result.ok else {}
    if not result.ok or answer.get("statusCode") != 200:
        raise RuntimeError(f"cold invoke failed: {result.error_type}: {result.payload[:300]!r}")
    return {
        "wall_ms": wall,
        "init_ms": result.init_ms,
        "duration_ms": result.duration_ms,
        "peak_rss_mb": result.max_memory_mb,
        "emulator": emulator,
    }


def mlflow_load(model_uri: str, body: dict[str, Any]) -> dict[str, Any]:
    """One fresh ``python`` process: import MLflow, load ``model_uri``, predict ``body``."""
    argv = [sys.executable, "-c", _LOAD_AND_PREDICT, model_uri, json.dumps(body)]
    started = time.perf_counter()
    with subprocess.Popen(
        argv, env=mlflow_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            wall = (time.perf_counter() - started) * 1000
            if not line.startswith("READY "):
                raise RuntimeError(f"mlflow load + predict of {model_uri!r} failed: {line!r}")
            facts: dict[str, Any] = json.loads(line[6:])
            proc.wait(timeout=LIMIT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
    return {"wall_ms": wall, **facts}


def mlflow_serve(model_uri: str, body: dict[str, Any], logdir: Path) -> dict[str, Any]:
    """Launch ``mlflow models serve`` and time it to its first prediction; then stop it."""
    port = procs.free_port()
    argv = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager",
            "local", "-h", procs.HOST, "-p", str(port)]  # fmt: skip
    with (logdir / "mlflow-serve.log").open("ab") as log:
        started = time.perf_counter()
        proc = procs.start(argv, env=mlflow_env(), log=log)
        try:
            wall, _ = procs.wait_first_answer(
                proc, port, json.dumps(body).encode(), started=started, limit_s=LIMIT_S
            )
            rss = procs.tree_rss_mb(proc.pid)
            processes = [
                {"cmd": procs.command_line(pid), "peak_rss_mb": mb} for pid, mb in rss.items()
            ]
        finally:
            procs.stop_tree(proc)
    return {
        "wall_ms": wall,
        "peak_rss_mb": sum(rss.values()),
        "largest_rss_mb": max(rss.values()),
        "processes": processes,
    }


def run(
    model: BenchModel, root: Path, bundle: Bundle, *, runs: int, warmup: bool,
    say: Callable[[str], None], skops: tuple[Path, Bundle] | None = None,
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """``runs`` rounds of every cold path, alternating their order; raw results per path.

    ``skops``: the task root and bundle of the same model kept as skops (path ``ours_skops``).
    """
    body = model.body(2)
    paths: dict[str, Callable[[Path], dict[str, Any]]] = {
        "ours": lambda _: ours(root, bundle, body),
        **({"ours_skops": lambda _: ours(*skops, body)} if skops else {}),
        "mlflow_load": lambda _: mlflow_load(model.uri, body),
        "mlflow_load_path": lambda _: mlflow_load(str(model.local_dir), body),
        "mlflow_serve": lambda logdir: mlflow_serve(model.uri, body, logdir),
    }
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        if warmup:  # first starts read files that are not in the page cache yet
            for fn in paths.values():
                fn(Path(tmp))
        for i in range(runs):
            order = list(paths) if i % 2 == 0 else list(reversed(paths))
            for name in order:
                out[name].append(paths[name](Path(tmp)))
            say(
                f"  cold {model.key} run {i + 1}/{runs}: "
                + ", ".join(f"{n} {out[n][-1]['wall_ms']:.0f} ms" for n in paths)
            )
    return out
