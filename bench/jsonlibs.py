"""Which JSON library the handler uses, by measurement: stdlib ``json``, orjson, msgspec.

    python -m bench.jsonlibs        # prints per-library medians (CPU ms) and writes nothing

Decodes a ``dataframe_split`` body of 10 000 and of 2 rows (the README forest's 4 columns and
the large forest's 20), and encodes 10 000 predictions. CPU time (``time.thread_time``), not
wall time, so that other load on a shared machine moves every library alike. Besides speed,
what decides is whether a library decodes to exactly ``json.loads``'s objects: orjson turns
an integer past 64 bits into a float (``123456789012345678901234567890`` ->
``1.2345678901234568e+29``), msgspec keeps it exact (``SEMANTICS`` below, printed with the numbers).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import orjson

# Bodies json.loads accepts where a fast library may differ; what each library makes of them.
SEMANTICS = (
    b'{"a": 123456789012345678901234567890}',
    b'{"a": -9223372036854775809}',
    b'{"a": NaN}',
    b'{"a": 1e400}',
    b'{"a": 1, "a": 2}',
    b'\xef\xbb\xbf{"a": 1}',
)


def _cpu_ms(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.thread_time()
        fn()
        times.append((time.thread_time() - started) * 1000)
    return statistics.median(times)


def body(rows: int, columns: int) -> bytes:
    """A ``dataframe_split`` body like bench.models makes (3 decimals)."""
    values = np.random.default_rng(0).uniform(0, 8, size=(rows, columns)).round(3).tolist()
    names = [f"f{i:02d}" for i in range(columns)]
    return json.dumps({"dataframe_split": {"columns": names, "data": values}}).encode()


def decoders() -> dict[str, Callable[[bytes], Any]]:
    """The candidates, each as a bytes -> objects function."""
    decoder = msgspec.json.Decoder()
    return {
        "json": lambda b: json.loads(b.decode("utf-8")),
        "orjson": orjson.loads,
        "msgspec": decoder.decode,
    }


def measure(runs: int = 30) -> dict[str, dict[str, float]]:
    """Median CPU ms per library: decode at 2 and 10 000 rows (4 and 20 columns), encode."""
    out: dict[str, dict[str, float]] = {}
    for rows, columns in ((2, 4), (10_000, 4), (10_000, 20)):
        data = body(rows, columns)
        n = runs * 100 if rows == 2 else runs
        out[f"decode {rows} rows x {columns}"] = {
            name: _cpu_ms(lambda fn=fn, data=data: fn(data), n) for name, fn in decoders().items()
        }
    predictions = np.random.default_rng(0).integers(0, 3, 10_000)
    encoder = msgspec.json.Encoder()
    out["encode 10000 predictions"] = {
        "json": _cpu_ms(lambda: json.dumps({"predictions": predictions.tolist()}).encode(), runs),
        "orjson": _cpu_ms(lambda: orjson.dumps({"predictions": predictions.tolist()}), runs),
        "msgspec": _cpu_ms(lambda: encoder.encode({"predictions": predictions.tolist()}), runs),
    }
    return out


def semantics() -> dict[str, dict[str, str]]:
    """What each library makes of the bodies in :data:`SEMANTICS` (repr or the error type)."""
    out: dict[str, dict[str, str]] = {}
    for raw in SEMANTICS:
        row: dict[str, str] = {}
        for name, fn in {**decoders(), "json": json.loads}.items():
            try:
                row[name] = repr(fn(raw))
            except (ValueError, RecursionError, msgspec.MsgspecError) as exc:
                row[name] = type(exc).__name__
        out[raw.decode("utf-8", "replace")] = row
    return out


def main() -> None:
    for what, times in measure().items():
        print(f"{what:28}", "  ".join(f"{n} {ms:.3f} ms" for n, ms in times.items()))
    for raw, row in semantics().items():
        print(f"{raw[:40]:40}", " | ".join(f"{n}: {v}" for n, v in row.items()))


if __name__ == "__main__":
    main()
