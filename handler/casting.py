"""Casting one column's values to its signature type, as MLflow's schema enforcement does.

``double``/``float`` and ``long``/``integer`` become numpy arrays of that dtype, ``boolean``
uses pandas' truthiness, ``binary`` is base64-decoded and ``datetime`` goes through pandas
(imported only then). FIX (docs/protocol.md): a non-integral or missing number into an integer
column is refused with 400 on every path, where MLflow's JSON path truncates 1.7 to 1.
"""

from __future__ import annotations

import importlib
from typing import Any, NoReturn

import numpy as np

from .errors import ScoringError

FLOAT_DTYPES: dict[str, np.dtype[Any]] = {
    "double": np.dtype("float64"),
    "float": np.dtype("float32"),
}
_INT_DTYPES: dict[str, np.dtype[Any]] = {"long": np.dtype("int64"), "integer": np.dtype("int32")}
# the dtype each numeric column has after enforcement (convert_column)
NUMERIC_DTYPES: dict[str, np.dtype[Any]] = {
    **FLOAT_DTYPES,
    **_INT_DTYPES,
    "boolean": np.dtype("bool"),
}


def convert_column(values: Any, type_name: str, name: Any) -> Any:
    """Cast one column's values to its signature type; ``BAD_REQUEST`` naming the column."""
    try:
        if type_name in FLOAT_DTYPES:
            arr = np.asarray(values, dtype=FLOAT_DTYPES[type_name])
        elif type_name in _INT_DTYPES:
            arr = _to_int(values, _INT_DTYPES[type_name], name)
        elif type_name == "boolean":
            arr = np.asarray(values, dtype=object).astype(bool)  # pandas astype(bool) truthiness
        elif type_name == "binary":
            import base64

            return [base64.decodebytes(bytes(v, "utf8")) for v in values]
        elif type_name == "datetime":
            pd = importlib.import_module("pandas")
            return pd.to_datetime(pd.Series(values)).astype("datetime64[ns]")
        else:  # string, array, object, map, any: passed through as MLflow does
            return values
    except ScoringError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise ScoringError.bad_request(
            "Invalid input. Data is not compatible with model signature. Failed to convert "
            f"column {name!r} to type {type_name!r}. Error: {exc}"
        ) from None
    if arr.ndim != 1:
        raise ScoringError.bad_request(
            f"Invalid input. Column {name!r} of type {type_name!r} must hold single values, "
            f"got nested lists (shape {arr.shape})."
        )
    return arr


def _to_int(values: Any, dtype: np.dtype[Any], name: Any) -> np.ndarray[Any, Any]:
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            _bad_int(name, dtype, arr[~finite][0])
        fractional = arr != np.trunc(arr)
        if fractional.any():
            _bad_int(name, dtype, arr[fractional][0])
    elif kind == "O":
        arr = np.array([_int_cell(v, name, dtype) for v in arr.tolist()], dtype=object)
    elif kind not in "iubU":
        raise TypeError(f"values of kind {arr.dtype} are not integers")
    info = np.iinfo(dtype)
    # info.max + 1 is a power of two, exact as a float: 2.0**63 must not pass for int64
    if kind in "iuf" and arr.size and (arr.min() < info.min or arr.max() >= info.max + 1):
        raise OverflowError(f"values outside the {dtype} range [{info.min}, {info.max}]")
    return arr.astype(dtype)


def _int_cell(value: Any, name: Any, dtype: np.dtype[Any]) -> int:
    if isinstance(value, str):
        return int(value)
    if value is None or isinstance(value, (list, dict)):
        _bad_int(name, dtype, value)
    number = float(value)
    if not number.is_integer():
        _bad_int(name, dtype, value)
    return int(value)


def _bad_int(name: Any, dtype: np.dtype[Any], value: Any) -> NoReturn:
    value = value.item() if isinstance(value, np.generic) else value
    what = "a missing value" if value is None or value != value else f"the value {value!r}"
    raise ScoringError.bad_request(
        f"Invalid input. Column {name!r} has integer type {dtype} but received {what}; "
        "send whole numbers (1 or 1.0, not 1.7 or null), or log the model with a double column."
    )
