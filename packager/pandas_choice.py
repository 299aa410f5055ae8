"""Whether a bundle carries pandas: decided from the model's signature and input example.

pandas is 28 MB of a bundle and ~0.15 s of its cold start, and most models never need a
DataFrame to be scored exactly as MLflow scores them (``handler.schema``). The plan asks
:func:`model_needs_pandas`; the build adds pandas back when its check sees the model needs it
(:func:`fitted_on_frame_reason`, ``FORCED_PANDAS_REASON``) and logs :func:`pandas_note`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlflow_lambda.handler.payload import DF_RECORDS, DF_SPLIT, INPUTS, INSTANCES, PARAMS_KEY

if TYPE_CHECKING:
    from mlflow_lambda.packager.plan import BundlePlan

# MLflow column types the handler turns into one 2-D numpy array without pandas
# (handler.casting.NUMERIC_DTYPES); string, binary, datetime, array, object, map need pandas.
NUMERIC_COLUMN_TYPES = frozenset({"long", "integer", "double", "float", "boolean"})
FORCED_PANDAS_REASON = "asked for (the bundle without pandas failed its import-and-predict check)"
WITH_PANDAS_REASON = "asked for with --with-pandas"
NO_SIGNATURE_REASON = (
    "the model has no signature and no input example; the build's check confirms it was "
    "fitted on arrays (no feature_names_in_)"
)
# Measured on the README example's python3.12 bundle (docs/findings.md): pruned pandas is
# 28 MB, and scikit-learn imports it whenever it is installed (~0.15 s of cold start).
_PANDAS_COST = "28 MB and ~0.15 s of cold start"
_AVOID_PANDAS = (
    "log the model with a signature of numeric columns or tensors, or fit it on arrays and "
    "log it without a signature, to be served without it"
)


def model_needs_pandas(config: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the handler will need pandas for this model, and why.

    Decided by the signature, not by the requirements: MLflow's inferred requirements list
    pandas for every pyfunc model, one fitted on plain arrays included (MLflow's own pyfunc
    layer imports pandas while the requirement capture runs), so they say nothing here. A
    tensor signature means the handler only builds numpy arrays (it imports pandas lazily,
    for DataFrame inputs). A signature of named numeric columns is scored from a 2-D array
    in signature order when pandas is missing (``handler.app.Scorer``): scikit-learn turns
    MLflow's DataFrame into that same array. Any other column type needs a DataFrame.
    Without a signature the input example is the only evidence of how the model was
    fitted; with neither (the user story's model), the plan leaves pandas out and the
    build's import check, which loads the model, adds it back when the estimator was fitted
    on named columns (``feature_names_in_``; :func:`fitted_on_frame_reason`).

    A model that needs a DataFrame although its columns are numeric (a ColumnTransformer
    selecting columns by name) fails the build's import-and-predict check without pandas;
    the build then plans again with ``plan_bundle(..., force_pandas=True)``.
    """
    inputs = (config.get("signature") or {}).get("inputs")
    if inputs:
        specs = [spec if isinstance(spec, dict) else {} for spec in inputs]
        if all(spec.get("type") == "tensor" for spec in specs):
            return False, "the model's signature takes tensors"
        if config.get("flavor") == "onnx":
            return True, "an ONNX model answers a DataFrame input with a DataFrame"
        for spec in specs:
            if spec.get("name") is None:
                return True, "the model's signature has unnamed columns"
            if spec.get("type") not in NUMERIC_COLUMN_TYPES:
                return True, (
                    f"the model's signature has a {spec.get('type')!r} column {spec['name']!r}"
                )
        return False, "the model's signature has only numeric columns"
    example = config.get("input_example")
    if isinstance(example, dict) and set(example) <= {INPUTS, INSTANCES, PARAMS_KEY}:
        data = example.get(INPUTS, example.get(INSTANCES))
        if isinstance(data, list) and all(isinstance(row, list) for row in data):
            return False, "the model has no signature and its input example is a plain array"
    if isinstance(example, dict) and (DF_SPLIT in example or DF_RECORDS in example):
        return True, "the model has no signature and its input example is a DataFrame"
    if not example:
        return False, NO_SIGNATURE_REASON
    return True, "the model has no tensor signature"


def fitted_on_frame_reason(feature_names: list[str]) -> str:
    """Why a model without a signature keeps pandas once the check saw its fitted names."""
    return (
        f"the model has no signature and was fitted on a DataFrame (columns "
        f"{feature_names!r:.120}), so MLflow checks each request's column names against them"
    )


def pandas_note(plan: BundlePlan) -> str | None:
    """One line for the build log when pandas is bundled: why, and how to avoid it."""
    if not plan.needs_pandas:
        return None
    if plan.pandas_reason == WITH_PANDAS_REASON:
        avoid = "package without --with-pandas to leave it out"
    elif plan.pandas_reason == FORCED_PANDAS_REASON:
        avoid = "the model needs a DataFrame (it selects columns by name, say)"
    else:
        avoid = _AVOID_PANDAS
    return f"bundling pandas ({_PANDAS_COST}): {plan.pandas_reason}; {avoid}"
