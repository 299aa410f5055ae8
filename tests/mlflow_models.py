"""Real models, logged with real MLflow into a real sqlite tracking store.

Shared by the tests (through fixtures in ``conftest.py``) and by the benchmarks.
Each helper trains a small scikit-learn model deterministically and logs it with
``mlflow.sklearn.log_model``; the return value says where MLflow put it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# MLflow >= 3.14 saves sklearn models with skops and refuses tree ensembles unless the
# tree type is trusted explicitly (UntrustedTypesFoundException otherwise).
TREE_TRUSTED = ["sklearn.tree._tree.Tree"]


@dataclass(frozen=True)
class LoggedModel:
    name: str
    model_uri: str  # models:/m-<id> as returned by log_model
    run_id: str
    local_dir: Path  # the artifacts directory on disk
    registered_name: str | None
    version: str | None
    input_example: Any


def use_tracking_store(root: Path) -> str:
    """Point MLflow at a sqlite store (and artifact root) under ``root``; return its URI."""
    import mlflow

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    return uri


def _trusted_types(model: Any) -> list[str]:
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def _log(
    name: str,
    model: Any,
    X: Any,
    *,
    registered_name: str | None = None,
    params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> LoggedModel:
    import mlflow
    from mlflow.models import infer_signature

    predict_fn = kwargs.get("pyfunc_predict_fn", "predict")
    y = getattr(model, predict_fn)(X)
    signature = infer_signature(X, y, params=params)
    example = X[:2] if not isinstance(X, pd.DataFrame) else X.head(2)
    if kwargs.get("serialization_format", "skops") == "skops":
        kwargs.setdefault("skops_trusted_types", _trusted_types(model))
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name=name,
            signature=signature,
            input_example=example,
            registered_model_name=registered_name,
            **kwargs,
        )
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    version = str(info.registered_model_version) if registered_name else None
    return LoggedModel(
        name, info.model_uri, run.info.run_id, local, registered_name, version, example
    )


def iris_frame() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


def log_forest(
    registered_name: str | None = "MyRandomForest", n_estimators: int = 20
) -> LoggedModel:
    """The README example: a RandomForestClassifier on iris's 4 double features."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris_frame()
    model = RandomForestClassifier(n_estimators=n_estimators, random_state=0).fit(X, y)
    return _log(
        "forest", model, X, registered_name=registered_name, skops_trusted_types=TREE_TRUSTED
    )


def mixed_frame(n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    """long, double and string columns, and a numeric target."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype("int64"),
            "income": rng.normal(50_000, 15_000, n).round(2),
            "city": rng.choice(["paris", "lyon", "nice"], n),
        }
    )
    y = X["age"] * 10.0 + X["income"] / 1000 + X["city"].map({"paris": 5, "lyon": 1, "nice": 3})
    return X, y.to_numpy()


def log_regressor(serialization_format: str = "cloudpickle") -> LoggedModel:
    """A regressor whose signature has long, double and string columns, with a params schema."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    X, y = mixed_frame()
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("city", OrdinalEncoder(), ["city"])], remainder="passthrough"),
            ),
            ("ridge", Ridge(alpha=1.0)),
        ]
    ).fit(X, y)
    return _log(
        "regressor",
        model,
        X,
        params={"scale": 1.0, "label": "default"},
        serialization_format=serialization_format,
    )


def log_pipeline() -> LoggedModel:
    """ColumnTransformer + OneHotEncoder on a string column; predict_proba as predict_fn."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = mixed_frame()
    labels = (y > np.median(y)).astype("int64")
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                        ("num", StandardScaler(), ["age", "income"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, labels)
    return _log("pipeline", model, X, pyfunc_predict_fn="predict_proba")


def log_array_model() -> LoggedModel:
    """A model fitted on a plain numpy array (tensor signature), pickled with ``pickle``."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    model = LinearRegression().fit(X, y)
    return _log("arrays", model, X, serialization_format="pickle")


def log_seed_model(registered_name: str | None = "SeedRandomForest") -> LoggedModel:
    """The user story's own model (/work/shared/USER-STORY.md, steps 1-2), logged as written.

    ``RandomForestClassifier(random_state=42)`` fitted on the plain numpy arrays of
    ``make_classification(n_samples=100, n_features=4, random_state=42)``: no column names
    (no ``feature_names_in_``), no signature, no input example, skops with exactly the
    story's trusted types. Registered under another name than the README example's.
    """
    import mlflow
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=100, n_features=4, random_state=42)
    model = RandomForestClassifier(random_state=42).fit(X, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name="random-forest-model",
            registered_model_name=registered_name,
            skops_trusted_types=TREE_TRUSTED,
        )
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    version = str(info.registered_model_version) if registered_name else None
    return LoggedModel(
        "random-forest-model", info.model_uri, run.info.run_id, local, registered_name,
        version, None,
    )  # fmt: skip


# --- native flavors besides sklearn (handler/flavors/*): small, fast, deterministic -----------


def _log_flavor(
    flavor: str,
    name: str,
    model: Any,
    X: Any,
    y: Any,
    *,
    params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> LoggedModel:
    """Log ``model`` with ``mlflow.<flavor>.log_model``, signature inferred from ``X``/``y``."""
    import importlib

    import mlflow
    from mlflow.models import infer_signature

    example = X[:2] if not isinstance(X, pd.DataFrame) else X.head(2)
    signature = infer_signature(X, y, params=params)
    module = importlib.import_module(f"mlflow.{flavor}")
    with mlflow.start_run() as run:
        info = module.log_model(
            model, name=name, signature=signature, input_example=example, **kwargs
        )
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    return LoggedModel(name, info.model_uri, run.info.run_id, local, None, None, example)


def log_xgb_classifier() -> LoggedModel:
    """An XGBClassifier on iris (a DataFrame), saved as ubj.

    Its requirements pin ``xgboost`` (what a user who installed xgboost logs), so the build
    swaps in ``xgboost-cpu``: this venv has the CPU build, which MLflow would record instead.
    """
    import xgboost

    X, y = iris_frame()
    model = xgboost.XGBClassifier(n_estimators=8, max_depth=3, random_state=0).fit(X, y)
    reqs = [f"xgboost=={xgboost.__version__}", f"numpy=={np.__version__}", "scikit-learn"]
    return _log_flavor(
        "xgboost", "xgb_classifier", model, X, model.predict(X), pip_requirements=reqs
    )


def log_xgb_booster() -> LoggedModel:
    """A raw xgboost Booster (multi:softprob) on a float array: a tensor signature, json,
    and a params schema (``output_margin``, which Booster.predict takes)."""
    import xgboost

    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    booster = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "seed": 0},
        xgboost.DMatrix(X, label=y), num_boost_round=6,
    )  # fmt: skip
    proba = booster.predict(xgboost.DMatrix(X))
    return _log_flavor(
        "xgboost", "xgb_booster", booster, X, proba, model_format="json",
        params={"output_margin": False},
    )  # fmt: skip


def log_lgbm_classifier() -> LoggedModel:
    """An LGBMClassifier on iris (a DataFrame), skops with MLflow's trusted lightgbm types."""
    import lightgbm

    X, y = iris_frame()
    model = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=4, verbose=-1).fit(X, y)
    return _log_flavor("lightgbm", "lgbm_classifier", model, X, model.predict(X))


def log_lgb_booster() -> LoggedModel:
    """A raw lightgbm Booster (regression) on the mixed frame's numeric columns."""
    import lightgbm

    X, y = mixed_frame()
    X = X[["age", "income"]].astype("float64")
    booster = lightgbm.train(
        {"objective": "regression", "num_leaves": 4, "verbose": -1, "seed": 0},
        lightgbm.Dataset(X, label=y), num_boost_round=10,
    )  # fmt: skip
    return _log_flavor("lightgbm", "lgb_booster", booster, X, booster.predict(X))


def log_onnx_classifier() -> LoggedModel:
    """A LogisticRegression on iris converted by skl2onnx (float input; label and proba out)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = iris_frame()
    features = X.to_numpy(dtype=np.float32)
    model = LogisticRegression(max_iter=500).fit(features, y)
    onx = to_onnx(model, features[:1], options={"zipmap": False}, target_opset=17)
    import onnxruntime

    session = onnxruntime.InferenceSession(onx.SerializeToString())
    outputs = dict(zip(["label", "probabilities"], session.run(None, {"X": features}), strict=True))
    return _log_flavor("onnx", "onnx_classifier", onx, features, outputs)


def log_catboost_classifier() -> LoggedModel:
    """A CatBoostClassifier on the mixed frame (a string column as a categorical feature)."""
    import catboost

    X, y = mixed_frame()
    labels = (y > np.median(y)).astype("int64")
    model = catboost.CatBoostClassifier(
        iterations=20, depth=3, random_seed=0, verbose=False, cat_features=["city"],
        allow_writing_files=False, thread_count=1,
    ).fit(X, labels)  # fmt: skip
    return _log_flavor("catboost", "catboost_classifier", model, X, model.predict(X))


# --- the generic path: models MLflow's own pyfunc loads (handler/flavors/pyfunc.py) ---------

# The code_paths of the custom model: a helper module named like a user's own ``utils.py``, and
# a ``handler.py`` that must never shadow our runtime (``mlflow_lambda.handler``) in a bundle.
CUSTOM_UTILS = '''
"""The custom model's code (logged as code_paths): reads its artifact, scores rows."""
import json

import mlflow.pyfunc
import pandas as pd


def read_weights(path):
    with open(path) as f:
        return json.load(f)


class AffineModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import handler  # the user's own handler.py, from code_paths

        self.weights = read_weights(context.artifacts["weights"])
        self.tag = handler.TAG

    def predict(self, context, model_input, params=None):
        if (model_input["age"] < 0).any():
            raise ValueError("age must not be negative")
        w = self.weights
        scale = (params or {}).get("scale", 1.0)
        city = model_input["city"].map(w["city"]).astype("float64").fillna(0.0)
        score = (model_input["age"] * w["age"] + model_input["income"] * w["income"] + city)
        return pd.DataFrame({"score": score * scale, "tag": self.tag})
'''
CUSTOM_HANDLER = '''
"""A user's own handler.py: importable by the model, never by Lambda's entry point."""
TAG = "user-handler"


def handler(event, context):
    raise RuntimeError("the user's handler.py was called instead of mlflow-lambda's")
'''
CUSTOM_FROM_CODE = """
import mlflow
from utils import AffineModel

mlflow.models.set_model(AffineModel())
"""
CUSTOM_WEIGHTS = {"age": 10.0, "income": 0.001, "city": {"paris": 5.0, "lyon": 1.0, "nice": 3.0}}


def _custom_files(root: Path) -> tuple[dict[str, str], list[str]]:
    """The custom model's artifact and code_paths, written under ``root``."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    (root / "weights.json").write_text(json.dumps(CUSTOM_WEIGHTS))
    (root / "utils.py").write_text(CUSTOM_UTILS)
    (root / "handler.py").write_text(CUSTOM_HANDLER)
    (root / "model_code.py").write_text(CUSTOM_FROM_CODE)
    artifacts = {"weights": str(root / "weights.json")}
    return artifacts, [str(root / "utils.py"), str(root / "handler.py")]


def log_custom_pyfunc(root: Path, *, from_code: bool = False) -> LoggedModel:
    """A custom ``PythonModel`` (pickled, or models-from-code) with an artifact file, a params
    schema, and code_paths ``utils.py`` and ``handler.py``; it answers a DataFrame."""
    import sys

    import mlflow
    from mlflow.models import infer_signature

    artifacts, code_paths = _custom_files(root)
    X, _ = mixed_frame()
    example = X.head(2)
    sys.path.insert(0, str(root))  # pickled by reference to `utils`, as a user's code would be
    try:
        import utils  # type: ignore[import-not-found]

        model = utils.AffineModel()
        model.weights, model.tag = CUSTOM_WEIGHTS, "user-handler"
        signature = infer_signature(X, model.predict(None, X), params={"scale": 1.0})
        name = "custom_from_code" if from_code else "custom"
        with mlflow.start_run() as run:
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(root / "model_code.py") if from_code else model,
                artifacts=artifacts,
                code_paths=code_paths,
                signature=signature,
                input_example=example,
            )
    finally:
        sys.path.remove(str(root))
        for module in ("utils", "handler"):
            sys.modules.pop(module, None)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    return LoggedModel(name, info.model_uri, run.info.run_id, local, None, None, example)


def log_statsmodels_ols() -> LoggedModel:
    """A statsmodels OLS on a constant and two double columns (``mlflow.statsmodels``)."""
    import mlflow
    import statsmodels.api as sm
    from mlflow.models import infer_signature

    rng = np.random.default_rng(2)
    X = pd.DataFrame({"x1": rng.normal(size=60), "x2": rng.normal(size=60)})
    X = sm.add_constant(X)
    y = 1.5 + 2.0 * X["x1"] - X["x2"] + rng.normal(scale=0.1, size=60)
    results = sm.OLS(y, X).fit()
    example = X.head(2)
    with mlflow.start_run() as run:
        info = mlflow.statsmodels.log_model(
            results,
            name="ols",
            signature=infer_signature(X, results.predict(X)),
            input_example=example,
        )
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    return LoggedModel("ols", info.model_uri, run.info.run_id, local, None, None, example)
