"""handler.parsing: content types and request bodies to typed payloads."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from mlflow_lambda.handler.errors import BAD_REQUEST, INVALID_PARAMETER_VALUE, ScoringError
from mlflow_lambda.handler.parsing import (
    Columns,
    Frame,
    ParsedRequest,
    Records,
    Rows,
    Tensor,
    parse_content_type,
    parse_csv,
    parse_json,
    table_of,
)


def _json(obj: Any) -> ParsedRequest:
    return parse_json(json.dumps(obj).encode())


def _error(fn: Any, *args: Any, **kwargs: Any) -> ScoringError:
    with pytest.raises(ScoringError) as info:
        fn(*args, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (None, "json"),  # FIX: MLflow answers 500
        ("", "json"),
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("application/json; charset=UTF-8", "json"),
        ('application/json; charset="utf-8"', "json"),
        ("Application/JSON", "json"),
        ("application/json;", "json"),
        ("text/csv", "csv"),
        ("text/csv; charset=utf-8", "csv"),
        ("application/csv", "csv"),  # FIX: MLflow's docs use it, its server refuses it
    ],
)
def test_content_types_accepted(header: str | None, kind: str) -> None:
    assert parse_content_type(header) == kind


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("application/json; charset=latin-1", "charset 'latin-1'"),
        ("application/json; format=pandas-split", "parameters: format"),
        ("text/plain", "Got 'text/plain'"),
        ("application/vnd.apache.parquet", "Got 'application/vnd.apache.parquet'"),
    ],
)
def test_content_types_refused_with_415(header: str, needle: str) -> None:
    err = _error(parse_content_type, header)
    assert (err.status, err.error_code) == (415, BAD_REQUEST)
    assert needle in err.message


def test_each_format_becomes_its_payload() -> None:
    split = {"columns": ["a", "b"], "data": [[1, 2]], "index": [7]}
    assert _json({"dataframe_split": split}) == ParsedRequest(
        "dataframe_split", Rows(["a", "b"], [[1, 2]])
    )
    assert _json({"dataframe_records": [{"a": 1}], "params": {"k": 1}}) == ParsedRequest(
        "dataframe_records", Records([{"a": 1}]), {"k": 1}
    )
    assert _json({"dataframe_records": [[1, 2]]}).payload == Rows(None, [[1, 2]])
    assert _json({"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}).payload == Columns(
        {"a": [1, 3], "b": [2, 4]}, BAD_REQUEST, pivoted=True
    )
    assert _json({"instances": {"a": [1]}}).payload == Columns({"a": [1]}, BAD_REQUEST)
    assert _json({"instances": [[1, 2]]}).payload == Tensor([[1, 2]])
    assert _json({"inputs": {"a": [1]}}).payload == Columns({"a": [1]}, INVALID_PARAMETER_VALUE)
    assert _json({"inputs": [{"a": 1}]}).payload == Records([{"a": 1}])
    assert _json({"inputs": [[1.5, 2]]}).payload == Tensor([[1.5, 2]])
    assert _json({"inputs": []}).payload == Tensor([])
    # unknown top-level keys are ignored, as in MLflow
    assert _json({"inputs": 3, "extra": 1}) == ParsedRequest("inputs", Tensor(3))


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "valid JSON"),
        (b"{bad", "valid JSON"),
        (b"\xff\xfe{", "valid JSON"),
        (b"[1, 2]", "Received a list"),
        (b"3", "Received a int"),
        (b"{}", "Received an object with fields []"),
        (b'{"foo": 1}', "fields ['foo']"),
        (b'{"inputs": [], "instances": []}', "fields ['inputs', 'instances']"),
        (b'{"dataframe_split": [[1]]}', "must be a dictionary. Got list"),
        (b'{"dataframe_split": {"columns": ["a"]}}', "must have 'data' field"),
        (b'{"dataframe_split": {"data": [[1]], "foo": 1}}', "Got ['data', 'foo']"),
        (b'{"dataframe_split": {"data": "abc"}}', "'data' must be a list"),
        (b'{"dataframe_split": {"data": [[1]], "columns": "a"}}', "'columns' must be a list"),
        (b'{"dataframe_split": {"data": [[1]], "index": [1, 2]}}', "as long as 'data' (1 rows)"),
        (b'{"dataframe_records": {"a": 1}}', "list of records. Got dictionary"),
        (b'{"dataframe_records": [{"a": 1}, 2]}', "mix of objects"),
        (b'{"instances": [{"a": 1}, {"a": 2, "b": 3}]}', "length of values"),
        (b'{"instances": [{"a": 1}, 2]}', "instances[1] is 2"),
    ],
)
def test_malformed_json_is_bad_request(body: bytes, needle: str) -> None:
    err = _error(parse_json, body)
    assert (err.status, err.error_code) == (400, BAD_REQUEST)
    assert needle in err.message


def test_body_encodings_json_detects_are_still_read() -> None:
    assert parse_json('{"inputs": [1]}'.encode("utf-16")).payload == Tensor([1])
    assert parse_json(b'\xef\xbb\xbf{"inputs": [2]}').payload == Tensor([2])  # UTF-8 BOM
    err = _error(parse_json, b'{"inputs": "\xff"}')
    assert (err.error_code, "can't decode byte 0xff" in err.message) == (BAD_REQUEST, True)


def test_nan_and_infinity_literals_parse_like_python_json() -> None:
    rows = parse_json(b'{"dataframe_split": {"data": [[NaN, Infinity]]}}').payload
    assert isinstance(rows, Rows)
    assert np.isnan(rows.data[0][0]) and rows.data[0][1] == float("inf")


def test_csv_for_tensors_uses_the_stdlib_reader() -> None:
    parsed = parse_csv(b'a,b\n1,"2"\n\n3.5,x\n', tensor=True)
    assert parsed == ParsedRequest("csv", Rows(["a", "b"], [["1", "2"], ["3.5", "x"]]))
    assert "No columns to parse" in _error(parse_csv, b"", tensor=True).message


def test_csv_with_pandas_keeps_string_columns_as_text() -> None:
    parsed = parse_csv(b"age,city\n70,007\n,paris\n", tensor=False, string_columns={"city"})
    assert isinstance(parsed.payload, Frame)
    frame = parsed.payload.frame
    assert list(frame["city"]) == ["007", "paris"]
    assert frame["age"].dtype == np.float64 and np.isnan(frame["age"].iloc[1])
    for body in (b"", b"a,b\n1,2,3,4\n\xff"):
        err = _error(parse_csv, body, tensor=False)
        assert err.error_code == BAD_REQUEST


def test_table_views() -> None:
    table = table_of(Records([{"a": 1, "b": 2}, {"b": 3, "c": 4}]))
    assert (table.labels, table.n_rows) == (["a", "b", "c"], 2)
    assert [table.column(c) for c in "abc"] == [[1, None], [2, 3], [None, 4]]

    table = table_of(Rows(None, [[1, 2], [3, 4]]))
    assert (table.labels, table.column(1)) == ([0, 1], [2, 4])

    table = table_of(Rows(["x"], [1, 2, 3]))  # a flat list is one column, as in pandas
    assert (table.labels, table.n_rows, table.column("x")) == (["x"], 3, [1, 2, 3])

    table = table_of(Columns({"a": [1, 2], "b": 9}))  # scalars broadcast
    assert (table.n_rows, table.column("b")) == (2, [9, 9])
    assert table_of(Columns({"a": 1, "b": "x"})).column("b") == ["x"]

    table = table_of(Tensor([[1, 2, 3]]))
    assert (table.labels, table.n_rows) == ([0, 1, 2], 1)


def test_table_refuses_ragged_rows_and_uneven_columns() -> None:
    # pandas pads a short row with NaN: a silently wrong answer, so we refuse it
    err = _error(table_of, Rows(["a", "b"], [[1, 2], [3]]))
    assert (err.error_code, err.message.split(".")[1].strip()) == (
        BAD_REQUEST,
        "Row 1 of 'data' has 1 values but the table has 2 columns; every row needs one value "
        "per column",
    )
    err = _error(table_of, Rows(["a", "b"], [1, 2]))
    assert "holds single values but 2 columns" in err.message
    err = _error(table_of, Columns({"a": [1, 2], "b": [1]}, INVALID_PARAMETER_VALUE))
    assert (err.error_code, "lengths [1, 2]" in err.message) == (INVALID_PARAMETER_VALUE, True)
