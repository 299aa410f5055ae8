"""Render ``latest.md`` (and the README summary table) from results and their summary."""

from __future__ import annotations

from typing import Any

from bench import load
from bench.report_sizes import build_section, size_section
from bench.stats import fmt_ms, fmt_spread, fmt_x

_COLD_LABELS = {
    "ours": "ours: `invoke` path (RIE + awslambdaric), spawn to first response",
    "mlflow_load": "MLflow: fresh `python`, `pyfunc.load_model(models:/...)` + predict",
    "mlflow_load_path": "MLflow: the same from the local model directory",
    "mlflow_serve": "MLflow: `mlflow models serve`, launch to first answer",
    "ours_skops": "ours, the same bundle loading skops instead of the build's pickle",
}
_WARM_LABELS = {
    "handler": "ours, handler in-process",
    "bare": "bare `model.predict`",
    "ours_serve": "ours, `mlflow-lambda serve` (HTTP)",
    "mlflow_serve": "`mlflow models serve` (HTTP)",
}


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MiB"


def _overheads(entry: dict[str, Any]) -> str:
    """One warm row's overhead: per request, then (the p50 difference), or what was measured."""
    paired, unpaired = entry.get("overhead_per_request_p50_ms"), entry.get("overhead_p50_ms")
    if paired is None:
        return fmt_ms(unpaired) if unpaired is not None else "n/a"
    return f"{fmt_ms(paired)} ({fmt_ms(unpaired)})" if unpaired is not None else fmt_ms(paired)


def _goal_value(goal: dict[str, Any]) -> str:
    value, unit = goal["value"], goal.get("unit", "x")
    if value is None:
        return "n/a"
    return {"x": f"{value:.3f}x", "ms": f"{value:.2f} ms", "s": f"{value:.1f} s"}.get(
        unit, f"{value:.1f} {unit}"
    )


def _status(goal: dict[str, Any]) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[goal["met"]]


def readme_table(results: dict[str, Any], summary: dict[str, Any]) -> str:
    """The short table for the README: one line per measure, both models side by side."""
    keys = list(results["models"])
    head = "| | " + " | ".join(results["models"][k]["title"] for k in keys) + " |"
    lines = [head, "|---" * (len(keys) + 1) + "|"]

    def row(label: str, cell: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(summary["models"][k]) for k in keys) + " |")

    def cold_pair(s: dict[str, Any], path: str) -> str:
        c = s["cold"]
        if "ours" not in c or path not in c:
            return "n/a"
        ours, theirs = fmt_ms(c["ours"]["median"]), fmt_ms(c[path]["median"])
        return f"{ours} vs {theirs} ({fmt_x(c['ratio'][path])})"

    def warm_pair(s: dict[str, Any], rows: str) -> str:
        w = s["warm"].get(rows, {})
        if "ours_serve" not in w or "mlflow_serve" not in w:
            return "n/a"
        return (
            f"{fmt_ms(w['ours_serve']['median'])} vs {fmt_ms(w['mlflow_serve']['median'])} "
            f"({fmt_x(w.get('serve_ratio'))})"
        )

    row(
        "cold start to first prediction, ours vs `pyfunc.load_model` + predict",
        lambda s: cold_pair(s, "mlflow_load"),
    )
    row("cold start, ours vs `mlflow models serve`", lambda s: cold_pair(s, "mlflow_serve"))
    row("warm p50, 2 rows, HTTP: ours vs `mlflow models serve`", lambda s: warm_pair(s, "2"))
    row(
        "warm p50, 10 000 rows, HTTP: ours vs `mlflow models serve`",
        lambda s: warm_pair(s, "10000"),
    )
    row(
        "handler overhead over its own predict, per request, p50, 2 rows (p50 difference)",
        lambda s: _overheads(s["warm"].get("2", {})),
    )
    row(
        "peak RSS, ours vs `mlflow models serve` (both processes)",
        lambda s: (
            f"{_mb(s['memory'].get('ours_first_mb'))} vs "
            f"{_mb(s['memory'].get('mlflow_serve_first_mb'))}"
        ),
    )
    row(
        "recommended `MemorySize`",
        lambda s: f"{s['memory'].get('recommended_memory_mb', 'n/a')} MB",
    )
    return "\n".join(lines)


def _meta(meta: dict[str, Any]) -> list[str]:
    m = meta["machine"]
    return [
        f"Command: `{meta['command']}` ({'quick' if meta['quick'] else 'full'} run, "
        f"{meta['duration_s'] / 60:.1f} min, {meta['date']}).",
        f"Machine: {m['cpu']}, {m['nproc']} cores, {m['ram_gb']:.0f} GB RAM, {m['os']}; "
        f"load average {m['load_before']} before, {m['load_after']} after.",
        f"Versions: host Python {meta['python']}, MLflow {meta['versions'].get('mlflow')}, "
        f"scikit-learn {meta['versions'].get('scikit-learn')}, pandas "
        f"{meta['versions'].get('pandas')}; bundles run on Python {meta.get('bundle_python')}.",
        *_phase_lines(meta),
    ]


def _phase_lines(meta: dict[str, Any]) -> list[str]:
    """Which run measured which phase, when a later ``--only`` run replaced some of them."""
    runs: dict[tuple[str, str], list[str]] = {}
    for phase, run in meta.get("phases", {}).items():
        runs.setdefault((run["command"], run["date"]), []).append(phase)
    if len(runs) < 2 and all(c == meta["command"] for c, _ in runs):
        return []
    lines = ["", "Phases measured by each run (machines differ from run to run: compare ratios):"]
    for (command, date), phases in sorted(runs.items(), key=lambda r: r[0][1]):
        lines.append(f"- {', '.join(phases)}: `{command}`, {date}")
    unrecorded = [
        p for p in ("cold", "warm", "load", "size", "build") if p not in meta.get("phases", {})
    ]
    if unrecorded:
        lines.append(f"- {', '.join(unrecorded)}: the run in the Command line above")
    return lines


def _cold_section(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    out = [
        "## 1. Cold start",
        "",
        "Median wall time (min-max over the runs), process start to "
        "the first successful prediction of a 2-row request. Ratio: ours / theirs.",
        "",
    ]
    for key, model in results["models"].items():
        c = summary["models"][key]["cold"]
        out += [
            f"### {model['title']}",
            "",
            "| path | median (min-max, n) | IQR | ours / this |",
            "|---|---|---|---|",
        ]
        for path, label in _COLD_LABELS.items():
            if path in c:
                iqr = fmt_ms(c[path]["p75"] - c[path]["p25"])
                rel = fmt_x(c.get("ratio", {}).get(path)) if path != "ours" else ""
                out.append(f"| {label} | {fmt_spread(c[path])} | {iqr} | {rel} |")
        if "ours_init" in c:
            out.append(
                f"| ours: Init Duration as Lambda reports it | {fmt_spread(c['ours_init'])} | | |"
            )
        out.append("")
    return out


def _warm_section(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    out = [
        "## 2. Warm latency and throughput",
        "",
        "p50 / p99 per request, one client, one request at a time, `dataframe_split`. "
        "Overhead: p50 of each handler call's time minus its own predict's (then handler "
        "p50 minus bare predict p50, which a model whose predict varies blurs: bench/warm.py). "
        "Throughput: rows/s of that one client.",
        "",
    ]
    for key, model in results["models"].items():
        w = summary["models"][key]["warm"]
        out += [
            f"### {model['title']}",
            "",
            "| rows | "
            + " | ".join(_WARM_LABELS.values())
            + " | overhead | HTTP ours / MLflow | rows/s ours (HTTP) | rows/s MLflow |",
            "|---" * (len(_WARM_LABELS) + 5) + "|",
        ]
        for rows, entry in w.items():
            cells = []
            for name in _WARM_LABELS:
                s = entry.get(name)
                cells.append(f"{fmt_ms(s['median'])} / {fmt_ms(s['p99'])}" if s else "n/a")
            over = _overheads(entry)
            rate = [entry.get(n, {}).get("rows_per_s") for n in ("ours_serve", "mlflow_serve")]
            out.append(
                f"| {int(rows):,} | "
                + " | ".join(cells)
                + f" | {over}"
                + f" | {fmt_x(entry.get('serve_ratio'))}"
                + "".join(f" | {r:,.0f}" if r else " | n/a" for r in rate)
                + " |"
            )
        http = results["warm"].get(key, {}).get("http", {})
        launch = http.get("launch_to_first_answer_ms", {})
        if launch:
            out += [
                "",
                "Launch to first answer of the two servers (one sample each): "
                + ", ".join(f"{_WARM_LABELS[n]} {fmt_ms(v)}" for n, v in launch.items())
                + f". Predictions equal on a 100-row request: {http.get('predictions_match')}.",
            ]
        out.append("")
    return out


def _memory_section(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    out = [
        "## 3. Memory",
        "",
        "Peak RSS (VmHWM). Ours: the Lambda runtime process (what Lambda's "
        '"Max Memory Used" counts); MLflow\'s server: its two processes.',
        "",
        "| model | ours, first prediction | ours, after the warm run | MLflow serve, first "
        "prediction (worker alone) | MLflow serve, after the warm run | ours / MLflow "
        "(/ worker) | `pyfunc.load_model` process | recommended `MemorySize` |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, model in results["models"].items():
        m = summary["models"][key]["memory"]
        cells = [
            model["title"],
            _mb(m.get("ours_first_mb")),
            _mb(m.get("ours_after_warm_mb")),
            f"{_mb(m.get('mlflow_serve_first_mb'))} ({_mb(m.get('mlflow_worker_first_mb'))})",
            _mb(m.get("mlflow_serve_after_warm_mb")),
            f"{fmt_x(m.get('ratio_total'))} ({fmt_x(m.get('ratio_worker'))})",
            _mb(m.get("mlflow_load_first_mb")),
            f"{m.get('recommended_memory_mb', 'n/a')} MB",
        ]
        out.append("| " + " | ".join(cells) + " |")
    out += [
        "",
        "Recommended `MemorySize`: `infra.template.suggest_memory_mb` of our largest peak "
        "(peak x 1.25 + 64 MB, rounded up to 128 MB, at least 512 MB).",
        "",
    ]
    return out


def flavor_table(results: dict[str, Any], summary: dict[str, Any]) -> str:
    """One line per flavor model (``bench/flavors.py``): path, size, cold and warm vs MLflow."""
    lines = [
        "| model (flavor) | path | bundle: unzipped / zipped | cold start to first prediction, "
        "ours vs `pyfunc.load_model` + predict | warm p50, 2 rows, ours vs MLflow | peak RSS, "
        "ours vs MLflow |",
        "|---|---|---|---|---|---|",
    ]
    for key, raw in results.get("flavors", {}).items():
        s = summary.get("flavors", {}).get(key, {})
        zipped = raw.get("zipped_bytes")
        size = f"{raw['unzipped_bytes'] / 2**20:.0f} MB / " + (
            f"{zipped / 2**20:.0f} MB" if zipped else "image context"
        )
        lines.append(
            f"| {raw['title']} (`{raw['flavor']}`) | {raw['path']} | {size} "
            f"| {_ms_pair(s.get('cold_ours_ms'), s.get('cold_mlflow_ms'))} "
            f"({fmt_x(s.get('cold_ratio'))}) "
            f"| {_ms_pair(s.get('warm_ours_ms'), s.get('warm_mlflow_ms'))} "
            f"({fmt_x(s.get('warm_ratio'))}) "
            f"| {_mb(s.get('peak_rss_ours_mb'))} vs {_mb(s.get('peak_rss_mlflow_mb'))} |"
        )
    return "\n".join(lines)


def _ms_pair(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "n/a"
    return f"{fmt_ms(ours)} vs {fmt_ms(theirs)}"


def _when(meta: dict[str, Any]) -> str:
    if not meta:
        return ""
    return (
        f" Measured {meta['date']}, load average {meta.get('load_before')} before, "
        f"{meta.get('load_after')} after (the last run; each model's `date` in latest.json)."
    )


def _flavor_section(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    if not results.get("flavors"):
        return []
    meta = results.get("flavors_meta", {})
    runs = max((s["runs"] for s in summary.get("flavors", {}).values()), default=0)
    warm_n = max((s["warm_n"] for s in summary.get("flavors", {}).values()), default=0)
    return [
        "## Flavors",
        "",
        f"`bench/flavors.py`: each flavor test model packaged for python3.12 x86_64 (catboost "
        f"and the OLS as image contexts). Cold: median of {runs} fresh starts each, ours through "
        "the local Lambda runtime (RIE + awslambdaric, the bundle's Python and packages only) "
        "vs a fresh host `python` running `mlflow.pyfunc.load_model` + "
        "`scoring_server.invocations` on the same 2-row input example. Warm p50: "
        f"{warm_n} more requests, ours as Lambda's `Duration`, MLflow's "
        "`scoring_server.invocations` in the same process (neither with HTTP)." + _when(meta),
        "",
        flavor_table(results, summary),
        "",
    ]


def render(results: dict[str, Any], summary: dict[str, Any], chart: str | None) -> str:
    """The whole ``latest.md``."""
    lines = ["# mlflow-lambda benchmarks", "", *_meta(results["meta"]), ""]
    lines += ["## Summary", "", readme_table(results, summary), ""]
    if chart:
        lines += [f"![benchmark chart]({chart})", ""]
    lines += [
        "## Goals",
        "",
        "| model | goal | value | status | measured as |",
        "|---|---|---|---|---|",
    ]
    for g in summary["goals"]:
        lines.append(
            f"| {g['model']} | {g['target']} | {_goal_value(g)} | {_status(g)} | {g['detail']} |"
        )
    lines.append("")
    lines += _cold_section(results, summary) + _warm_section(results, summary)
    lines += _memory_section(results, summary) + load.section(results) + size_section(results)
    lines += build_section(results, summary) + _flavor_section(results, summary)
    notes = results["meta"].get("notes", [])
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)
