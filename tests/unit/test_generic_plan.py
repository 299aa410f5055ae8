"""The generic path at build time: which models take it, what model.json and the plan say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlflow_lambda.handler.flavors import GENERIC_FLAVOR
from mlflow_lambda.packager.errors import UnsupportedFlavorError
from mlflow_lambda.packager.generic import is_generic
from mlflow_lambda.packager.inspection import inspect_model
from mlflow_lambda.packager.plan import plan_bundle

# What MLflow 3.17.2 logged for the statsmodels OLS of tests/mlflow_models.py.
OLS_REQUIREMENTS = [
    "mlflow==3.17.2",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "pyarrow==25.0.1",
    "scipy==1.17.1",
    "statsmodels==0.15.0",
]
NUMERIC = [{"type": "double", "name": n, "required": True} for n in ("const", "x1", "x2")]


def _model(root: Path, flavors: dict[str, Any], files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    mlmodel = {"flavors": flavors, "mlflow_version": "3.17.2", "run_id": "r1"}
    (root / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _pyfunc(loader: str, **extra: Any) -> dict[str, Any]:
    return {"loader_module": loader, "python_version": "3.11.7", **extra}


def test_a_native_flavor_never_takes_the_generic_path() -> None:
    assert not is_generic({"sklearn": {}, "python_function": _pyfunc("mlflow.sklearn")})
    assert is_generic({"statsmodels": {}, "python_function": _pyfunc("mlflow.statsmodels")})
    assert not is_generic({"statsmodels": {}})  # no pyfunc flavor: nothing can load it


def test_custom_model_config_ships_code_paths(tmp_path: Path) -> None:
    flavors = {"python_function": _pyfunc("mlflow.pyfunc.model", python_model="python_model.pkl",
                                          code="code")}  # fmt: skip
    root = _model(tmp_path / "m", flavors, {"python_model.pkl": "x", "code/utils.py": "y = 1\n"})
    config = inspect_model(root)
    assert (config["flavor"], config["loader_module"]) == (GENERIC_FLAVOR, "mlflow.pyfunc.model")
    assert (config["model_file"], config["serialization_format"]) == ("python_model.pkl", "pyfunc")
    assert set(config["files"]) == {"MLmodel", "python_model.pkl", "code/utils.py"}


def test_statsmodels_config_names_its_data_and_version(tmp_path: Path) -> None:
    flavors = {
        "python_function": _pyfunc("mlflow.statsmodels", data="model.statsmodels"),
        "statsmodels": {"data": "model.statsmodels", "statsmodels_version": "0.15.0"},
    }
    config = inspect_model(_model(tmp_path / "m", flavors, {"model.statsmodels": "x"}))
    assert (config["model_file"], config["flavor_library_version"]) == (
        "model.statsmodels",
        "0.15.0",
    )


@pytest.mark.parametrize(
    ("flavors", "files", "expected"),
    [
        (
            {"spark": {}, "python_function": _pyfunc("mlflow.spark")},
            {},
            "unsupported model flavor 'spark' (loader 'mlflow.spark'): Spark models need a JVM",
        ),
        (
            {"python_function": _pyfunc("mlflow.pyfunc.model", code="code")},
            {},
            "the 'python_function' model names code_paths directory 'code', which is not in",
        ),
        ({"h2o": {}}, {}, "unsupported model flavor 'h2o'"),
    ],
)
def test_what_cannot_serve_fails_with_one_line(
    tmp_path: Path, flavors: dict[str, Any], files: dict[str, str], expected: str
) -> None:
    with pytest.raises(UnsupportedFlavorError) as info:
        inspect_model(_model(tmp_path / "m", flavors, files))
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_generic_plan_swaps_mlflow_for_skinny_and_keeps_pandas() -> None:
    config = {
        "flavor": GENERIC_FLAVOR,
        "python_version": "3.11.7",
        "mlflow_version": "3.17.2",
        "requirements": OLS_REQUIREMENTS,
        "signature": {"inputs": NUMERIC, "outputs": None, "params": None},
    }
    plan = plan_bundle(config, python="3.12", arch="x86_64", warn=lambda _: None)
    assert plan.requirements == [
        "mangum>=0.17",
        "mlflow-skinny==3.17.2",
        "msgspec>=0.18",
        "numpy==2.4.6",
        "pandas==3.1.1",
        "pyarrow==25.0.1",
        "pysimdjson>=6",
        "scipy==1.17.1",
        "starlette>=0.37",
        "statsmodels==0.15.0",
    ]
    # a numeric signature would leave pandas out of a native bundle; mlflow.pyfunc needs it
    assert plan.needs_pandas
    dropped = {d.requirement: d.reason for d in plan.dropped}
    assert set(dropped) == {"mlflow==3.17.2"}  # pyarrow stays: the OLS fails to load without
    assert dropped["mlflow==3.17.2"].startswith("replaced by mlflow-skinny of the same version")
