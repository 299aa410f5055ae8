"""Summaries of timing samples: median, tail and spread, and ratios between two sides.

Benchmarks here run a few times on a shared 2-core machine, so the summaries are the robust
ones: the median for the centre, the interquartile range and min-max for the spread (no mean
or standard deviation, which one slow outlier run would dominate). Percentiles use linear
interpolation between order statistics (``statistics.quantiles(method="inclusive")``, i.e.
numpy's default), so the p99 of fewer than 100 samples lies between the two largest.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Order statistics of one list of samples (same unit as the samples)."""

    n: int
    median: float
    p25: float
    p75: float
    p99: float
    min: float
    max: float

    @property
    def iqr(self) -> float:
        """The interquartile range, p75 - p25."""
        return self.p75 - self.p25

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a JSON-friendly dict."""
        return asdict(self)


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples``, linearly interpolated."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q!r}")
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(samples: Sequence[float]) -> Summary:
    """Median, quartiles, p99 and range of ``samples`` (at least one)."""
    if not samples:
        raise ValueError("cannot summarize an empty list of samples")
    return Summary(
        n=len(samples),
        median=statistics.median(samples),
        p25=percentile(samples, 25),
        p75=percentile(samples, 75),
        p99=percentile(samples, 99),
        min=min(samples),
        max=max(samples),
    )


def ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """Median of ``ours`` over median of ``theirs`` (below 1: ours is smaller)."""
    denominator = statistics.median(theirs)
    if denominator == 0:
        raise ValueError("ratio against a zero median")
    return float(statistics.median(ours) / denominator)


def throughput(latencies_ms: Sequence[float], rows: int) -> dict[str, float]:
    """Sequential requests/s and rows/s of one client, from per-request latencies in ms."""
    mean_s = statistics.fmean(latencies_ms) / 1000
    return {"requests_per_s": 1 / mean_s, "rows_per_s": rows / mean_s}


def summaries(samples: dict[str, Sequence[float]]) -> dict[str, dict[str, Any]]:
    """``summarize`` every non-empty list of a ``name -> samples`` mapping, as dicts."""
    return {name: summarize(values).to_dict() for name, values in samples.items() if values}


def fmt_x(value: float | None) -> str:
    """A ratio for a table (``0.26x``), or n/a."""
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_ms(value: float) -> str:
    """Milliseconds for a table: about 3 significant figures, in seconds from 1 s up."""
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def fmt_spread(s: Summary | dict[str, Any]) -> str:
    """``"1.23 s (1.10-1.40, n=7)"``: median with the min-max range of the runs."""
    d = s.to_dict() if isinstance(s, Summary) else s
    return f"{fmt_ms(d['median'])} ({fmt_ms(d['min'])}-{fmt_ms(d['max'])}, n={d['n']})"
