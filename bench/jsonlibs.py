"""Which JSON library the handler uses, by measurement: stdlib ``json``, orjson, msgspec, simdjson.

    python -m bench.jsonlibs        # prints per-library medians (CPU ms) and writes nothing

Decodes a ``dataframe_split`` body of 10 000 and of 2 rows (the README forest's 4 columns and
the large forest's 20), and encodes 10 000 predictions. CPU time (``time.thread_time``), not
wall time, so that other load on a shared machine moves every library alike. Besides speed,
what decides is whether a library decodes to exactly ``json.loads``'s objects: orjson turns
an integer past 64 bits into a float (``123456789012345678901234567890`` ->
``1.2345678901234568e+29``), msgspec keeps it exact (``SEMANTICS`` below, printed with the numbers).

Then the large request's own step (``handler.numeric``): the 40 000 numbers of a 10 000-row,
4-column ``data``, as its JSON text, into a float64 array. Decoding them as a flat list and
gathering it with ``np.fromiter`` (msgspec, orjson) makes a Python float per number first;
simdjson's ``as_buffer`` writes the doubles straight into a buffer; numpy's own text parser
(``np.fromstring``) is given the same text. Every candidate's array is checked to be the
same bytes as msgspec's.
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
import simdjson

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


def number_text(rows: int = 10_000, columns: int = 4) -> bytes:
    """The ``data`` text of :func:`body`: rows of numbers."""
    values = np.random.default_rng(0).uniform(0, 8, size=(rows, columns)).round(3).tolist()
    return json.dumps(values).encode()


def matrix_builders() -> dict[str, Callable[[bytes], np.ndarray[Any, Any]]]:
    """The candidates for ``data`` text -> flat float64 array."""
    decoder = msgspec.json.Decoder()
    brackets = bytes.maketrans(b"[]", b"  ")
    parser = simdjson.Parser()

    def flat(raw: bytes) -> bytes:
        return b"[" + raw[1:-1].translate(brackets) + b"]"

    def gathered(decode: Callable[[bytes], list[Any]]) -> Callable[[bytes], np.ndarray[Any, Any]]:
        def build(raw: bytes) -> np.ndarray[Any, Any]:
            cells = decode(flat(raw))
            return np.fromiter(cells, np.float64, len(cells))

        return build

    def buffered(raw: bytes) -> np.ndarray[Any, Any]:
        document = parser.parse(raw)
        buffer = document.as_buffer(of_type="d")
        del document
        return np.frombuffer(buffer, np.float64)

    def numpy_text(raw: bytes) -> np.ndarray[Any, Any]:
        return np.fromstring(flat(raw)[1:-1], dtype=np.float64, sep=",")

    return {
        "msgspec + fromiter": gathered(decoder.decode),
        "orjson + fromiter": gathered(orjson.loads),
        "simdjson as_buffer": buffered,
        "np.fromstring": numpy_text,
    }


def measure_matrix(runs: int = 30) -> dict[str, float]:
    """Median CPU ms per :func:`matrix_builders` candidate on :func:`number_text`."""
    raw = number_text()
    builders = matrix_builders()
    reference = builders["msgspec + fromiter"](raw).tobytes()
    for name, build in builders.items():
        if build(raw).tobytes() != reference:
            raise AssertionError(f"{name} made other numbers than msgspec")
    return {name: _cpu_ms(lambda build=build: build(raw), runs) for name, build in builders.items()}


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
    matrix = measure_matrix().items()
    print(f"{'10000 x 4 numbers -> float64':28}", "  ".join(f"{n} {ms:.3f} ms" for n, ms in matrix))
    for raw, row in semantics().items():
        print(f"{raw[:40]:40}", " | ".join(f"{n}: {v}" for n, v in row.items()))


if __name__ == "__main__":
    main()
