"""Requests for the generic path's parity test: the custom ``PythonModel`` and statsmodels OLS.

Same :class:`~tests.parity_corpus.Case` as the native corpus. On the generic path MLflow
enforces the signature itself, so the cases without ``differs`` cover every request format,
params, casts and MLflow's own refusals; the ``differs`` cases are the README's differences
that the protocol layer (ours on both paths) keeps.
"""

from __future__ import annotations

from typing import Any

from tests.parity_corpus import BAD, CSV, JSON, MIXED, OK, Case, _split

M1, M2 = [70, 29881.7, "paris"], [57, 28977.2, "nice"]
OLS = ["const", "x1", "x2"]
O1, O2 = [1.0, 0.5, -1.2], [1.0, -0.3, 0.8]


def _records(columns: list[str], *rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


CUSTOM = [
    Case("split", "custom", _split(MIXED, [M1, M2])),
    Case("split-index", "custom", _split(MIXED, [M1, M2], index=[5, 6])),
    Case("split-no-columns", "custom", _split(None, [M1])),
    Case("split-reordered-extra", "custom", _split(["x", *MIXED[::-1]], [["q", *M1[::-1]]])),
    Case("split-missing-column", "custom", _split(MIXED[:2], [M1[:2]])),
    Case("split-bad-double", "custom", _split(MIXED, [[70, "abc", "paris"]])),
    Case("split-long-as-float", "custom", _split(MIXED, [[70.0, 29881.7, "paris"]])),
    Case("split-long-as-text", "custom", _split(MIXED, [["70", 29881.7, "paris"]])),
    Case("split-long-null", "custom", _split(MIXED, [[None, 29881.7, "paris"]])),
    Case("split-string-null", "custom", _split(MIXED, [[70, 29881.7, None]])),
    Case("split-unknown-city", "custom", _split(MIXED, [[70, 29881.7, "tokyo"]])),
    Case("split-empty", "custom", _split(MIXED, [])),
    Case("records", "custom", {"dataframe_records": _records(MIXED, M1, M2)}),
    Case("records-extra", "custom", {"dataframe_records": [{**_records(MIXED, M1)[0], "x": 1}]}),
    Case("records-not-list", "custom", {"dataframe_records": {"age": 1}}),
    Case("instances-objects", "custom", {"instances": _records(MIXED, M1, M2)}),
    Case(
        "inputs-columns",
        "custom",
        {"inputs": dict(zip(MIXED, ([70, 57], [1.5, 2.5], ["paris", "lyon"]), strict=True))},
    ),
    Case("inputs-records", "custom", {"inputs": _records(MIXED, M1, M2)}),
    Case("inputs-scalars", "custom", {"inputs": _records(MIXED, M1)[0]}),
    Case("params", "custom", {**_split(MIXED, [M1]), "params": {"scale": 2}}),
    Case("params-unknown", "custom", {**_split(MIXED, [M1]), "params": {"zzz": 1}}),
    Case("params-wrong-type", "custom", {**_split(MIXED, [M1]), "params": {"scale": "x"}}),
    Case("params-not-object", "custom", {**_split(MIXED, [M1]), "params": [1]}),
    Case("model-error", "custom", _split(MIXED, [[-1, 29881.7, "paris"]])),
    Case("json-malformed", "custom", "{bad"),
    Case("json-list", "custom", [1, 2]),
    Case("no-format-key", "custom", {"foo": []}),
    Case("two-format-keys", "custom", {"dataframe_records": [], "inputs": []}),
    Case("charset-utf8", "custom", _split(MIXED, [M1]), "application/json; charset=UTF-8"),
    Case("csv", "custom", "age,income,city\n70,29881.7,paris\n57,28977.2,nice\n", CSV),
    Case("csv-long-fraction", "custom", "age,income,city\n1.7,29881.7,paris\n", CSV),
    Case("csv-missing-column", "custom", "age,income\n70,29881.7\n", CSV),
    Case("csv-empty", "custom", "", CSV),
    # --- the README's differences, kept on the generic path ---------------------------------
    Case(
        "no-content-type",
        "custom",
        _split(MIXED, [M1]),
        None,
        "FIX missing Content-Type",
        OK,
        (500, None),
    ),
    Case(
        "application-csv",
        "custom",
        "age,income,city\n70,29881.7,paris\n",
        "application/csv",
        "FIX application/csv",
        OK,
        (415, None),
    ),
    Case(
        "text-plain",
        "custom",
        _split(MIXED, [M1]),
        "text/plain",
        "FIX 415 as JSON",
        (415, "BAD_REQUEST"),
        (415, None),
    ),
    Case(
        "short-row",
        "custom",
        _split(MIXED, [M1, M2[:2]]),
        JSON,
        "extra: rows of uneven length are refused (MLflow pads with NaN)",
        BAD,
        OK,
    ),
    Case(
        "index-length",
        "custom",
        _split(MIXED, [M1], index=[1, 2]),
        JSON,
        "extra: pandas repeats the row to fill the index; we refuse",
        BAD,
        OK,
    ),
]

OLS_CASES = [
    Case("split", "ols", _split(OLS, [O1, O2])),
    Case("split-ints", "ols", _split(OLS, [[1, 2, 3]])),
    Case("split-text-number", "ols", _split(OLS, [[1, "0.5", -1.2]])),
    Case("split-bad-double", "ols", _split(OLS, [[1, "abc", -1.2]])),
    Case("split-missing-column", "ols", _split(OLS[:2], [O1[:2]])),
    Case("split-reordered-extra", "ols", _split(["x2", "q", "x1", "const"], [[-1.2, 7, 0.5, 1.0]])),
    Case("records", "ols", {"dataframe_records": _records(OLS, O1, O2)}),
    Case("instances-objects", "ols", {"instances": _records(OLS, O1)}),
    Case("instances-rows", "ols", {"instances": [O1, O2]}),
    Case(
        "inputs-columns",
        "ols",
        {"inputs": dict(zip(OLS, ([1.0, 1.0], [0.5, 2], [-1.2, 0]), strict=True))},
    ),
    Case("params-without-schema", "ols", {**_split(OLS, [O1]), "params": {"a": 1}}),
    Case("csv", "ols", "const,x1,x2\n1,0.5,-1.2\n1,-0.3,0.8\n", CSV),
    Case("csv-bad-double", "ols", "const,x1,x2\n1,abc,-1.2\n", CSV),
    Case("null-is-null", "ols", _split(OLS, [[1.0, None, 0.8]]), JSON, "FIX NaN as null", OK, OK),
]

GENERIC_CASES: list[Case] = CUSTOM + OLS_CASES
