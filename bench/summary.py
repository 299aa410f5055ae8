"""From raw samples to the numbers the report shows: summaries, ratios, memory, goals.

Pure Python on the ``results`` dict that ``bench.__main__`` collects (and ``latest.json``
stores), so it can be tested on synthetic numbers and re-run on an old ``latest.json``.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from bench.stats import ratio, summarize, throughput
from infra.template import suggest_memory_mb

COLD_PATHS = ("ours", "mlflow_load", "mlflow_load_path", "mlflow_serve")


@dataclass(frozen=True)
class Goal:
    """One goal of the issue and where we stand."""

    model: str
    name: str
    target: str
    value: float | None
    limit: float
    detail: str

    @property
    def met(self) -> bool | None:
        """True/False, or None when it could not be measured."""
        return None if self.value is None else self.value <= self.limit

    def to_dict(self) -> dict[str, Any]:
        """Fields plus ``met``, for the JSON."""
        return {**asdict(self), "met": self.met}


def cold(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Wall-time summaries per cold path, our init duration and the ratios to MLflow."""
    out: dict[str, Any] = {}
    for path in COLD_PATHS:
        walls = [r["wall_ms"] for r in runs.get(path, [])]
        if walls:
            out[path] = summarize(walls).to_dict()
    inits = [r["init_ms"] for r in runs.get("ours", []) if r.get("init_ms") is not None]
    if inits:
        out["ours_init"] = summarize(inits).to_dict()
    ours = [r["wall_ms"] for r in runs.get("ours", [])]
    if ours:
        out["ratio"] = {
            path: ratio(ours, [r["wall_ms"] for r in runs[path]])
            for path in COLD_PATHS[1:]
            if runs.get(path)
        }
    return out


def warm(in_process: dict[str, Any], http: dict[str, Any]) -> dict[str, Any]:
    """Per request size: p50/p99 of every path, our overhead and the ratio to MLflow's server."""
    out: dict[str, Any] = {}
    for rows in sorted(set(in_process) | set(http.get("latency_ms", {})), key=int):
        sides: dict[str, list[float]] = {
            **in_process.get(rows, {}),
            **http.get("latency_ms", {}).get(rows, {}),
        }
        entry: dict[str, Any] = {
            name: {**summarize(values).to_dict(), **throughput(values, int(rows))}
            for name, values in sides.items()
            if values
        }
        if sides.get("handler") and sides.get("bare"):
            entry["overhead_p50_ms"] = statistics.median(sides["handler"]) - statistics.median(
                sides["bare"]
            )
        if sides.get("ours_serve") and sides.get("mlflow_serve"):
            entry["serve_ratio"] = ratio(sides["ours_serve"], sides["mlflow_serve"])
        if sides.get("handler") and sides.get("mlflow_serve"):
            entry["handler_ratio"] = ratio(sides["handler"], sides["mlflow_serve"])
        out[rows] = entry
    return out


def memory(cold_runs: dict[str, list[dict[str, Any]]], http: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS after the first prediction (median of the cold runs) and after the warm run."""
    out: dict[str, Any] = {}
    ours = [r["peak_rss_mb"] for r in cold_runs.get("ours", []) if r.get("peak_rss_mb")]
    serve = cold_runs.get("mlflow_serve", [])
    if ours:
        out["ours_first_mb"] = statistics.median(ours)
    if serve:
        out["mlflow_serve_first_mb"] = statistics.median(r["peak_rss_mb"] for r in serve)
        out["mlflow_worker_first_mb"] = statistics.median(r["largest_rss_mb"] for r in serve)
    load = [r["peak_rss_mb"] for r in cold_runs.get("mlflow_load", []) if r.get("peak_rss_mb")]
    if load:
        out["mlflow_load_first_mb"] = statistics.median(load)
    after = http.get("memory_after_warm", {})
    runtime = [p for p in after.get("ours_serve", []) if "bootstrap" in p["cmd"]]
    if runtime:
        out["ours_after_warm_mb"] = runtime[0]["peak_rss_mb"]
    if after.get("mlflow_serve"):
        out["mlflow_serve_after_warm_mb"] = sum(p["peak_rss_mb"] for p in after["mlflow_serve"])
    peaks = [v for k, v in out.items() if k.startswith("ours_")]
    if peaks:
        out["recommended_memory_mb"] = suggest_memory_mb(max(peaks))
    if ours and serve:
        out["ratio_total"] = out["ours_first_mb"] / out["mlflow_serve_first_mb"]
        out["ratio_worker"] = out["ours_first_mb"] / out["mlflow_worker_first_mb"]
    return out


def goals(model: str, c: dict[str, Any], w: dict[str, Any], m: dict[str, Any]) -> list[Goal]:
    """The four goals of the issue for one model."""
    small, big = w.get("2", {}), w.get("10000", {})
    return [
        Goal(
            model, "cold start", "ours <= 0.4 x mlflow.pyfunc.load_model + predict (fresh process)",
            c.get("ratio", {}).get("mlflow_load"), 0.4,
            "median wall time, process start to first prediction; models:/ URI on both sides",
        ),
        Goal(
            model, "warm overhead", "handler p50 - bare predict p50 <= 1 ms (2 rows)",
            small.get("overhead_p50_ms"), 1.0, "in-process Lambda handler vs estimator.predict",
        ),
        Goal(
            model, "10 000 rows", "ours p50 <= 0.5 x mlflow models serve p50",
            big.get("serve_ratio"), 0.5,
            "both over HTTP on 127.0.0.1 (ours: mlflow-lambda serve, through the Lambda emulator)",
        ),
        Goal(
            model, "peak RSS", "ours <= 0.6 x mlflow models serve",
            m.get("ratio_total"), 0.6,
            "after the first prediction; MLflow's is its two processes (CLI + uvicorn worker)",
        ),
    ]  # fmt: skip


def summarize_results(results: dict[str, Any]) -> dict[str, Any]:
    """Everything the report shows, computed from ``results``' raw samples."""
    out: dict[str, Any] = {"models": {}, "goals": []}
    for key in results.get("models", {}):
        cold_runs = results.get("cold", {}).get(key, {})
        warm_raw = results.get("warm", {}).get(key, {})
        http = warm_raw.get("http", {})
        c = cold(cold_runs) if cold_runs else {}
        w = warm(warm_raw.get("in_process", {}), http) if warm_raw else {}
        m = memory(cold_runs, http)
        out["models"][key] = {"cold": c, "warm": w, "memory": m}
        out["goals"] += [g.to_dict() for g in goals(key, c, w, m)]
    build = results.get("build", {}).get("seconds", {})
    out["build"] = {name: summarize(v).to_dict() for name, v in build.items() if v}
    return out
