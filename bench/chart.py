"""The PNG chart of a run: cold start, warm p50 by request size, peak memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_COLD = (
    ("ours", "ours (invoke)"),
    ("mlflow_load", "pyfunc.load_model\n+ predict"),
    ("mlflow_serve", "mlflow models\nserve"),
)
_WARM = (
    ("ours_serve", "ours, serve (HTTP)", "C0", "o"),
    ("mlflow_serve", "mlflow models serve", "C1", "s"),
    ("handler", "ours, handler in-process", "C2", "^"),
    ("bare", "bare predict", "C3", "."),
)


def draw(results: dict[str, Any], summary: dict[str, Any], dest: Path) -> None:
    """Write a three-panel PNG to ``dest``."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    keys = list(results["models"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    cold_ax, warm_ax, mem_ax = axes
    width = 0.8 / len(_COLD)
    for i, (path, label) in enumerate(_COLD):
        medians, low, high = [], [], []
        for key in keys:
            s = summary["models"][key]["cold"].get(path)
            m = s["median"] / 1000 if s else 0.0
            medians.append(m)
            low.append(m - s["min"] / 1000 if s else 0.0)
            high.append(s["max"] / 1000 - m if s else 0.0)
        xs = [k + (i - 1) * width for k in range(len(keys))]
        cold_ax.bar(xs, medians, width, yerr=[low, high], capsize=3, label=label)
    cold_ax.set_xticks(range(len(keys)), [results["models"][k]["title"] for k in keys], fontsize=8)
    cold_ax.set_ylabel("seconds to first prediction")
    cold_ax.set_title("Cold start (median, min-max)")
    cold_ax.legend(fontsize=8)

    for key, line in zip(keys, ("-", "--", ":"), strict=False):
        w = summary["models"][key]["warm"]
        rows = [int(r) for r in w]
        for name, label, color, marker in _WARM:
            ys = [w[r][name]["median"] if name in w[r] else float("nan") for r in w]
            warm_ax.plot(rows, ys, line, color=color, marker=marker, label=f"{label} [{key}]")
    if any(summary["models"][k]["warm"] for k in keys):  # `--skip warm`: no data to scale
        warm_ax.set_xscale("log")
        warm_ax.set_yscale("log")
    warm_ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    warm_ax.set_xlabel("rows per request")
    warm_ax.set_ylabel("p50 ms")
    warm_ax.set_title("Warm latency")
    warm_ax.legend(fontsize=6)

    bars = (
        ("ours_first_mb", "ours (runtime)"),
        ("mlflow_worker_first_mb", "MLflow worker"),
        ("mlflow_serve_first_mb", "mlflow models serve (all)"),
    )
    width = 0.8 / len(bars)
    for i, (field, label) in enumerate(bars):
        values = [summary["models"][k]["memory"].get(field) or 0.0 for k in keys]
        xs = [k + (i - 1) * width for k in range(len(keys))]
        mem_ax.bar(xs, values, width, label=label)
    mem_ax.set_xticks(range(len(keys)), [results["models"][k]["title"] for k in keys], fontsize=8)
    mem_ax.set_ylabel("peak RSS, MiB")
    mem_ax.set_title("Memory after the first prediction")
    mem_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dest, dpi=100, format="png")
    plt.close(fig)
