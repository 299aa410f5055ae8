"""msgspec in the handler answers exactly what ``json`` did; the build's init-time warning."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_lambda.handler.parsing import load_json, parse_json
from mlflow_lambda.handler.serialize import predictions_json
from mlflow_lambda.packager.importcheck import init_warning, lambda_init_estimate_s


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values, NaN equal to NaN, and the same Python types (int stays int)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def stdlib(body: bytes) -> Any:
    """What the handler did before msgspec: ``json.loads`` of the UTF-8 text (or the bytes)."""
    if body.startswith(b"\xef\xbb\xbf") or b"\x00" in body[:4]:
        return json.loads(body)
    return json.loads(body.decode("utf-8"))


def outcome(fn: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", fn(body)
    except (ValueError, RecursionError) as exc:
        return "error", str(exc)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 123456789012345678901234567890}',  # orjson would make this a float
        b'{"a": -9223372036854775809, "b": 18446744073709551616}',
        b'{"a": NaN, "b": Infinity, "c": -Infinity}',
        b'{"a": 1e400, "b": -1e400, "c": 1e-400}',
        b'{"a": 1, "a": 2}',
        b'\xef\xbb\xbf{"a": 1}',
        json.dumps({"a": "\u00e9"}).encode("utf-16"),
        b'{"a": "\\ud800"}',
        b'{"a": "\xff"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a": 01}',
        b'{"a": 1} x',
        b"",
    ],
)
def test_load_json_is_json_loads(body: bytes) -> None:
    ours, theirs = outcome(load_json, body), outcome(stdlib, body)
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1] if ours[0] == "error" else same(ours[1], theirs[1])


_json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        _json_values.map(lambda v: json.dumps(v).encode()),
        _json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
        st.binary(max_size=64),
        st.from_regex(rb"\A-?[0-9]{1,40}(\.[0-9]{1,40})?([eE][-+]?[0-9]{1,4})?\Z"),
    )
)
def test_load_json_matches_json_loads_on_any_bytes(body: bytes) -> None:
    ours, theirs = outcome(load_json, body), outcome(stdlib, body)
    assert ours[0] == theirs[0], (body, ours, theirs)
    if ours[0] == "ok":
        assert same(ours[1], theirs[1]), body


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(width=64), max_size=30) | st.lists(st.integers(0, 2**64 - 1)),
    kind=st.sampled_from(["f8", "f4", "f2", "i8", "u8", "bool", "U"]),
)
def test_array_predictions_encode_to_the_same_json_values(values: list[Any], kind: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # f4 overflow to inf: null below
        try:
            arr = np.array(values, dtype=kind if kind != "U" else str)
        except (OverflowError, ValueError):  # a negative or huge int for u8 / i8
            return
    with np.errstate(all="ignore"):
        body = json.loads(predictions_json(arr))
        expected = [None if isinstance(v, float) and not math.isfinite(v) else v
                    for v in arr.tolist()]  # fmt: skip
    assert body == {"predictions": expected}


def test_a_huge_int_in_a_double_column_is_refused_not_a_crash() -> None:
    parsed = parse_json(b'{"inputs": [[1' + b"0" * 400 + b"]]}")
    assert parsed.payload.data == [[10**400]]  # type: ignore[union-attr]


def test_init_warning_scales_by_the_cpu_share() -> None:
    assert lambda_init_estimate_s(1.0, 1769) == 1.0
    assert lambda_init_estimate_s(1.0, 3538) == 1.0  # more than one vCPU: no faster
    assert lambda_init_estimate_s(1.0, 1024) == pytest.approx(1769 / 1024)
    assert init_warning(None, 1024) is None
    assert init_warning(4.0, 1024) is None  # ~6.9 s: under 80% of the 10 s limit
    slow = init_warning(5.0, 1024)
    assert slow is not None
    assert "expect ~8.6 s" in slow and "MemorySize=1152" in slow and "one Lambda vCPU" in slow
    hopeless = init_warning(9.0, 1024)
    assert hopeless is not None and "no MemorySize brings it under" in hopeless
