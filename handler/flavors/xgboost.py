"""XGBoost models saved by ``mlflow.xgboost`` (a ``Booster`` or a scikit-learn API model).

Loads and predicts like ``mlflow.xgboost._load_model`` and ``_XGBModelWrapper`` (MLflow 3.17):
the MLmodel's ``model_class`` (``xgboost.core.Booster`` when absent) is instantiated and
``load_model`` reads the ``data`` file, whatever its ``model_format`` (xgb, json or ubj:
xgboost tells them apart itself). A ``Booster`` predicts on ``xgboost.DMatrix(data)``, a
scikit-learn API model (``XGBClassifier``, ...) on the data itself, both with
``validate_features=True``; params are passed on, minus those the predict method does not
accept (MLflow logs and drops them: ``_exclude_unrecognized_kwargs``).

Without pandas in the bundle, a model fitted on named columns gets a 2-D array in signature
order (``handler.app.Scorer`` checks the names first). A Booster gets the fitted names back
(a ``DMatrix`` with ``feature_names``, which is what xgboost builds from MLflow's DataFrame);
the scikit-learn API predicts in place on the array by position and validates nothing then.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..config import ModelConfig
from ..errors import ModelLoadError
from .sklearn import model_path

BOOSTER_CLASS = "xgboost.core.Booster"  # mlflow.xgboost._load_model's default model_class
MODEL_FORMATS = ("xgb", "json", "ubj")  # mlflow.xgboost.save_model's model_format
_log = logging.getLogger(__name__)


def serialization_format(flavor_conf: Mapping[str, Any]) -> str:
    """The MLmodel's ``model_format``; else the ``data`` file's suffix (MLflow < 2.x: xgb)."""
    data = str(flavor_conf.get("data") or "model.xgb")
    fmt = str(flavor_conf.get("model_format") or Path(data).suffix.lstrip(".") or "xgb")
    if fmt not in MODEL_FORMATS:
        raise ValueError(
            f"unsupported xgboost model_format {fmt!r}; supported: {', '.join(MODEL_FORMATS)}"
        )
    model_class = str(flavor_conf.get("model_class") or BOOSTER_CLASS)
    if not model_class.startswith("xgboost."):
        raise ValueError(f"xgboost model_class {model_class!r} is not an xgboost class")
    return fmt


def accepted_params(method: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` minus what ``method`` does not take (all of them if it takes ``**kwargs``)."""
    allowed = inspect.signature(method).parameters
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in allowed.values()):
        return dict(params)
    kept = {key: value for key, value in params.items() if key in allowed}
    if len(kept) < len(params):
        _log.warning(
            "Params %s are not accepted by the xgboost model, ignoring them during predict.",
            set(params) - set(kept),
        )
    return kept


class XGBoostPredictor:
    """A loaded Booster or scikit-learn API model, predicting as ``_XGBModelWrapper``."""

    def __init__(self, model: Any) -> None:
        import xgboost

        self.model = model
        self.is_booster = isinstance(model, xgboost.Booster)
        booster = model if self.is_booster else model.get_booster()
        names = booster.feature_names
        self.feature_names: tuple[str, ...] | None = None if names is None else tuple(names)
        self.accepts_ndarray = self.feature_names is None

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """``model.predict`` as MLflow calls it, on a DataFrame or a 2-D array."""
        import xgboost

        params = params or {}
        names = None if hasattr(data, "columns") else self.feature_names
        if self.is_booster:
            kwargs = accepted_params(self.model.predict, params)
            matrix = xgboost.DMatrix(data, feature_names=names)
            return self.model.predict(matrix, validate_features=True, **kwargs)
        if isinstance(self.model, xgboost.XGBModel):
            # MLflow's functools.partial(predict, validate_features=True): a param may override
            kwargs = {"validate_features": True, **accepted_params(self.model.predict, params)}
            return self.model.predict(data, **kwargs)
        return self.model.predict(data, **params)


def load(config: ModelConfig, model_dir: Path) -> XGBoostPredictor:
    """Instantiate the MLmodel's ``model_class`` and ``load_model`` the ``data`` file."""
    path = model_path(config, model_dir)
    conf = config.get("flavor_conf") or {}
    class_path = str(conf.get("model_class") or BOOSTER_CLASS)
    module_name, _, class_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
        model = cls()
        model.load_model(str(path))
    except Exception as exc:  # xgboost's own error (XGBoostError, ImportError, ...)
        raise ModelLoadError(
            f"cannot load {str(path)!r} as {class_path}: {type(exc).__name__}: {exc}"
        ) from exc
    return XGBoostPredictor(model)
