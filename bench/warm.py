"""Warm latency: per-request times once everything is loaded, ours and ``mlflow models serve``.

* ``handler``: the Lambda handler in this process (``handler.events.dispatch`` over
  ``Mangum(create_app(load_model(...)))``, the objects ``handler.lambda_function`` builds) on
  an HTTP API v2 event, access log on, as on Lambda; ``bare``: the estimator's own
  ``predict`` on the DataFrame the same rows make. Our overhead is measured per request:
  each handler call's time minus that of the estimator's own ``predict`` inside it
  (``predict_in_handler``, timed around the method the loader calls). The difference of the
  two sides' medians says the same where ``predict`` is steady, but not on a model whose own
  ``predict`` varies a lot: the 500-tree forest's 2-row ``predict`` took 25 to 56 ms in one
  run, which put that difference anywhere from 0.1 to 3.7 ms (95% bootstrap interval of
  300 calls a side; by hand, per request, 0.78 ms). ``predict_in_handler`` against
  ``bare`` shows whether the input the handler builds makes ``predict`` itself slower.
* ``ours_serve``: ``mlflow-lambda serve`` over HTTP (HTTP -> v2 event -> the Lambda emulator
  -> awslambdaric -> handler -> back); ``mlflow_serve``: ``mlflow models serve`` over HTTP.
  One keep-alive client, one request at a time (a Lambda instance serves one at a time).

Sides alternate in blocks of 5 requests so that load from elsewhere hits both alike; each
side stops after its request count or its time budget, whichever comes first. At 10 000 rows
each side makes 150 requests (30 blocks): with 30 (3 blocks), one block slowed by other load
moved the median by up to 20% (2026-12-02: blocks of the README forest's handler at 32.7,
30.2 and 36.2 ms against 26.3, 26.6 and 32.7 ms bare).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procs
from bench.bundles import Bundle
from bench.coldstart import LIMIT_S, VENV_BIN, mlflow_env
from bench.models import BenchModel
from mlflow_lambda.packager.events import make_event

SIZES = (1, 2, 100, 1000, 10_000)
BLOCK = 5
Sample = Callable[[], None]


def _alternate(sides: dict[str, Sample], count: int, budget_s: float) -> dict[str, list[float]]:
    """Run each side ``count`` times (or for ``budget_s``), in alternating blocks; ms each."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    spent = dict.fromkeys(sides, 0.0)
    for fn in sides.values():  # one untimed warm-up call each
        fn()
    while True:
        active = [n for n in sides if len(times[n]) < count and spent[n] < budget_s]
        if not active:
            return times
        for name in active:
            for _ in range(min(BLOCK, count - len(times[name]))):
                started = time.perf_counter()
                sides[name]()
                elapsed = time.perf_counter() - started
                times[name].append(elapsed * 1000)
                spent[name] += elapsed


def _quiet_access_log() -> None:
    # Lambda's runtime attaches a handler to the root logger; format and write the access
    # line as it would, into /dev/null instead of CloudWatch.
    log = logging.getLogger("mlflow_lambda")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.StreamHandler(open(os.devnull, "w")))


def in_process(
    model: BenchModel, bundle: Bundle, counts: dict[int, int], budget_s: float,
    say: Callable[[str], None],
) -> dict[str, dict[str, list[float]]]:  # fmt: skip
    """``handler`` and ``bare`` latencies (ms) for each request size, keyed by row count."""
    from mangum import Mangum

    from mlflow_lambda.handler.app import create_app
    from mlflow_lambda.handler.config import load_config
    from mlflow_lambda.handler.events import dispatch
    from mlflow_lambda.handler.flavors import load_model

    _quiet_access_log()
    config = load_config(bundle.outdir / "model.json")
    # the model directory as the bundle holds it (with the build's pickle of a skops model)
    model_dir = bundle.outdir.parent / f"{bundle.outdir.name}-model"
    shutil.rmtree(model_dir, ignore_errors=True)
    with zipfile.ZipFile(bundle.outdir / "bundle.zip") as zf:
        zf.extractall(model_dir, [n for n in zf.namelist() if n.startswith("model/")])
    predictor = load_model(config, model_dir / "model")
    # the bundle's own choice: a bundle without pandas scores from arrays (the seed's model),
    # though this process has pandas
    pandas = "pandas" in bundle.manifest["distributions"]
    asgi = Mangum(create_app(predictor, config, pandas=pandas), lifespan="off")
    gc.freeze()  # as handler.lambda_function does at the end of init
    estimator: Any = getattr(predictor, "model", predictor)
    inner = _time_inner_predict(predictor)
    out: dict[str, dict[str, list[float]]] = {}
    for rows, count in counts.items():
        event = make_event("v2", json.dumps(model.body(rows)).encode())
        frame = model.frame(rows)

        def through_handler(event: dict[str, Any] = event) -> None:
            response = dispatch(event, None, asgi)
            if response.get("statusCode") != 200:
                raise RuntimeError(f"handler answered {response!r:.300}")

        def bare(frame: Any = frame) -> None:
            estimator.predict(frame)

        inner.clear()
        times = _alternate({"handler": through_handler, "bare": bare}, count, budget_s)
        # one predict per handler call, the first in the untimed warm-up call
        if len(inner) != len(times["handler"]) + 1:
            raise RuntimeError(f"{len(inner)} predicts in {len(times['handler']) + 1} calls")
        out[str(rows)] = {**times, "predict_in_handler": inner[1:]}
        say(f"  warm in-process {model.key} {rows} rows: " + _medians(out[str(rows)]))
    return out


def _time_inner_predict(predictor: Any) -> list[float]:
    """Time (ms, appended to the list returned) every call of the estimator's method that
    ``predictor`` makes: the scikit-learn loader calls ``predictor._method`` (its predict_fn)."""
    method = predictor._method
    inner: list[float] = []

    def timed(data: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(data)
        finally:
            inner.append((time.perf_counter() - started) * 1000)

    predictor._method = timed
    return inner


def _medians(times: dict[str, list[float]]) -> str:
    import statistics

    return ", ".join(f"{n} p50 {statistics.median(v):.2f} ms" for n, v in times.items())


def _start_server(
    name: str, argv: list[str], port: int, body: bytes, logdir: Path
) -> tuple[Any, float, bytes]:
    log = (logdir / f"{name}.log").open("ab")
    started = time.perf_counter()
    proc = procs.start(argv, env=mlflow_env(), log=log)
    log.close()  # the child holds its own descriptor
    try:
        ms, answer = procs.wait_first_answer(proc, port, body, started=started, limit_s=LIMIT_S)
    except BaseException:
        procs.stop_tree(proc)
        raise
    return proc, ms, answer


def _server_argv(name: str, model: BenchModel, bundle: Bundle, port: int) -> list[str]:
    if name == "ours_serve":
        # One environment, as one Lambda instance: the concurrent case is bench/load.py's.
        return [str(VENV_BIN / "mlflow-lambda"), "serve", str(bundle.outdir),
                "-h", procs.HOST, "-p", str(port), "--workers", "1"]  # fmt: skip
    return [str(VENV_BIN / "mlflow"), "models", "serve", "-m", model.uri,
            "--env-manager", "local", "-h", procs.HOST, "-p", str(port)]  # fmt: skip


def over_http(
    model: BenchModel, bundle: Bundle, counts: dict[int, int], budget_s: float, logdir: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Latencies of ``ours_serve`` and ``mlflow_serve`` per size, launch times, peak RSS."""
    first = json.dumps(model.body(2)).encode()
    servers: dict[str, tuple[Any, int]] = {}
    launch: dict[str, float] = {}
    answers: dict[str, bytes] = {}
    try:
        for name in ("ours_serve", "mlflow_serve"):
            port = procs.free_port()
            proc, launch[name], answers[name] = _start_server(
                name, _server_argv(name, model, bundle, port), port, first, logdir
            )
            servers[name] = (proc, port)
        clients = {name: procs.Client(port) for name, (_, port) in servers.items()}
        same = _same_predictions(clients, json.dumps(model.body(100, seed=7)).encode())
        latencies: dict[str, dict[str, list[float]]] = {}
        for rows, count in counts.items():
            body = json.dumps(model.body(rows)).encode()
            sides = {name: _poster(client, body) for name, client in clients.items()}
            latencies[str(rows)] = _alternate(sides, count, budget_s)
            say(f"  warm http {model.key} {rows} rows: " + _medians(latencies[str(rows)]))
        memory = {name: _tree_memory(proc.pid) for name, (proc, _) in servers.items()}
        for client in clients.values():
            client.close()
    finally:
        for proc, _ in servers.values():
            procs.stop_tree(proc)
    return {
        "latency_ms": latencies,
        "launch_to_first_answer_ms": launch,
        "predictions_match": same,
        "memory_after_warm": memory,
    }


def _poster(client: procs.Client, body: bytes) -> Sample:
    def post() -> None:
        status, answer = client.post("/invocations", body)
        if status != 200:
            raise RuntimeError(f"server answered {status}: {answer[:300]!r}")

    return post


def _same_predictions(clients: dict[str, procs.Client], body: bytes) -> bool:
    answers = [json.loads(client.post("/invocations", body)[1]) for client in clients.values()]
    return all(a == answers[0] for a in answers)


def _tree_memory(pid: int) -> list[dict[str, Any]]:
    return [
        {"cmd": procs.command_line(p), "peak_rss_mb": mb}
        for p, mb in procs.tree_rss_mb(pid).items()
    ]


def runtime_rss(processes: list[dict[str, Any]]) -> float | None:
    """The Lambda runtime's (awslambdaric bootstrap) peak RSS among ``serve``'s processes."""
    for p in processes:
        if "bootstrap" in p["cmd"] and Path(p["cmd"].split()[0]).name.startswith("python"):
            value: float = p["peak_rss_mb"]
            return value
    return None


__all__ = ["SIZES", "in_process", "over_http", "runtime_rss"]
