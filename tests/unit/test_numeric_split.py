"""handler.numeric: a dataframe_split of numbers gives the model exactly what the generic path
gives it, and anything else is left to the generic path."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_lambda.handler.app import Scorer
from mlflow_lambda.handler.numeric import numeric_split
from mlflow_lambda.handler.parsing import parse_json
from mlflow_lambda.handler.payload import Rows
from mlflow_lambda.handler.schema import _try_matrix
from tests.unit.test_handler_app import COLUMNS, FakePredictor, make_config

UNSIGNED = None


def generic_matrix(body: bytes, width: int) -> np.ndarray[Any, Any] | None:
    """What the generic parse and the signature's fast matrix make of ``body``."""
    payload = parse_json(body).payload
    assert isinstance(payload, Rows)
    return _try_matrix(payload.data, np.dtype("float64"), width)


def same_array(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    """Same shape, dtype and bytes (so -0.0 and 0.0 differ, and NaN equals NaN)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


cells = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -0.0, 5e-324, 1.7976931348623157e308, 2**53 + 1, 0.1]),
)


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(1, 5),
    rows=st.integers(1, 8),
    data=st.data(),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,\n ", " :\t")]),
    named=st.booleans(),
)
def test_numbers_give_the_generic_matrix(
    width: int, rows: int, data: Any, separators: tuple[str, str], named: bool
) -> None:
    table = [[data.draw(cells) for _ in range(width)] for _ in range(rows)]
    split: dict[str, Any] = {"data": table}
    if named:
        split["columns"] = [f"c{i}" for i in range(width)]
    body = json.dumps({"dataframe_split": split}, separators=separators).encode()
    expected = generic_matrix(body, width)
    fast = numeric_split(body)
    if expected is None:  # an int past the float range: the generic path's careful path
        assert fast is None
        return
    assert fast is not None, body
    assert same_array(fast.matrix, expected)
    assert fast.columns == split.get("columns")


@pytest.mark.parametrize(
    "body",
    [
        b'{"dataframe_split": {"data": [[1, 2], [3]]}}',  # ragged
        b'{"dataframe_split": {"data": [[1, 2], [3, 4, 5]]}}',
        b'{"dataframe_split": {"data": [[1, 2], [3], [4, 5, 6]]}}',  # as many cells as 3x2
        b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2, 3], [4]]}}',
        b'{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2]]}}',  # too narrow
        b'{"dataframe_split": {"data": [[1, 2], 3]}}',  # a number outside the rows
        b'{"dataframe_split": {"data": [3, [1, 2]]}}',
        b'{"dataframe_split": {"data": [[1], []]}}',
        b'{"dataframe_split": {"data": []}}',
        b'{"dataframe_split": {"data": [1, 2]}}',
        b'{"dataframe_split": {"data": [[1, null]]}}',
        b'{"dataframe_split": {"data": [[1, "2"]]}}',
        b'{"dataframe_split": {"data": [[1, true]]}}',
        b'{"dataframe_split": {"data": [[1, [2]]]}}',
        b'{"dataframe_split": {"data": [[1, NaN]]}}',  # json.loads reads it; msgspec does not
        b'{"dataframe_split": {"data": [[1, 1e400]]}}',  # inf for json.loads
        b'{"dataframe_split": {"data": [[1, 2]], "index": [7]}}',
        b'{"dataframe_split": {"columns": "ab", "data": [[1, 2]]}}',
        b'{"dataframe_split": {"columns": [["a"], "b"], "data": [[1, 2]]}}',
        b'{"dataframe_split": {"data": [[1, 2]]}, "extra": 1}',
        b'{"dataframe_records": [{"a": 1}]}',
        b'{"dataframe_split": {"data": [[1, 2]]}',  # truncated
    ],
)
def test_anything_else_is_left_to_the_generic_path(body: bytes) -> None:
    assert numeric_split(body) is None


def test_duplicate_keys_keep_the_last_value_as_json_does() -> None:
    body = b'{"dataframe_split": {"data": [[1, 2]], "data": [[3, 4]]}, "params": {"k": 1}}'
    fast = numeric_split(body)
    assert fast is not None
    assert fast.matrix.tolist() == [[3.0, 4.0]]
    assert fast.params == json.loads(body)["params"]


def _answers(scorer: Scorer, body: bytes) -> tuple[Any, bytes]:
    answer = scorer.score(body, "application/json")
    return scorer.predictor.calls[-1][0], answer.body  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("inputs", "pandas", "columns"),
    [
        (COLUMNS, True, ["a", "b"]),  # a named float64 signature: the DataFrame
        (COLUMNS, False, ["a", "b"]),  # ... or the array without pandas
        (UNSIGNED, False, None),  # no signature, no pandas: the array as sent
        (UNSIGNED, False, [3, 1]),
    ],
)
def test_the_model_gets_the_same_input_either_way(
    inputs: list[dict[str, Any]] | None, pandas: bool, columns: list[Any] | None
) -> None:
    split: dict[str, Any] = {"data": [[1.5, -2], [3, 4e-3], [0.1, 7]]}
    if columns is not None:
        split["columns"] = columns
    body = json.dumps({"dataframe_split": split, "params": None}).encode()
    fast = Scorer(FakePredictor(), make_config(inputs), pandas=pandas)
    slow = Scorer(FakePredictor(), make_config(inputs), pandas=pandas)
    assert fast.numeric_split
    slow.numeric_split = False
    parsed = fast.parse(body, "application/json")
    assert isinstance(parsed.payload, Rows) and isinstance(parsed.payload.data, np.ndarray)
    (got, got_body), (want, want_body) = _answers(fast, body), _answers(slow, body)
    assert got_body == want_body
    assert type(got) is type(want)
    if hasattr(want, "columns"):
        assert list(got.columns) == list(want.columns)
        assert got.columns.dtype == want.columns.dtype
    a, b = np.asarray(got), np.asarray(want)
    assert same_array(a, b) and a.flags.f_contiguous == b.flags.f_contiguous


def test_columns_out_of_signature_order_take_the_generic_path() -> None:
    scorer = Scorer(FakePredictor(), make_config(COLUMNS), pandas=False)
    body = b'{"dataframe_split": {"columns": ["b", "a"], "data": [[1, 2]]}}'
    parsed = scorer.parse(body, "application/json")
    assert isinstance(parsed.payload, Rows) and isinstance(parsed.payload.data, list)
    assert scorer.score(body, "application/json").status == 200


def test_only_models_that_get_a_float64_matrix_take_it() -> None:
    ints = [{"type": "long", "name": n, "required": True} for n in ("a", "b")]
    assert not Scorer(FakePredictor(), make_config(ints), pandas=False).numeric_split
    # no signature with pandas: MLflow's DataFrame keeps int columns int, so not here
    assert not Scorer(FakePredictor(), make_config(UNSIGNED), pandas=True).numeric_split


@pytest.mark.parametrize(
    "cells",
    [
        [2**64, 1],  # past simdjson's 64 bits: msgspec and np.fromiter instead
        [-(2**63) - 1, 0.5],
        [2**64 - 1, -(2**63)],  # simdjson's own limits
        [2**53 + 1, -0.0],
    ],
)
def test_integers_at_and_past_64_bits_give_the_generic_matrix(cells: list[Any]) -> None:
    body = json.dumps({"dataframe_split": {"data": [cells, cells[::-1]]}}).encode()
    fast = numeric_split(body)
    expected = generic_matrix(body, len(cells))
    assert fast is not None and expected is not None
    assert same_array(fast.matrix, expected)


def test_the_parser_is_reused_after_a_body_it_refused() -> None:
    # simdjson refuses to parse again while a document's proxies live (RuntimeError): every
    # refusal in between must leave the shared parser usable
    good = b'{"dataframe_split": {"data": [[1.5, 2], [3, 4]]}}'
    refused = [
        b'{"dataframe_split": {"data": [[18446744073709551616, 2]]}}',
        b'{"dataframe_split": {"data": [[1, 1e400]]}}',
        b'{"dataframe_split": {"data": [[1, 2], [3]]}}',
    ]
    for body in [*refused, good, *refused, good]:
        numeric_split(body)
    fast = numeric_split(good)
    assert fast is not None and fast.matrix.tolist() == [[1.5, 2.0], [3.0, 4.0]]


def test_a_large_body_gets_a_parser_of_its_own_with_the_same_matrix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow_lambda.handler import numeric

    rows = np.random.default_rng(3).uniform(-1e6, 1e6, size=(50, 3)).round(5).tolist()
    body = json.dumps({"dataframe_split": {"data": rows}}).encode()
    shared = numeric_split(body)
    monkeypatch.setattr(numeric, "REUSE_BYTES", 10)
    own = numeric_split(body)
    assert shared is not None and own is not None
    assert same_array(shared.matrix, own.matrix)
    assert same_array(own.matrix, np.array(rows, dtype=np.float64))


def test_the_matrix_is_the_models_to_change() -> None:
    # a custom model may scale its input in place, as it can the generic path's array
    fast = numeric_split(b'{"dataframe_split": {"data": [[1, 2], [3, 4]]}}')
    assert fast is not None and fast.matrix.flags.writeable and fast.matrix.flags.c_contiguous
    matrix = fast.matrix
    matrix *= 2
    assert matrix.tolist() == [[2.0, 4.0], [6.0, 8.0]]


def test_while_another_document_holds_the_parser_msgspec_decodes_instead() -> None:
    # another thread between its parse and its as_buffer: simdjson refuses the shared parser
    from mlflow_lambda.handler import numeric

    held = numeric._PARSER.parse(b"[[9, 9]]")
    try:
        fast = numeric_split(b'{"dataframe_split": {"data": [[1.5, 2], [3, 4]]}}')
    finally:
        del held
    assert fast is not None and fast.matrix.tolist() == [[1.5, 2.0], [3.0, 4.0]]
