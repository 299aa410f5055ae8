"""plan_bundle: runtime choice, kept/dropped requirements, pandas decision, conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from mlflow_lambda.packager.errors import DependencyError
from mlflow_lambda.packager.pandas_choice import (
    FORCED_PANDAS_REASON,
    NO_SIGNATURE_REASON,
    WITH_PANDAS_REASON,
    fitted_on_frame_reason,
    model_needs_pandas,
    pandas_note,
)
from mlflow_lambda.packager.pins import Dropped
from mlflow_lambda.packager.plan import BundlePlan, plan_bundle

# The requirements MLflow 3.17.2 logged for the README forest (skops) in this repo's venv.
FOREST_REQUIREMENTS = [
    "mlflow==3.17.2",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "pytest==9.2.0",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
    "skops==0.16.0",
]
COLUMNS = [{"type": "double", "name": "sepal length (cm)", "required": True}]
# the conftest regressor's signature, as MLflow 3.17.2 logs it
MIXED = [
    {"type": "long", "name": "age", "required": True},
    {"type": "double", "name": "income", "required": True},
    {"type": "string", "name": "city", "required": True},
]
NUMERIC = [
    {"type": t, "name": f"c{i}", "required": True}
    for i, t in enumerate(["long", "integer", "double", "float", "boolean"])
]
NUMERIC_REASON = "the model's signature has only numeric columns"
TENSOR = [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]
MLFLOW_REASON = "MLflow is only needed at build time; the handler loads the model without it"
DEV_REASON = "a development tool, not needed to load or call the model"


def config(**overrides: Any) -> dict[str, Any]:
    """A model.json like inspection.inspect_model writes for the forest (files omitted),
    with the regressor's long/double/string signature, so that pandas is needed."""
    base: dict[str, Any] = {
        "config_version": 1,
        "flavor": "sklearn",
        "serialization_format": "skops",
        "python_version": "3.11.7",
        "flavor_library_version": "1.9.1",
        "requirements": list(FOREST_REQUIREMENTS),
        "signature": {"inputs": MIXED, "outputs": None, "params": None},
        "input_example": None,
    }
    base.update(overrides)
    return base


class Warnings(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


def plan(cfg: dict[str, Any], python: str | None = None, arch: str = "x86_64") -> BundlePlan:
    warnings = Warnings()
    result = plan_bundle(cfg, python=python, arch=arch, warn=warnings)
    assert warnings == [], warnings
    return result


def test_forest_plan() -> None:
    # the README forest: double columns only, so the handler scores it from a 2-D array
    forest = config(signature={"inputs": COLUMNS, "outputs": None, "params": None})
    assert plan(forest) == BundlePlan(
        python_version="3.11",
        arch="x86_64",
        requirements=[
            "mangum>=0.17",
            "msgspec>=0.18",
            "numpy==2.4.6",
            "pysimdjson>=6",
            "scikit-learn==1.9.1",
            "scipy==1.17.1",
            "skops==0.16.0",
            "starlette>=0.37",
        ],
        dropped=[
            Dropped("mlflow==3.17.2", MLFLOW_REASON),
            Dropped("pandas==3.1.1", f"not needed at run time: {NUMERIC_REASON}"),
            Dropped("pytest==9.2.0", DEV_REASON),
        ],
        needs_pandas=False,
        pandas_reason=NUMERIC_REASON,
    )


def test_forced_pandas_keeps_the_models_pin() -> None:
    # the build's retry when the pandas-free bundle fails its import-and-predict check
    warnings = Warnings()
    forest = config(signature={"inputs": COLUMNS, "outputs": None, "params": None})
    result = plan_bundle(forest, python=None, arch="x86_64", warn=warnings, force_pandas=True)
    assert warnings == []
    assert (result.needs_pandas, result.pandas_reason) == (
        True,
        "asked for (the bundle without pandas failed its import-and-predict check)",
    )
    assert "pandas==3.1.1" in result.requirements
    assert [d.requirement for d in result.dropped] == ["mlflow==3.17.2", "pytest==9.2.0"]


def test_mixed_signature_keeps_pandas_and_forcing_changes_nothing() -> None:
    cfg = config()
    reason = "the model's signature has a 'string' column 'city'"
    for force in (False, True):
        result = plan_bundle(cfg, python=None, arch="x86_64", warn=Warnings(), force_pandas=force)
        assert (result.needs_pandas, result.pandas_reason) == (True, reason)
        assert "pandas==3.1.1" in result.requirements


def test_tensor_signature_drops_pandas_and_pickle_needs_no_loader() -> None:
    result = plan(
        config(
            serialization_format="pickle",
            requirements=[r for r in FOREST_REQUIREMENTS if not r.startswith(("skops", "pytest"))],
            signature={"inputs": TENSOR, "outputs": None, "params": None},
        ),
        arch="arm64",
    )
    assert (result.arch, result.needs_pandas, result.runtime) == ("arm64", False, "python3.11")
    assert result.requirements == [
        "mangum>=0.17",
        "msgspec>=0.18",
        "numpy==2.4.6",
        "pysimdjson>=6",
        "scikit-learn==1.9.1",
        "scipy==1.17.1",
        "starlette>=0.37",
    ]
    assert result.dropped == [
        Dropped("mlflow==3.17.2", MLFLOW_REASON),
        Dropped("pandas==3.1.1", "not needed at run time: the model's signature takes tensors"),
    ]


@pytest.mark.parametrize(
    ("signature_inputs", "example", "expected"),
    [
        (COLUMNS, None, (False, NUMERIC_REASON)),
        (NUMERIC, {"dataframe_split": {"data": [[1]]}}, (False, NUMERIC_REASON)),
        (MIXED, None, (True, "the model's signature has a 'string' column 'city'")),
        (
            [*COLUMNS, {"type": "datetime", "name": "when"}],
            None,
            (True, "the model's signature has a 'datetime' column 'when'"),
        ),
        (
            [{"type": "binary", "name": "b"}],
            None,
            (True, "the model's signature has a 'binary' column 'b'"),
        ),
        (
            [{"type": "array", "items": {"type": "double"}, "name": "v"}],
            None,
            (True, "the model's signature has a 'array' column 'v'"),
        ),
        (
            [{"type": "object", "properties": {}, "name": "o"}],
            None,
            (True, "the model's signature has a 'object' column 'o'"),
        ),
        (
            [{"type": "map", "values": {"type": "double"}, "name": "m"}],
            None,
            (True, "the model's signature has a 'map' column 'm'"),
        ),
        (
            [{"type": "double"}, {"type": "double"}],
            None,
            (True, "the model's signature has unnamed columns"),
        ),
        (TENSOR + COLUMNS, None, (True, "the model's signature has unnamed columns")),
        (
            TENSOR,
            {"dataframe_split": {"data": [[1]]}},
            (False, "the model's signature takes tensors"),
        ),
        (
            None,
            {"inputs": [[1.0, 2.0, 3.0]]},
            (False, "the model has no signature and its input example is a plain array"),
        ),
        (None, {"instances": [{"a": 1}]}, (True, "the model has no tensor signature")),
        (
            None,
            {"dataframe_split": {"data": [[1]]}},
            (True, "the model has no signature and its input example is a DataFrame"),
        ),
        (
            None,
            {"dataframe_records": [{"a": 1}]},
            (True, "the model has no signature and its input example is a DataFrame"),
        ),
        (None, None, (False, NO_SIGNATURE_REASON)),  # the user story's model
    ],
)
def test_model_needs_pandas(
    signature_inputs: list[dict[str, Any]] | None,
    example: dict[str, Any] | None,
    expected: tuple[bool, str],
) -> None:
    cfg = config(
        signature={"inputs": signature_inputs, "outputs": None, "params": None},
        input_example=example,
    )
    assert model_needs_pandas(cfg) == expected


def test_cloudpickle_loader_added_unpinned_when_the_model_does_not_pin_it() -> None:
    reqs = ["numpy==2.4.6", "scikit-learn==1.9.1"]
    result = plan(config(serialization_format="cloudpickle", requirements=reqs))
    assert result.requirements == [
        "cloudpickle",
        "mangum>=0.17",
        "msgspec>=0.18",
        "numpy==2.4.6",
        "pandas>=2.0",
        "pysimdjson>=6",
        "scikit-learn==1.9.1",
        "starlette>=0.37",
    ]


def test_flavor_version_pins_scikit_learn_when_requirements_omit_it() -> None:
    result = plan(config(requirements=[], flavor_library_version="1.8.0"))
    assert result.requirements == [
        "mangum>=0.17",
        "msgspec>=0.18",
        "numpy>=1.24",
        "pandas>=2.0",
        "pysimdjson>=6",
        "scikit-learn==1.8.0",
        "skops",
        "starlette>=0.37",
    ]


def test_flavor_version_mismatch_warns_and_keeps_the_requirement() -> None:
    warnings = Warnings()
    result = plan_bundle(
        config(requirements=["scikit-learn==1.9.1"], flavor_library_version="1.8.0"),
        python=None,
        arch="x86_64",
        warn=warnings,
    )
    assert "scikit-learn==1.9.1" in result.requirements
    assert warnings == [
        "the model was saved with scikit-learn 1.8.0 but its requirements ask for "
        "scikit-learn==1.9.1; installing the requirements' version"
    ]


def test_never_at_run_time_requirements_are_dropped_with_reasons() -> None:
    extra = [
        "boto3==1.40.0",
        "botocore==1.40.0",
        "mlflow-skinny==3.17.2",
        "mlflow-tracing==3.17.2",
        "pyarrow==22.0.0",
        "pytest-cov==7.0.0",
        "IPyKernel==7.0.0",
        "Jupyter_Core==5.0.0",
    ]
    result = plan(config(requirements=[*FOREST_REQUIREMENTS, *extra]))
    reasons = {d.requirement: d.reason for d in result.dropped}
    assert reasons["boto3==1.40.0"] == "the Lambda Python runtime provides boto3 and botocore"
    assert reasons["botocore==1.40.0"] == "the Lambda Python runtime provides boto3 and botocore"
    assert reasons["mlflow-skinny==3.17.2"] == MLFLOW_REASON
    assert reasons["mlflow-tracing==3.17.2"] == MLFLOW_REASON
    assert reasons["pyarrow==22.0.0"].startswith("never bundled: scikit-learn imports pyarrow")
    assert reasons["pytest-cov==7.0.0"] == DEV_REASON
    assert reasons["IPyKernel==7.0.0"] == DEV_REASON
    # jupyter-core is a library some packages import at run time: not on the dev-tool list.
    assert "Jupyter_Core==5.0.0" in result.requirements
    assert len(result.dropped) == 9


def test_markers_are_evaluated_for_the_target_not_the_host() -> None:
    reqs = [
        'exceptiongroup==1.3.0; python_version < "3.11"',
        'tomli==2.2.1; python_version < "3.11"',
        'pywin32==311; sys_platform == "win32"',
        'arm-only==1.0; platform_machine == "aarch64"',
        "numpy==2.4.6",
    ]
    py310 = plan(config(requirements=reqs, python_version="3.10.14"), arch="arm64")
    assert py310.requirements[:5] == [
        "arm-only==1.0",
        "exceptiongroup==1.3.0",
        "mangum>=0.17",
        "msgspec>=0.18",
        "numpy==2.4.6",
    ]
    assert "tomli==2.2.1" in py310.requirements
    assert [d.requirement for d in py310.dropped] == ['pywin32==311; sys_platform == "win32"']
    py312 = plan(config(requirements=reqs, python_version="3.12.3"), arch="x86_64")
    assert py312.dropped == [
        Dropped(r, "its marker does not hold on python3.12 x86_64") for r in reqs[:4]
    ]


def test_extras_and_duplicates_merge() -> None:
    result = plan(config(requirements=["skops[rich]==0.16.0", "numpy>=2", "numpy==2.4.6"]))
    assert "skops[rich]==0.16.0" in result.requirements
    assert "numpy==2.4.6" in result.requirements


def test_model_pin_below_runtime_floor_is_a_conflict() -> None:
    with pytest.raises(DependencyError) as exc:
        plan(config(requirements=["pandas==1.5.3"]), python="3.12")
    assert str(exc.value) == (
        "conflicting requirements for pandas on python3.12 x86_64: pandas==1.5.3 (model); "
        "pandas>=2.0 (runtime). Log the model with one compatible pin for pandas"
    )


def test_two_different_pins_are_a_conflict() -> None:
    with pytest.raises(DependencyError, match=r"conflicting requirements for numpy on python3.11"):
        plan(config(requirements=["numpy==1.26.4", "numpy==2.4.6"]))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("-c constraints.txt", "requirement line '-c constraints.txt' is a pip option"),
        ("--extra-index-url https://x", "is a pip option"),
        ("numpy >>= 1", "cannot parse model requirement 'numpy >>= 1'"),
        ("mylib @ https://example.com/mylib-1.0.tar.gz", "points at a URL; bundles install only"),
    ],
)
def test_unusable_requirement_lines(line: str, message: str) -> None:
    with pytest.raises(DependencyError, match=message.replace("(", r"\(")):
        plan(config(requirements=[line]))


def test_python_override_warns_when_it_differs_from_training() -> None:
    warnings = Warnings()
    result = plan_bundle(config(), python="python3.12", arch="x86_64", warn=warnings)
    assert result.python_version == "3.12"
    assert warnings == [
        "building for python3.12 but the model was trained on Python 3.11.7; "
        "a pickled model may not load on another Python version"
    ]


@pytest.mark.parametrize("python", ["3.9", "3.15", "2.7"])
def test_unsupported_python_override_is_refused(python: str) -> None:
    with pytest.raises(DependencyError) as exc:
        plan_bundle(config(), python=python, arch="x86_64", warn=Warnings())
    assert str(exc.value) == (
        f"Lambda has no runtime for Python {python!r}; choose one of 3.10, 3.11, 3.12, 3.13, 3.14"
    )


@pytest.mark.parametrize(
    ("trained", "chosen", "warning"),
    [
        (
            "3.9.18",
            "3.10",
            "the model was trained on Python 3.9.18, which Lambda does not offer (supported: "
            "3.10, 3.11, 3.12, 3.13, 3.14); using python3.10, pass --python to choose another",
        ),
        (
            "3.15.0",
            "3.14",
            "the model was trained on Python 3.15.0, which Lambda does not offer (supported: "
            "3.10, 3.11, 3.12, 3.13, 3.14); using python3.14, pass --python to choose another",
        ),
        (
            None,
            "3.12",
            "the model does not record its Python version (None); using python3.12, "
            "pass --python to choose",
        ),
        ("3.13.1", "3.13", None),
    ],
)
def test_default_python_from_training(
    trained: str | None, chosen: str, warning: str | None
) -> None:
    warnings = Warnings()
    result = plan_bundle(config(python_version=trained), python=None, arch="x86_64", warn=warnings)
    assert result.python_version == chosen
    assert warnings == ([warning] if warning else [])


def test_bad_arch_and_flavor() -> None:
    with pytest.raises(DependencyError, match=r"unsupported architecture 'ppc64le'"):
        plan(config(), arch="ppc64le")
    with pytest.raises(DependencyError, match=r"no run-time library known for flavor 'h2o'"):
        plan(config(flavor="h2o"))
    assert plan(config(), arch="aarch64").arch == "arm64"


def test_pandas_note_says_why_and_how_to_avoid_it_in_one_line() -> None:
    unsigned = config(signature={"inputs": None, "outputs": None, "params": None})
    assert pandas_note(plan(unsigned)) is None  # left out: nothing to say
    reason = fitted_on_frame_reason(["a", "b"])
    framed = plan_bundle(unsigned, python="3.11", arch="x86_64", warn=print, force_pandas=reason)
    note = pandas_note(framed)
    assert note is not None and "\n" not in note
    assert note.startswith("bundling pandas (28 MB and ~0.15 s of cold start): the model has no ")
    assert "fitted on a DataFrame (columns ['a', 'b'])" in note
    assert note.endswith("or fit it on arrays and log it without a signature, to be served "
                         "without it")  # fmt: skip
    asked = plan_bundle(unsigned, python="3.11", arch="x86_64", warn=print,
                        force_pandas=WITH_PANDAS_REASON)  # fmt: skip
    assert str(pandas_note(asked)).endswith("package without --with-pandas to leave it out")
    forced = plan_bundle(unsigned, python="3.11", arch="x86_64", warn=print, force_pandas=True)
    assert forced.pandas_reason == FORCED_PANDAS_REASON
    assert "pandas==3.1.1" in forced.requirements  # the model's own pin


# --- CPU twins (Lambda has no GPU) and the native flavors ------------------------------------

# What MLflow 3.17.2 logged for an xgboost Booster in this repo's venv (xgboost-cpu installed:
# MLflow adds the flavor's default `xgboost` besides the inferred `xgboost-cpu`).
XGB_REQUIREMENTS = ["mlflow==3.17.2", "numpy==2.4.6", "xgboost-cpu==3.2.0", "xgboost==3.2.0"]


def xgb_config(requirements: list[str], version: str = "3.2.0") -> dict[str, Any]:
    return config(flavor="xgboost", serialization_format="ubj",
                  flavor_library_version=version, requirements=requirements,
                  signature={"inputs": TENSOR, "outputs": None, "params": None})  # fmt: skip


def test_xgboost_becomes_xgboost_cpu_of_the_same_version_and_says_so() -> None:
    result = plan(xgb_config(["xgboost==3.2.0", "numpy==2.4.6"]))
    assert result.requirements == [
        "mangum>=0.17", "msgspec>=0.18", "numpy==2.4.6", "pysimdjson>=6", "starlette>=0.37",
        "xgboost-cpu==3.2.0",
    ]  # fmt: skip
    (swap,) = [d for d in result.dropped if d.requirement == "xgboost==3.2.0"]
    assert swap.reason == (
        "Lambda has no GPU: installing its CPU build xgboost-cpu==3.2.0 instead, the same "
        "library without CUDA and nvidia-nccl"
    )
    both = plan(xgb_config(XGB_REQUIREMENTS))  # both names: one pin, the CPU one
    assert [r for r in both.requirements if r.startswith("xgboost")] == ["xgboost-cpu==3.2.0"]


def test_xgboost_without_a_pin_takes_the_mlmodel_version_and_old_versions_stay() -> None:
    result = plan(xgb_config(["numpy==2.4.6"], version="3.1.2"))
    assert "xgboost-cpu==3.1.2" in result.requirements
    old = plan(xgb_config(["xgboost==1.7.6"], version="1.7.6"))  # before xgboost-cpu existed
    assert "xgboost==1.7.6" in old.requirements
    assert not any(r.startswith("xgboost-cpu") for r in old.requirements)


def test_onnxruntime_gpu_becomes_onnxruntime_and_onnx_keeps_pandas_for_columns() -> None:
    onnx = config(flavor="onnx", serialization_format="onnx", flavor_library_version=None,
                  requirements=["onnx==1.23.2", "onnxruntime-gpu==1.32.0"],
                  signature={"inputs": NUMERIC, "outputs": None, "params": None})  # fmt: skip
    result = plan(onnx)
    assert "onnxruntime==1.32.0" in result.requirements
    assert not any(r.startswith("onnxruntime-gpu") for r in result.requirements)
    assert (result.needs_pandas, result.pandas_reason) == (
        True, "an ONNX model answers a DataFrame input with a DataFrame",
    )  # fmt: skip


def test_native_formats_add_no_pickle_loader() -> None:
    lgb = plan(config(flavor="lightgbm", serialization_format="lgb", flavor_library_version="4.7.0",
                      requirements=["lightgbm==4.7.0"]))  # fmt: skip
    assert "lightgbm==4.7.0" in lgb.requirements
    assert not any(r.startswith(("skops", "cloudpickle")) for r in lgb.requirements)


def test_a_preloaded_skops_model_is_planned_without_skops() -> None:
    """Once the build pickled the model (packager.preload), a replan (pandas added after the
    check, say) must not bring skops back: the model's own skops pin is dropped, saying why."""
    from mlflow_lambda.packager.plan import PRELOADED_REASON

    forest = config(signature={"inputs": COLUMNS, "outputs": None, "params": None})
    before = plan(forest)
    after = plan({**forest, "preloaded": {"file": "model.preloaded.pkl", "sha256": "0" * 64}})
    assert "skops==0.16.0" in before.requirements
    assert after.requirements == [r for r in before.requirements if not r.startswith("skops")]
    assert Dropped("skops==0.16.0", PRELOADED_REASON) in after.dropped
    assert not any(r.startswith("skops") for r in plan(config(requirements=[], preloaded={
        "file": "model.preloaded.pkl"})).requirements)  # fmt: skip
