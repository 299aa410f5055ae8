"""handler.schema and handler.params: signature enforcement on hand-made signatures."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from mlflow_lambda.handler.errors import BAD_REQUEST, INVALID_PARAMETER_VALUE, ScoringError
from mlflow_lambda.handler.params import ParamSchema
from mlflow_lambda.handler.parsing import table_of
from mlflow_lambda.handler.payload import Columns, Frame, Payload, Records, Rows, Tensor
from mlflow_lambda.handler.schema import InputSchema, probe_body, unsigned_matrix

IRIS = InputSchema([{"type": "double", "name": n, "required": True} for n in ("a", "b", "c")])
MIXED = InputSchema(
    [
        {"type": "long", "name": "age", "required": True},
        {"type": "double", "name": "income", "required": True},
        {"type": "string", "name": "city", "required": True},
        {"type": "boolean", "name": "vip", "required": False},
    ]
)
TENSOR = InputSchema([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}])


def _error(schema: InputSchema, payload: Any, **kwargs: Any) -> ScoringError:
    with pytest.raises(ScoringError) as info:
        schema.enforce(payload, **kwargs)
    return info.value


def test_schema_kinds() -> None:
    assert (IRIS.kind, IRIS.named, IRIS.names, IRIS.matrix_dtype) == (
        "columns",
        True,
        ["a", "b", "c"],
        np.dtype("float64"),
    )
    assert (MIXED.matrix_dtype, MIXED.string_columns) == (None, frozenset({"city"}))
    assert (TENSOR.kind, TENSOR.tensors[0].shape) == ("tensor", (-1, 3))
    assert InputSchema(None).kind == "none"


def test_all_double_rows_take_the_matrix_path() -> None:
    data, rows = IRIS.enforce(Rows(["a", "b", "c"], [[1, 2.5, None], [True, "0.5", 3]]))
    assert rows == 2
    assert isinstance(data, pd.DataFrame) and list(data.columns) == ["a", "b", "c"]
    np.testing.assert_array_equal(data.to_numpy(), [[1.0, 2.5, np.nan], [1.0, 0.5, 3.0]])
    arr, _ = IRIS.enforce(Rows(["a", "b", "c"], [[1, 2, 3]]), want_frame=False)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == (1, 3)
    empty, rows = IRIS.enforce(Rows(["a", "b", "c"], []), want_frame=False)
    assert (empty.shape, rows) == ((0, 3), 0)


def test_columns_are_reordered_and_extras_dropped() -> None:
    payload = Rows(["c", "x", "a", "b"], [[3, "zz", 1, 2]])
    frame, _ = IRIS.enforce(payload)
    assert frame.to_dict(orient="list") == {"a": [1.0], "b": [2.0], "c": [3.0]}
    arr, _ = IRIS.enforce(Records([{"c": 3, "b": 2, "a": 1, "x": 0}]), want_frame=False)
    assert arr.tolist() == [[1.0, 2.0, 3.0]]


def test_every_format_gives_the_same_frame() -> None:
    expected = {"age": [70, 57], "income": [1.5, 2.0], "city": ["paris", "nice"]}
    payloads: list[Payload] = [
        Rows(["age", "income", "city"], [[70, 1.5, "paris"], [57.0, 2, "nice"]]),
        Records(
            [
                {"age": 70, "income": 1.5, "city": "paris"},
                {"age": "57", "income": 2, "city": "nice"},
            ]
        ),
        Columns({"age": [70, 57], "income": [1.5, 2.0], "city": ["paris", "nice"]}),
        Frame(pd.DataFrame(expected)),
    ]
    for payload in payloads:
        frame, rows = MIXED.enforce(payload, want_frame=False)  # mixed types: always a frame
        assert rows == 2
        assert frame.to_dict(orient="list") == expected
        assert [str(t) for t in frame.dtypes] == ["int64", "float64", "str"]


def test_missing_required_column_names_it() -> None:
    err = _error(MIXED, Records([{"age": 1, "town": "x"}]))
    assert (err.error_code, err.message) == (
        INVALID_PARAMETER_VALUE,
        "Model is missing inputs ['income', 'city']. Note that there were extra inputs: "
        "['town']. Send every column of the model signature by name.",
    )
    # no column names at all: every required column is missing (as in MLflow)
    assert _error(IRIS, Tensor([[1, 2, 3]])).error_code == INVALID_PARAMETER_VALUE
    assert _error(IRIS, Rows(None, [[1, 2, 3]])).error_code == INVALID_PARAMETER_VALUE


@pytest.mark.parametrize(
    ("age", "needle"),
    [
        (1.7, "received the value 1.7"),  # FIX: MLflow truncates to 1 on JSON
        (None, "received a missing value"),
        (float("nan"), "received a missing value"),
        ("1.7", "invalid literal"),
        ("abc", "invalid literal"),
        (2**63, "int64 range"),
        ([1], "inhomogeneous"),
    ],
)
def test_bad_long_values_are_rejected_naming_the_column(age: Any, needle: str) -> None:
    payload = Rows(["age", "income", "city"], [[age, 1.0, "paris"], [3, 1.0, "nice"]])
    err = _error(MIXED, payload)
    assert (err.error_code, "'age'" in err.message, needle in err.message) == (
        BAD_REQUEST,
        True,
        True,
    ), err.message


@pytest.mark.parametrize("age", [1, 1.0, "1", True])
def test_whole_numbers_into_long_are_accepted(age: Any) -> None:
    frame, _ = MIXED.enforce(Rows(["age", "income", "city"], [[age, 1.0, "x"]]))
    assert frame["age"].tolist() == [1] and frame["age"].dtype == np.int64


def test_nested_values_are_rejected() -> None:
    err = _error(MIXED, Columns({"age": [[1], [2]], "income": [1, 2], "city": ["a", "b"]}))
    assert "Column 'age' of type 'long' must hold single values" in err.message
    err = _error(IRIS, Columns({"a": [[1]], "b": [2], "c": [3]}))
    assert err.message.startswith("Invalid input. Column 'a' of type 'double' must hold single")


def test_bad_double_values_are_rejected_naming_the_column() -> None:
    err = _error(IRIS, Rows(["a", "b", "c"], [[1, 2, "abc"]]))
    assert err.error_code == BAD_REQUEST
    assert "column 'c' to type 'double'" in err.message and "'abc'" in err.message
    err = _error(IRIS, Columns({"a": [1], "b": [2], "c": [{"x": 1}]}))
    assert "column 'c'" in err.message


def test_optional_and_boolean_columns() -> None:
    frame, _ = MIXED.enforce(Records([{"age": 1, "income": 2, "city": "x", "vip": 1}]))
    assert frame.to_dict(orient="list") == {
        "age": [1],
        "income": [2.0],
        "city": ["x"],
        "vip": [True],
    }
    frame, _ = MIXED.enforce(Records([{"age": 1, "income": 2, "city": "x"}]))
    assert list(frame.columns) == ["age", "income", "city"]


def test_single_column_signature_takes_a_plain_list() -> None:
    one = InputSchema([{"type": "double", "name": "x", "required": True}])
    frame, rows = one.enforce(Tensor([1, 2, 3]))
    assert (frame.to_dict(orient="list"), rows) == ({"x": [1.0, 2.0, 3.0]}, 3)


def test_unnamed_columns_are_positional() -> None:
    schema = InputSchema([{"type": "long"}, {"type": "double"}])
    frame, _ = schema.enforce(Rows(None, [[1, 2, 3]]))
    assert frame.to_dict(orient="list") == {0: [1], 1: [2.0]}
    err = _error(schema, Rows(None, [[1]]))
    assert err.error_code == INVALID_PARAMETER_VALUE and "declares 2 inputs" in err.message


def test_tensor_signature() -> None:
    arr, rows = TENSOR.enforce(Tensor([[1, 2, 3], ["4.5", 5, 6]]))
    assert (arr.tolist(), arr.dtype, rows) == ([[1, 2, 3], [4.5, 5, 6]], np.float64, 2)
    arr, _ = TENSOR.enforce(Rows(["x", "y", "z"], [[1, 2, 3]]))  # names are not checked
    assert arr.tolist() == [[1.0, 2.0, 3.0]]
    arr, _ = TENSOR.enforce(Records([{"p": 1, "q": 2, "r": 3}]))
    assert arr.tolist() == [[1.0, 2.0, 3.0]]
    arr, _ = TENSOR.enforce(Rows(["a", "b", "c"], [["1", "2", "3"]]))  # CSV text
    assert arr.tolist() == [[1.0, 2.0, 3.0]]
    vector = InputSchema([{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}])
    arr, _ = vector.enforce(Rows(["a"], [[1], [2]]))
    assert (arr.tolist(), arr.dtype) == ([1, 2], np.int64)


@pytest.mark.parametrize(
    ("payload", "code", "needle"),
    [
        (Tensor([[1, 2]]), INVALID_PARAMETER_VALUE, "(1, 2) does not match expected shape (-1, 3)"),
        (Tensor([1, 2, 3]), INVALID_PARAMETER_VALUE, "(3,) does not match"),
        (Tensor(3), INVALID_PARAMETER_VALUE, "() does not match"),
        (Tensor([["a", 1, 2]]), BAD_REQUEST, "could not convert string to float: 'a'"),
        (Tensor([[1, 2, 3], [1, 2]]), BAD_REQUEST, "inhomogeneous"),
        (Columns({"a": [1]}), BAD_REQUEST, "not an object of columns"),
        (Columns({"a": [1]}, pivoted=True), INVALID_PARAMETER_VALUE, "not an object of columns"),
        (Rows(None, [[1, 2]]), INVALID_PARAMETER_VALUE, "has 2 columns"),
        (Rows(None, [[1]]), INVALID_PARAMETER_VALUE, "single column"),
        (Rows(None, []), INVALID_PARAMETER_VALUE, "Input DataFrame is empty."),
        (Rows(None, [["a", 1, 2]]), BAD_REQUEST, "column 0"),
    ],
)
def test_tensor_errors(payload: Any, code: str, needle: str) -> None:
    err = _error(TENSOR, payload)
    assert (err.error_code, needle in err.message) == (code, True), err.message


def test_named_tensors() -> None:
    schema = InputSchema(
        [
            {"type": "tensor", "name": "x", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}},
            {"type": "tensor", "name": "y", "tensor-spec": {"dtype": "int64", "shape": [-1]}},
        ]
    )
    data, rows = schema.enforce(Columns({"x": [[1, 2]], "y": [5]}))
    assert (data["x"].dtype, data["y"].tolist(), rows) == (np.float32, [5], 1)
    assert _error(schema, Columns({"x": [[1, 2]]})).message == "Model is missing inputs ['y']."
    assert _error(schema, Tensor([1])).error_code == INVALID_PARAMETER_VALUE


def test_no_schema_passes_what_mlflow_passes() -> None:
    schema = InputSchema(None)
    frame, rows = schema.enforce(Rows(["a", "b"], [[1, "x"]]))
    assert (frame.to_dict(orient="list"), rows) == ({"a": [1], "b": ["x"]}, 1)
    arr, rows = schema.enforce(Tensor([[1, 2], [3, 4]]))
    assert (arr.tolist(), rows) == ([[1, 2], [3, 4]], 2)
    data, _ = schema.enforce(Columns({"a": [1, 2]}))
    assert data["a"].tolist() == [1, 2]


PARAMS = ParamSchema(
    [
        {"name": "scale", "type": "double", "default": 1.0, "shape": None},
        {"name": "label", "type": "string", "default": "d", "shape": None},
        {"name": "ks", "type": "long", "default": [1], "shape": [-1]},
        {"name": "when", "type": "datetime", "default": None, "shape": None},
    ]
)


def test_params_defaults_unknown_and_conversion() -> None:
    assert PARAMS.enforce(None) == {"scale": 1.0, "label": "d", "ks": [1], "when": None}
    got = PARAMS.enforce({"scale": 2, "ks": [3, 4], "when": "2024-01-02", "zzz": 1})
    assert got == {"scale": 2.0, "label": "d", "ks": [3, 4], "when": dt.date(2024, 1, 2)}
    assert isinstance(got["scale"], float)
    assert PARAMS.enforce({"label": None}) == {  # MLflow lets null through
        "scale": 1.0,
        "label": None,
        "ks": [1],
        "when": None,
    }
    assert ParamSchema(None).enforce({"anything": 1}) is None


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"scale": "x"}, "cannot safely convert str 'x' to 'double'"),
        ({"scale": True}, "cannot safely convert bool True to 'double'"),
        ({"scale": [1.0]}, "must be a scalar"),
        ({"label": 5}, "cannot safely convert int 5 to 'string'"),
        ({"ks": 3}, "1-D list"),
        ({"ks": [1.5]}, "cannot safely convert float 1.5 to 'long'"),
        ({"when": "not a date"}, "datetime"),
        ([1], "Parameters must be a dictionary. Got type 'list'."),
    ],
)
def test_params_errors(raw: Any, needle: str) -> None:
    with pytest.raises(ScoringError) as info:
        PARAMS.enforce(raw)
    assert (info.value.error_code, needle in info.value.message) == (
        INVALID_PARAMETER_VALUE,
        True,
    ), info.value.message


NUMERIC = InputSchema(
    [
        {"type": "long", "name": "age", "required": True},
        {"type": "double", "name": "income", "required": True},
        {"type": "boolean", "name": "vip", "required": True},
        {"type": "integer", "name": "rooms", "required": True},
    ]
)


@pytest.mark.parametrize(
    ("types", "dtype"),
    [
        (["double", "double"], "float64"),
        (["long", "double"], "float64"),
        (["long"], "int64"),
        (["integer", "long"], "int64"),
        (["boolean"], "bool"),
        (["boolean", "long"], "int64"),
        (["float"], "float32"),
        (["float", "integer"], "float64"),
        (["double", "string"], None),
        (["double", "datetime"], None),
    ],
)
def test_array_dtype_is_what_check_array_makes_of_the_frame(
    types: list[str], dtype: str | None
) -> None:
    schema = InputSchema([{"type": t, "name": f"c{i}"} for i, t in enumerate(types)])
    assert schema.array_dtype == (None if dtype is None else np.dtype(dtype))
    if dtype is not None:  # scikit-learn's own conversion of the enforced DataFrame
        from sklearn.utils import check_array

        frame, _ = schema.enforce(Records([{f"c{i}": 1 for i in range(len(types))}]))
        assert check_array(frame).dtype == np.dtype(dtype)
    assert InputSchema([{"type": "double"}]).array_dtype is None  # unnamed: positional


def test_mixed_numeric_columns_become_one_column_major_array() -> None:
    payloads: list[Payload] = [
        Rows(["rooms", "x", "vip", "income", "age"], [[3, "q", True, 1.5, 70], [5, 0, 0, 2, 57]]),
        Records(
            [
                {"age": 70, "income": 1.5, "vip": True, "rooms": 3},
                {"age": "57", "income": "2", "vip": False, "rooms": 5.0},
            ]
        ),
        Columns({"age": [70, 57], "income": [1.5, 2], "vip": [True, 0], "rooms": [3, 5]}),
    ]
    for payload in payloads:
        arr, rows = NUMERIC.enforce(payload, want_frame=False)
        assert isinstance(arr, np.ndarray) and (arr.dtype, rows) == (np.float64, 2)
        assert arr.tolist() == [[70.0, 1.5, 1.0, 3.0], [57.0, 2.0, 0.0, 5.0]]
        assert arr.flags["F_CONTIGUOUS"]  # the layout DataFrame.to_numpy() gives
        frame, _ = NUMERIC.enforce(payload)  # with pandas by default: the same values
        np.testing.assert_array_equal(frame.to_numpy(dtype=float), arr)
    err = _error(NUMERIC, Records([{"age": 1.7, "income": 1, "vip": 1, "rooms": 1}]))
    assert err.error_code == BAD_REQUEST and "'age' has integer type int64" in err.message
    err = _error(NUMERIC, Records([{"age": 1, "income": 1, "vip": 1}]), want_frame=False)
    assert err.error_code == INVALID_PARAMETER_VALUE and "['rooms']" in err.message


def test_all_double_fast_path_is_column_major_too() -> None:
    arr, _ = IRIS.enforce(Rows(["a", "b", "c"], [[1, 2, 3], [4, 5, 6]]), want_frame=False)
    assert arr.flags["F_CONTIGUOUS"] and arr.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_unsigned_matrix_is_what_check_array_makes_of_mlflows_frame() -> None:
    # numbers, booleans, numeric text and null become float64 (null as NaN), in request order
    table = table_of(Rows([3, 1, 0, 2], [[1, True, "0.5", None], [2.5, False, "-1", 4]]))
    arr = unsigned_matrix(table)
    assert arr.dtype == np.float64 and arr.flags.f_contiguous
    assert np.array_equal(arr, [[1.0, 1.0, 0.5, np.nan], [2.5, 0.0, -1.0, 4.0]], equal_nan=True)
    # text that is no number stays an object cell: the model refuses it as it refuses MLflow's
    mixed = unsigned_matrix(table_of(Records([{"a": 1, "b": "abc"}, {"a": 2}])))
    assert mixed.dtype == object and mixed.tolist() == [[1.0, "abc"], [2.0, None]]
    nested = unsigned_matrix(table_of(Rows(None, [[1, [1, 2]], [2, [3, 4]]])))
    assert nested.dtype == object and nested[:, 1].tolist() == [[1, 2], [3, 4]]
    assert unsigned_matrix(table_of(Rows(["a", "b"], []))).shape == (0, 2)
    csv = table_of(Columns({"a": np.array([1, 2]), "b": np.array([0.5, np.nan])}))
    assert unsigned_matrix(csv).tolist()[0] == [1.0, 0.5]


def test_probe_body_is_one_row_of_zeros_of_the_fitted_width() -> None:
    assert probe_body(3) == {"dataframe_split": {"columns": [0, 1, 2], "data": [[0.0] * 3]}}
    assert probe_body(2, ["x", "y"])["dataframe_split"]["columns"] == ["x", "y"]


@pytest.mark.parametrize(
    "rows",
    [
        [[1, 2.5], [3, 4]],
        [[None, 1], ["3.0", True]],
        [["nan", " 1 "], ["1e3", b"1"]],
        [[1, [2]], [3, 4]],
        [[1, "abc"], [3, 4]],
        [[10**400, 1], [3, 4]],
        [[1, {}], [3, 4]],
        [[1, 2], [3]],
        [[1, 2, 3], [4]],
        [],
    ],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_flat_fast_path_gives_what_asarray_gives(rows: list[Any], dtype: str) -> None:
    """Rows -> matrix through np.fromiter: the same values, or the same careful-path answer."""
    from mlflow_lambda.handler.schema import _try_matrix

    try:
        expected = np.asarray(rows, dtype=dtype)
        want = expected.reshape(0, 2) if expected.size == 0 else expected
        want = want if want.ndim == 2 and want.shape[1] == 2 else None
    except (ValueError, TypeError, OverflowError):
        want = None
    got = _try_matrix(rows, np.dtype(dtype), 2)
    if want is None:
        assert got is None
    else:
        assert got is not None and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
