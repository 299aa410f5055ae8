"""Requests for the parity test: every format, every error case of docs/protocol.md.

Each :class:`Case` targets one of the conftest models (``forest``, ``regressor``,
``pipeline``, ``array_model``). A case without ``differs`` must get the same status, error
code and (numerically) the same predictions from MLflow's scoring server and ours. ``seed`` is
the user story's model (no signature, fitted on arrays; its cases run with pandas and, in a
subprocess, without it). A case
with ``differs`` is a deliberate difference: it names the docs/protocol.md FIX item (or the
extra difference) and gives both servers' expected ``(status, error_code)`` so the test
notices when either side changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON = "application/json"
CSV = "text/csv"
IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
MIXED = ["age", "income", "city"]
Outcome = tuple[int, str | None]  # (status, error_code); error_code None for a 200


@dataclass(frozen=True)
class Case:
    """One request and, for a deliberate difference, both servers' expected outcomes."""

    id: str
    model: str
    body: Any  # a JSON-able object, or str/bytes sent as is
    content_type: str | None = JSON
    differs: str | None = None  # the FIX / difference this case documents
    ours: Outcome | None = None
    mlflow: Outcome | None = None

    def raw_body(self) -> bytes:
        """The request body bytes."""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")

    def headers(self) -> dict[str, str]:
        """Request headers (no Content-Type at all when ``content_type`` is None)."""
        return {} if self.content_type is None else {"Content-Type": self.content_type}


def _split(columns: list[str] | None, data: list[Any], **extra: Any) -> dict[str, Any]:
    split: dict[str, Any] = {"data": data, **extra}
    if columns is not None:
        split["columns"] = columns
    return {"dataframe_split": split}


def _iris_records(*rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(zip(IRIS, row, strict=True)) for row in rows]


R1, R2 = [5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]
# the README example's two-row request, as the tests that only need one valid call send it
IRIS_BODY = {"dataframe_split": {"columns": IRIS, "data": [R1, R2]}}
M1, M2 = [70, 29881.7, "paris"], [57, 28977.2, "nice"]
CSV_IRIS = ",".join(IRIS) + "\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
BAD = (400, "BAD_REQUEST")
INVALID = (400, "INVALID_PARAMETER_VALUE")
OK = (200, None)

FOREST = [
    Case("split", "forest", _split(IRIS, [R1, R2])),
    Case("split-index", "forest", _split(IRIS, [R1, R2], index=[10, 11])),
    Case("split-no-columns", "forest", _split(None, [R1, R2])),
    Case("split-reordered-extra", "forest", _split(["x", *IRIS[::-1]], [["q", *R1[::-1]]])),
    Case("split-ints-null-text", "forest", _split(IRIS, [[5, 3, 1, None], [6.7, "3.0", 5.2, 2]])),
    Case("split-bad-double", "forest", _split(IRIS, [[5.1, 3.5, 1.4, "abc"]])),
    Case("split-missing-column", "forest", _split(IRIS[:3], [R1[:3]])),
    Case("split-short-rows", "forest", _split(IRIS, [R1[:3]])),
    Case("split-not-object", "forest", {"dataframe_split": [R1]}),
    Case("split-extra-key", "forest", {"dataframe_split": {"columns": IRIS, "data": [R1], "x": 1}}),
    Case("split-no-data", "forest", {"dataframe_split": {"columns": IRIS}}),
    Case("split-empty-data", "forest", _split(IRIS, [])),
    Case("split-infinity", "forest", _split(IRIS, [[1e400, 3.5, 1.4, 0.2]])),
    Case("records", "forest", {"dataframe_records": _iris_records(R1, R2)}),
    Case("records-extra", "forest", {"dataframe_records": [{**_iris_records(R1)[0], "x": 1}]}),
    Case("records-empty", "forest", {"dataframe_records": []}),
    Case("records-not-list", "forest", {"dataframe_records": {"a": 1}}),
    Case("instances-objects", "forest", {"instances": _iris_records(R1, R2)}),
    Case("instances-rows", "forest", {"instances": [R1]}),
    Case(
        "instances-uneven",
        "forest",
        {"instances": [dict(zip(IRIS[:3], R1, strict=False)), _iris_records(R2)[0]]},
    ),
    Case(
        "inputs-columns",
        "forest",
        {"inputs": {n: [a, b] for n, a, b in zip(IRIS, R1, R2, strict=True)}},
    ),
    Case("inputs-scalars", "forest", {"inputs": dict(zip(IRIS, R1, strict=True))}),
    Case("inputs-rows", "forest", {"inputs": [R1]}),
    Case("inputs-uneven", "forest", {"inputs": {**{n: [1.0] for n in IRIS}, IRIS[0]: [1.0, 2]}}),
    Case("params-without-schema", "forest", {**_split(IRIS, [R1]), "params": {"a": 1}}),
    Case("params-not-object-without-schema", "forest", {**_split(IRIS, [R1]), "params": 3}),
    Case("extra-top-level-key", "forest", {**_split(IRIS, [R1]), "foo": 1}),
    Case("json-malformed", "forest", "{bad"),
    Case("json-empty", "forest", ""),
    Case("json-list", "forest", [1, 2]),
    Case("json-scalar", "forest", "3"),
    Case("no-format-key", "forest", {"foo": []}),
    Case("two-format-keys", "forest", {"dataframe_records": [], "inputs": []}),
    Case("charset-utf8", "forest", _split(IRIS, [R1]), "application/json; charset=UTF-8"),
    Case("csv", "forest", CSV_IRIS, CSV),
    Case("csv-charset", "forest", CSV_IRIS, "text/csv; charset=utf-8"),
    Case("csv-missing-value", "forest", ",".join(IRIS) + "\n5.1,3.5,1.4,\n", CSV),
    Case("csv-bad-double", "forest", ",".join(IRIS) + "\n5.1,3.5,1.4,abc\n", CSV),
    Case("csv-missing-column", "forest", ",".join(IRIS[:3]) + "\n5.1,3.5,1.4\n", CSV),
    Case("csv-empty", "forest", "", CSV),
    # --- deliberate differences -------------------------------------------------------------
    Case(
        "no-content-type",
        "forest",
        _split(IRIS, [R1]),
        None,
        "FIX missing Content-Type",
        OK,
        (500, None),
    ),
    Case(
        "application-csv",
        "forest",
        CSV_IRIS,
        "application/csv",
        "FIX application/csv",
        OK,
        (415, None),
    ),
    Case(
        "text-plain",
        "forest",
        _split(IRIS, [R1]),
        "text/plain",
        "FIX 415 as JSON",
        (415, "BAD_REQUEST"),
        (415, None),
    ),
    Case(
        "charset-latin1",
        "forest",
        _split(IRIS, [R1]),
        "application/json; charset=latin-1",
        "FIX 415 as JSON",
        (415, "BAD_REQUEST"),
        (415, None),
    ),
    Case(
        "format-param",
        "forest",
        _split(IRIS, [R1]),
        "application/json; format=pandas-split",
        "FIX 415 as JSON",
        (415, "BAD_REQUEST"),
        (415, None),
    ),
    Case(
        "parquet",
        "forest",
        b"PAR1",
        "application/vnd.apache.parquet",
        "parquet is optional: not served",
        (415, "BAD_REQUEST"),
        BAD,
    ),
    Case(
        "model-error-no-stack-trace",
        "forest",
        _split(IRIS, []),
        JSON,
        "FIX no stack_trace; the message ends with the exception's type and first line",
        BAD,
        BAD,
    ),
    Case(
        "mime-case",
        "forest",
        _split(IRIS, [R1]),
        "Application/JSON",
        "extra: media types compare case-insensitively (RFC 9110 8.3.1)",
        OK,
        (415, None),
    ),
    Case(
        "empty-parameter",
        "forest",
        _split(IRIS, [R1]),
        "application/json;",
        "extra: an empty Content-Type parameter is ignored",
        OK,
        (415, None),
    ),
    Case(
        "index-length",
        "forest",
        _split(IRIS, [R1], index=[1, 2]),
        JSON,
        "extra: pandas repeats the row to fill the index; we refuse",
        BAD,
        OK,
    ),
]

REGRESSOR = [
    Case("split", "regressor", _split(MIXED, [M1, M2])),
    Case("records", "regressor", {"dataframe_records": [dict(zip(MIXED, M1, strict=True))]}),
    Case(
        "inputs-columns",
        "regressor",
        {"inputs": {"age": [70, 57], "income": [1.5, 2.5], "city": ["paris", "nice"]}},
    ),
    Case("instances", "regressor", {"instances": [dict(zip(MIXED, M2, strict=True))]}),
    Case("long-as-float-whole", "regressor", _split(MIXED, [[70.0, 29881.7, "paris"]])),
    Case("long-as-text", "regressor", _split(MIXED, [["70", 29881.7, "paris"]])),
    Case("long-null", "regressor", _split(MIXED, [[None, 29881.7, "paris"]])),
    Case("string-null", "regressor", _split(MIXED, [[70, 29881.7, None]])),
    Case("unknown-category", "regressor", _split(MIXED, [[70, 29881.7, "tokyo"]])),
    Case(
        "params-valid", "regressor", {**_split(MIXED, [M1]), "params": {"scale": 2, "label": "x"}}
    ),
    Case("params-unknown", "regressor", {**_split(MIXED, [M1]), "params": {"zzz": 1}}),
    Case("params-null", "regressor", {**_split(MIXED, [M1]), "params": {"label": None}}),
    Case("params-missing", "regressor", _split(MIXED, [M1])),
    Case("params-wrong-type", "regressor", {**_split(MIXED, [M1]), "params": {"scale": "x"}}),
    Case("params-bool-for-double", "regressor", {**_split(MIXED, [M1]), "params": {"scale": True}}),
    Case(
        "params-list-for-scalar", "regressor", {**_split(MIXED, [M1]), "params": {"scale": [1.0]}}
    ),
    Case("params-not-object", "regressor", {**_split(MIXED, [M1]), "params": [1]}),
    Case("csv", "regressor", "age,income,city\n70,29881.7,paris\n57,28977.2,nice\n", CSV),
    Case("csv-long-whole-float", "regressor", "age,income,city\n70.0,29881.7,paris\n", CSV),
    Case("csv-long-fraction", "regressor", "age,income,city\n1.7,29881.7,paris\n", CSV),
    Case("csv-long-missing", "regressor", "age,income,city\n,29881.7,paris\n", CSV),
    Case(
        "split-long-fraction",
        "regressor",
        _split(MIXED, [[1.7, 29881.7, "paris"]]),
        JSON,
        "FIX 1.7 into long",
        BAD,
        OK,
    ),
    Case(
        "inputs-long-fraction",
        "regressor",
        {"inputs": {"age": [1.7], "income": [1.0], "city": ["paris"]}},
        JSON,
        "FIX 1.7 into long",
        BAD,
        OK,
    ),
    Case(
        "long-overflow",
        "regressor",
        _split(MIXED, [[2**63, 29881.7, "paris"]]),
        JSON,
        "extra: MLflow wraps 2**63 to a negative int64",
        BAD,
        OK,
    ),
]

PIPELINE = [
    Case("split-proba", "pipeline", _split(MIXED, [M1, M2])),
    Case(
        "records-unknown-city",
        "pipeline",
        {"dataframe_records": [{"age": 70, "income": 1.0, "city": "tokyo"}]},
    ),
    Case("instances", "pipeline", {"instances": [dict(zip(MIXED, M1, strict=True))]}),
    Case("inputs-scalars", "pipeline", {"inputs": dict(zip(MIXED, M1, strict=True))}),
    Case(
        "inputs-broadcast",
        "pipeline",
        {"inputs": {"age": [70, 60], "income": 29881.7, "city": "paris"}},
    ),
    Case("csv", "pipeline", "age,income,city\n70,29881.7,paris\n", CSV),
]

A1, A2 = [0.3, 0.8, 0.3], [1, 2, 3]
ARRAY = [
    Case("inputs-tensor", "array_model", {"inputs": [A1, A2]}),
    Case("instances-tensor", "array_model", {"instances": [A1, A2]}),
    Case("split-no-columns", "array_model", _split(None, [A1, A2])),
    Case("split-columns", "array_model", _split(["x", "y", "z"], [A1, A2])),
    Case("records", "array_model", {"dataframe_records": [dict(zip("abc", A1, strict=True))]}),
    Case("inputs-text-number", "array_model", {"inputs": [["1.5", 0.8, 0.3]]}),
    Case("inputs-wrong-width", "array_model", {"inputs": [[0.3, 0.8]]}),
    Case("inputs-1d", "array_model", {"inputs": A1}),
    Case("inputs-scalar", "array_model", {"inputs": 3}),
    Case("inputs-text", "array_model", {"inputs": [["a", 0.8, 0.3]]}),
    Case("inputs-null", "array_model", {"inputs": [[None, 0.8, 0.3]]}),
    Case("inputs-ragged", "array_model", {"inputs": [A2, [1, 2]]}),
    Case("inputs-object", "array_model", {"inputs": {"a": A2}}),
    Case("instances-objects", "array_model", {"instances": [dict(zip("abc", A2, strict=True))]}),
    Case("split-wrong-width", "array_model", _split(None, [[0.3, 0.8]])),
    Case("split-one-column", "array_model", _split(None, [[0.3]])),
    Case("split-empty", "array_model", _split(None, [])),
    Case("split-text", "array_model", _split(None, [["a", 0.8, 0.3]])),
    Case(
        "infinite-prediction",
        "array_model",
        {"inputs": [[1e308, -1e308, 0]]},
        JSON,
        "FIX NaN/Inf as null",
        OK,
        OK,
    ),
    Case(
        "csv-tensor",
        "array_model",
        "a,b,c\n0.3,0.8,0.3\n",
        CSV,
        "extra: MLflow cannot read CSV for tensor signatures",
        OK,
        BAD,
    ),
]

# The user story's request (USER-STORY.md step 3) and every format around it, for a model
# without a signature fitted on a 4-column array: MLflow hands it the DataFrame as sent.
S1, S2 = [0.1, -0.2, 0.3, -0.4], [0.5, 0.6, -0.7, 0.8]
SEED_NAMES = ["a", "b", "c", "d"]
SEED_CSV = "0,1,2,3\n0.1,-0.2,0.3,-0.4\n0.5,0.6,-0.7,0.8\n"


def _seed_records(names: list[Any], *rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(zip(names, row, strict=True)) for row in rows]


SEED = [
    Case("story", "seed", _split([0, 1, 2, 3], [S1, S2])),  # type: ignore[list-item]
    Case("split-text-names", "seed", _split(SEED_NAMES, [S1, S2])),
    Case("split-digit-names", "seed", _split(["0", "1", "2", "3"], [S1, S2])),
    Case("split-no-columns", "seed", _split(None, [S1, S2])),
    Case("split-index", "seed", _split(SEED_NAMES, [S1], index=["x"])),
    Case("split-ints", "seed", _split(None, [[1, 0, -1, 2]])),
    Case("split-null", "seed", _split(None, [[0.1, None, 0.3, -0.4]])),
    Case("split-text-number", "seed", _split(None, [[0.1, "-0.2", 0.3, -0.4], S2])),
    Case("split-bool", "seed", _split(None, [[True, -0.2, False, -0.4]])),
    Case("split-text", "seed", _split(None, [[0.1, "abc", 0.3, -0.4]])),
    Case("split-nested", "seed", _split(None, [[0.1, [1, 2], 0.3, -0.4]])),
    Case("split-infinity", "seed", _split(None, [[1e400, -0.2, 0.3, -0.4]])),
    Case("split-three-columns", "seed", _split(None, [S1[:3]])),
    Case("split-five-columns", "seed", _split(None, [[*S1, 1.0]])),
    Case("split-empty", "seed", _split([0, 1, 2, 3], [])),  # type: ignore[list-item]
    Case("split-one-value-rows", "seed", _split(None, [0.1, 0.2])),
    Case("records", "seed", {"dataframe_records": _seed_records(SEED_NAMES, S1, S2)}),
    Case("records-digit-keys", "seed", {"dataframe_records": _seed_records(list("0123"), S1)}),
    Case(
        "records-missing-key",
        "seed",
        {"dataframe_records": [{"a": 1.0, "b": 2.0, "c": 3.0}, _seed_records(SEED_NAMES, S2)[0]]},
    ),
    Case("records-rows", "seed", {"dataframe_records": [S1, S2]}),
    Case("instances-rows", "seed", {"instances": [S1, S2]}),
    Case("instances-objects", "seed", {"instances": _seed_records(SEED_NAMES, S1, S2)}),
    Case("inputs-rows", "seed", {"inputs": [S1, S2]}),
    Case(
        "inputs-records",
        "seed",
        {"inputs": _seed_records(SEED_NAMES, S1, S2)},
        JSON,
        "extra: without a signature, `inputs` row objects are read as a table (MLflow hands the "
        "model an array of dicts, which it cannot read)",
        OK,
        BAD,
    ),
    Case(
        "inputs-columns",
        "seed",
        {"inputs": {n: [a, b] for n, a, b in zip(SEED_NAMES, S1, S2, strict=True)}},
    ),
    Case("inputs-one-row", "seed", {"inputs": S1}),
    Case("inputs-null", "seed", {"inputs": [[0.1, None, 0.3, -0.4]]}),
    Case("inputs-text", "seed", {"inputs": [[0.1, "abc", 0.3, -0.4]]}),
    Case("params-without-schema", "seed", {**_split(None, [S1]), "params": {"a": 1}}),
    Case("csv", "seed", SEED_CSV, CSV),
    Case("csv-text-names", "seed", "a,b,c,d\n0.1,-0.2,0.3,-0.4\n", CSV),
    Case("csv-missing-value", "seed", "a,b,c,d\n0.1,,0.3,-0.4\n", CSV),
    Case("csv-ints", "seed", "a,b,c,d\n1,0,-1,2\n", CSV),
    Case("csv-bool", "seed", "a,b,c,d\nTrue,0.5,false,2\n", CSV),
    Case("csv-text", "seed", "a,b,c,d\n0.1,abc,0.3,-0.4\n", CSV),
    Case("csv-three-columns", "seed", "a,b,c\n0.1,-0.2,0.3\n", CSV),
    Case("csv-header-only", "seed", "a,b,c,d\n", CSV),
    Case("csv-empty", "seed", "", CSV),
]

CASES: list[Case] = FOREST + REGRESSOR + PIPELINE + ARRAY + SEED
