"""Requests for the native flavors' parity test (``tests/integration/test_native_flavors.py``).

Models with iris's four double columns reuse every FOREST case of ``tests/parity_corpus.py``
that MLflow and we answer alike; the others get the formats and error cases that apply to
their signature. Every case here must get the same status, error code and predictions from
MLflow's scoring server and from the bundle run by the local Lambda runtime.
"""

from __future__ import annotations

from dataclasses import replace

from tests.parity_corpus import CSV, FOREST, REGRESSOR, Case, _split

T1, T2 = [0.3, -0.8, 1.3, 0.1], [1, 2, 3, 4]
NUMERIC = ["age", "income"]


def _iris_cases(model: str) -> list[Case]:
    return [replace(c, model=model) for c in FOREST if c.differs is None]


def _tensor_cases(model: str) -> list[Case]:
    """A model with one unnamed (-1, 4) float tensor input."""
    cases = [
        Case("inputs-tensor", model, {"inputs": [T1, T2]}),
        Case("instances-tensor", model, {"instances": [T1, T2]}),
        Case("split-no-columns", model, _split(None, [T1, T2])),
        Case("split-columns", model, _split(["a", "b", "c", "d"], [T1])),
        Case("records", model, {"dataframe_records": [dict(zip("abcd", T1, strict=True))]}),
        Case("inputs-text-number", model, {"inputs": [["1.5", 0.8, 0.3, 0.2]]}),
        Case("inputs-wrong-width", model, {"inputs": [[0.3, 0.8]]}),
        Case("inputs-1d", model, {"inputs": T1}),
        Case("inputs-scalar", model, {"inputs": 3}),
        Case("inputs-text", model, {"inputs": [["a", 0.8, 0.3, 0.2]]}),
        Case("inputs-ragged", model, {"inputs": [T2, [1, 2]]}),
        Case("inputs-object", model, {"inputs": {"a": T2}}),
        Case("split-empty", model, _split(None, [])),
        Case("json-malformed", model, "{bad"),
        Case("no-format-key", model, {"foo": []}),
        Case("params-without-schema", model, {"inputs": [T1], "params": {"a": 1}}),
    ]
    return cases


XGB_BOOSTER_PARAMS = [
    Case(
        "params-output-margin",
        "xgb_booster",
        {"inputs": [T1, T2], "params": {"output_margin": True}},
    ),
    Case("params-default", "xgb_booster", {"inputs": [T1], "params": {"output_margin": False}}),
    Case("params-unknown", "xgb_booster", {"inputs": [T1], "params": {"zzz": 1}}),
    Case("params-wrong-type", "xgb_booster", {"inputs": [T1], "params": {"output_margin": "x"}}),
    Case("params-not-object", "xgb_booster", {"inputs": [T1], "params": [1]}),
]

LGB_BOOSTER = [
    Case("split", "lgb_booster", _split(NUMERIC, [[70, 29881.7], [57, 28977.2]])),
    Case("split-reordered-extra", "lgb_booster", _split(["x", "income", "age"], [[1, 2.5, 30]])),
    Case("records", "lgb_booster", {"dataframe_records": [{"age": 70.0, "income": 1.5}]}),
    Case("instances", "lgb_booster", {"instances": [{"age": 70.0, "income": 1.5}]}),
    Case("inputs-columns", "lgb_booster", {"inputs": {"age": [70, 60], "income": [1.0, 2.0]}}),
    Case("split-null", "lgb_booster", _split(NUMERIC, [[None, 29881.7]])),
    Case("split-bad-double", "lgb_booster", _split(NUMERIC, [[70, "abc"]])),
    Case("split-missing-column", "lgb_booster", _split(["age"], [[70]])),
    Case("split-empty", "lgb_booster", _split(NUMERIC, [])),
    Case("csv", "lgb_booster", "age,income\n70,29881.7\n57,28977.2\n", CSV),
    Case("csv-missing-value", "lgb_booster", "age,income\n70,\n", CSV),
    Case("params-without-schema", "lgb_booster", {**_split(NUMERIC, [[1, 2]]), "params": {"a": 1}}),
]

CATBOOST = [replace(c, model="catboost") for c in REGRESSOR if c.differs is None]

NATIVE_CASES: list[Case] = [
    *_iris_cases("xgb_classifier"),
    *_tensor_cases("xgb_booster"),
    *XGB_BOOSTER_PARAMS,
    *_iris_cases("lgbm_classifier"),
    *LGB_BOOSTER,
    *_tensor_cases("onnx"),
    *CATBOOST,
]
