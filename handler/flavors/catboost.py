"""CatBoost models saved by ``mlflow.catboost``.

Loads like ``mlflow.catboost._load_model`` (MLflow 3.17): an instance of the MLmodel's
``model_type`` (``CatBoost``, ``CatBoostClassifier``, ``CatBoostRegressor`` or
``CatBoostRanker``) reads the ``data`` file with ``load_model(path, save_format)``;
``_CatboostModelWrapper.predict`` is ``model.predict(data)``, params ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import ModelConfig
from ..errors import ModelLoadError
from .sklearn import model_path

MODEL_TYPES = ("CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker")
# catboost's CatBoost.save_model(format=...) values load_model reads back
SAVE_FORMATS = ("cbm", "json", "coreml", "onnx", "cpp", "python", "pmml")


def serialization_format(flavor_conf: Mapping[str, Any]) -> str:
    """The MLmodel's ``save_format`` (``cbm`` when absent); ``model_type`` must be known."""
    model_type = flavor_conf.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"unsupported catboost model_type {model_type!r}; supported: {', '.join(MODEL_TYPES)}"
        )
    fmt = str(flavor_conf.get("save_format") or "cbm")
    if fmt not in SAVE_FORMATS:
        raise ValueError(f"unsupported catboost save_format {fmt!r}")
    return fmt


class CatBoostPredictor:
    """A loaded CatBoost model: ``model.predict(data)``, as ``_CatboostModelWrapper``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        names = list(model.feature_names_ or [])
        positional = names == [str(i) for i in range(len(names))]
        self.feature_names: tuple[str, ...] | None = None if positional else tuple(names)
        self.accepts_ndarray = self.feature_names is None

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """``model.predict(data)``; params are ignored, as in MLflow."""
        return self.model.predict(data)


def load(config: ModelConfig, model_dir: Path) -> CatBoostPredictor:
    """Instantiate ``model_type`` and ``load_model`` the ``data`` file."""
    path = model_path(config, model_dir)
    conf = config.get("flavor_conf") or {}
    fmt = serialization_format(conf)
    import catboost

    try:
        model = getattr(catboost, str(conf["model_type"]))()
        model.load_model(str(path), fmt)
    except Exception as exc:  # catboost.CatBoostError
        raise ModelLoadError(
            f"cannot load {str(path)!r} as {conf.get('model_type')}: {type(exc).__name__}: {exc}"
        ) from exc
    return CatBoostPredictor(model)
