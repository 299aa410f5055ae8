"""From raw samples to the numbers the report shows: summaries, ratios, memory, goals.

Pure Python on the ``results`` dict that ``bench.__main__`` collects (and ``latest.json``
stores), so it can be tested on synthetic numbers and re-run on an old ``latest.json``.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from bench.stats import fmt_ms, fmt_x, ratio, summarize, throughput
from mlflow_lambda.packager.platforms import host_arch
from mlflow_lambda.packager.template import suggest_memory_mb

COLD_PATHS = ("ours", "mlflow_load", "mlflow_load_path", "mlflow_serve", "ours_skops")
# issue 11: the seed model's cold start at most 0.35x MLflow's load_model + predict
COLD_GOAL = {"seed": 0.35}


@dataclass(frozen=True)
class Goal:
    """One goal of the issue and where we stand."""

    model: str
    name: str
    target: str
    value: float | None
    limit: float
    detail: str
    unit: str = "x"  # how the report shows value: x (a ratio), ms, s or MB
    strict: bool = False  # met only when value < limit ("under 15 s"), else value <= limit

    @property
    def met(self) -> bool | None:
        """True/False, or None when it could not be measured."""
        if self.value is None:
            return None
        return self.value < self.limit if self.strict else self.value <= self.limit

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
            entry["handler_over_bare"] = ratio(sides["handler"], sides["bare"])
        inner = sides.get("predict_in_handler")
        if sides.get("handler") and inner and len(inner) == len(sides["handler"]):
            # per request: the handler's time minus its own predict's (bench/warm.py)
            entry["overhead_per_request_p50_ms"] = statistics.median(
                h - p for h, p in zip(sides["handler"], inner, strict=True)
            )
            if sides.get("bare"):
                entry["inner_over_bare"] = ratio(inner, sides["bare"])
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
    """The per-model goals of the issues."""
    small, big = w.get("2", {}), w.get("10000", {})
    unpaired = small.get("overhead_p50_ms")
    limit = COLD_GOAL.get(model, 0.4)
    preload = (
        [
            Goal(
                model,
                "preloaded pickle",
                "ours < 1 x the same bundle loading skops (cold start)",
                c["ratio"]["ours_skops"],
                1.0,
                "median wall time; packager.preload kept only if faster",
                strict=True,
            ),
        ]
        if "ours_skops" in c.get("ratio", {})
        else []
    )
    return [
        *preload,
        Goal(
            model, "cold start",
            f"ours <= {limit} x mlflow.pyfunc.load_model + predict (fresh process)",
            c.get("ratio", {}).get("mlflow_load"), limit,
            "median wall time, process start to first prediction; models:/ URI on both sides",
        ),
        Goal(
            model, "warm overhead",
            "p50 of handler - its own predict, per request <= 1 ms (2 rows)",
            small.get("overhead_per_request_p50_ms"), 1.0,
            "in-process Lambda handler; its predict took "
            f"{fmt_x(small.get('inner_over_bare'))} bare estimator.predict; "
            f"handler p50 - bare p50: {'n/a' if unpaired is None else fmt_ms(unpaired)}",
            unit="ms",
        ),
        Goal(
            model, "JSON at native speed", "handler p50 <= 1.15 x bare predict p50 (10 000 rows)",
            big.get("handler_over_bare"), 1.15,
            "in-process Lambda handler (msgspec, simdjson) vs estimator.predict on the same rows",
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


# Issue #3: the README example on python3.12 must deploy by direct upload, for x86_64 and arm64.
# Sizes in MiB as AWS counts them (packager.sizes.MB); 50 MB is the direct-upload zip quota
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
ARCHES = ("x86_64", "arm64")
VARIANTS = {"bundle": "default", "slim": "--trim --strip"}
SIZE_LIMITS = {"unzipped_bytes": ("unzipped", 160.0), "zipped_bytes": ("zip", 50.0)}
WARM_REBUILD_S = 8.0  # issue 13: a warm rebuild of the README example in at most 8 s
MB = 1024 * 1024


def size_goals(size: dict[str, Any]) -> list[Goal]:
    """Per architecture and build (default, ``--trim --strip``): unzipped and zip sizes."""
    out = []
    for arch in ARCHES:
        entry = size.get(arch, {})
        for variant, flags in VARIANTS.items():
            sizes = entry.get(variant, {})
            for key, (what, limit) in SIZE_LIMITS.items():
                raw = sizes.get(key)
                out.append(Goal(
                    f"{entry.get('model', 'readme')} {arch} ({flags})", f"{what} size",
                    f"{what} <= {limit:.0f} MB", None if raw is None else raw / MB, limit,
                    f"`mlflow-lambda package{'' if variant == 'bundle' else ' ' + flags}`; "
                    "MB = 2^20 bytes, as AWS counts them", unit="MB",
                ))  # fmt: skip
    return out


def build_by_arch(build: dict[str, Any]) -> dict[str, Any]:
    """``results["build"]`` per architecture (a latest.json from before arm64 held x86_64 only)."""
    return {"x86_64": build} if "seconds" in build else build


def build_goals(raw: dict[str, Any], stats: dict[str, Any]) -> list[Goal]:
    """Per architecture: the median warm rebuild (``stats`` of the ``raw`` builds) within 8 s."""
    out = []
    for arch in ARCHES:
        warm = stats.get(arch, {}).get("warm")
        model = raw.get(arch, {}).get("model", "readme")
        out.append(Goal(
            f"{model} {arch} (default)", "warm rebuild", f"warm rebuild <= {WARM_REBUILD_S:.0f} s",
            None if warm is None else warm["median"], WARM_REBUILD_S,
            "median rebuild of the same model, prepared-deps cache hit, CLI in a fresh process"
            + (f" (n={warm['n']})" if warm else "")
            + ("" if arch == host_arch() else f"; no import check: the {arch} bundle cannot run "
               f"on this {host_arch()} host"), unit="s", strict=False,
        ))  # fmt: skip
    return out


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(ours: list[float], theirs: list[float]) -> float | None:
    return statistics.median(ours) / statistics.median(theirs) if ours and theirs else None


def flavors(raw: dict[str, Any]) -> dict[str, Any]:
    """Per flavor (``bench/flavors.py``): cold and warm medians, ours / MLflow, peak RSS."""
    out = {}
    for key, entry in raw.items():
        cold_ours = [r["wall_ms"] for r in entry["ours"]]
        cold_theirs = [r["wall_ms"] for r in entry["mlflow"]]
        warm_ours = [d for r in entry["ours"] for d in r["warm_duration_ms"] if d is not None]
        warm_theirs = [w for r in entry["mlflow"] for w in r["warm_ms"]]
        out[key] = {
            "cold_ours_ms": _median(cold_ours), "cold_mlflow_ms": _median(cold_theirs),
            "cold_ratio": _ratio(cold_ours, cold_theirs),
            "init_ours_ms": _median([r["init_ms"] for r in entry["ours"] if r.get("init_ms")]),
            "warm_ours_ms": _median(warm_ours), "warm_mlflow_ms": _median(warm_theirs),
            "warm_ours_wall_ms": _median([w for r in entry["ours"] for w in r["warm_wall_ms"]]),
            "warm_ratio": _ratio(warm_ours, warm_theirs),
            "peak_rss_ours_mb": _median([r["peak_rss_mb"] for r in entry["ours"]
                                         if r.get("peak_rss_mb")]),
            "peak_rss_mlflow_mb": _median([r["peak_rss_mb"] for r in entry["mlflow"]]),
            "runs": len(cold_ours), "warm_n": len(warm_theirs),
        }  # fmt: skip
    return out


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
    build = build_by_arch(results.get("build", {}))
    out["build"] = {
        arch: {name: summarize(v).to_dict() for name, v in entry["seconds"].items() if v}
        for arch, entry in build.items()
    }
    out["goals"] += [g.to_dict() for g in size_goals(results.get("size", {}))]
    out["goals"] += [g.to_dict() for g in build_goals(build, out["build"])]
    out["flavors"] = flavors(results.get("flavors", {}))
    return out
