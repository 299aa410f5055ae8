"""handler.csvtable: the pandas-free CSV reader, checked against pandas.read_csv itself."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from mlflow_lambda.handler.csvtable import read_csv_columns
from mlflow_lambda.handler.errors import BAD_REQUEST, ScoringError

# Bodies whose columns read_csv types in every way the reader must reproduce.
BODIES = [
    "a,b\n1,2\n3,4\n",  # int64
    "a,b\n1,2.5\n,4\n",  # ints with a missing value: float64
    "a\n1e3\n .5\n5.\n+inf\n-Infinity\niNF\n1.5e+3\n",  # floats, padded, inf spellings
    "a\nNA\nnan\nNULL\n<NA>\n#N/A\nNone\n-nan\n1.#QNAN\nn/a\n7\n",  # default NA strings
    "a\nTrue\nfalse\ntRUE\n",  # bools in any case
    "a\nTrue\n\n",  # the blank line is skipped: still bool
    "a,b\nTrue,1\n,2\n",  # bool with a missing value: object
    "a\n1_000\n0x10\n",  # Python's float would take these; read_csv keeps text
    "a\n nan\n NA\n",  # padded NA strings are text
    "a\n1\nTrue\n",  # ints and bools: text
    "a\n  \n1\n",  # a blank-only line is skipped
    "a,b\n1,2\n3\n",  # a short row is padded with NaN
    "a,b\n9,1,2\n8,3,4\n",  # one more field than names: the first is the index
    "a,a,a.1\n1,2,3\n",  # duplicate names
    ",b\n1,2\n",  # an empty name
    '"a","b"\n"1.5","NA"\n',  # quoted numbers and NA
    "\ufeffa,b\n1,2\n",  # a BOM
    "a,b\n",  # header only
    "a\n99999999999999999999\n",  # beyond int64
    "a\n0.1\n0.30000000000000004\n1.7976931348623157e308\n5e-324\n",  # exact floats
]


def _pandas_columns(text: str) -> dict[str, list[Any]]:
    frame = pd.read_csv(io.StringIO(text))
    return {str(k): frame[k].tolist() for k in frame.columns}


def _ours(text: str) -> dict[str, list[Any]]:
    data = read_csv_columns(text).data
    return {k: v.tolist() if isinstance(v, np.ndarray) else list(v) for k, v in data.items()}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("text", BODIES)
def test_columns_match_read_csv(text: str) -> None:
    expected, got = _pandas_columns(text), _ours(text)
    assert list(got) == list(expected)
    for name in expected:
        assert len(got[name]) == len(expected[name]), name
        pairs = zip(got[name], expected[name], strict=True)
        assert all(_same(a, b) for a, b in pairs), (name, got[name], expected[name])


def test_dtypes_are_numpy_like_read_csv() -> None:
    data = read_csv_columns("i,f,b,s\n1,1.5,True,x\n2,NA,false,NA\n").data
    assert [np.asarray(data[k]).dtype.kind for k in ("i", "f", "b")] == ["i", "f", "b"]
    assert data["s"][0] == "x" and math.isnan(data["s"][1])


def test_string_columns_keep_their_text() -> None:
    data = read_csv_columns("zip,n\n007,1\nNA,2\n", frozenset({"zip"})).data
    assert data["zip"][0] == "007" and math.isnan(data["zip"][1])
    assert data["n"].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "No columns to parse from file"),
        ("\n\n", "No columns to parse from file"),
        ("a,b\n1,2\n3,4,5\n", "Expected 2 fields in line 3, saw 3"),
        ('a,b\n"1,2\n', "unexpected end of data"),
    ],
)
def test_malformed_bodies_are_bad_requests(text: str, needle: str) -> None:
    with pytest.raises(ScoringError) as info:
        read_csv_columns(text)
    assert info.value.error_code == BAD_REQUEST
    assert info.value.message.startswith("Failed to parse input as a Pandas DataFrame.")
    assert needle in info.value.message
