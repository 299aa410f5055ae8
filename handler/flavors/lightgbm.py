"""LightGBM models saved by ``mlflow.lightgbm``: a ``Booster`` or the scikit-learn API.

Loads like ``mlflow.lightgbm._load_model`` (MLflow 3.17): the MLmodel's ``model_class``
``lightgbm.basic.Booster`` (the default) is read with ``lightgbm.Booster(model_file=...)``
from ``model.lgb``; any other class (``LGBMClassifier``, ...) was saved like a scikit-learn
model, per ``serialization_format`` (skops with exactly the recorded ``skops_trusted_types``,
pickle, cloudpickle). ``_LGBModelWrapper.predict`` calls ``model.predict(data)`` and ignores
params; so does :class:`LightGBMPredictor`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import ModelConfig
from ..errors import ModelLoadError
from .sklearn import NO_FEATURE_NAMES_WARNING, model_path, read_estimator
from .sklearn import serialization_format as pickled_format

BOOSTER_CLASS = "lightgbm.basic.Booster"  # mlflow.lightgbm._load_model's default model_class
BOOSTER_FORMAT = "lgb"  # LightGBM's own text model file, model.lgb


def serialization_format(flavor_conf: Mapping[str, Any]) -> str:
    """``lgb`` for a Booster, else the scikit-learn ``serialization_format``."""
    if (flavor_conf.get("model_class") or BOOSTER_CLASS) == BOOSTER_CLASS:
        return BOOSTER_FORMAT
    return pickled_format(flavor_conf)


class LightGBMPredictor:
    """A Booster or an ``LGBMModel``; ``predict(data)``, params ignored as in MLflow."""

    def __init__(self, model: Any) -> None:
        self.model = model
        names = getattr(model, "feature_names_in_", None)  # the scikit-learn API, from a frame
        if names is None and hasattr(model, "feature_name"):  # a Booster: names or Column_<i>
            fitted = model.feature_name()
            if fitted != [f"Column_{i}" for i in range(len(fitted))]:
                names = fitted
        self.feature_names: tuple[str, ...] | None = (
            None if names is None else tuple(str(name) for name in names)
        )
        self.accepts_ndarray = self.feature_names is None

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """``model.predict(data)``; a bare array for a model fitted on a frame scores by position
        (the caller checked the names), with scikit-learn's feature-name warning silenced."""
        if self.feature_names is None or hasattr(data, "columns"):
            return self.model.predict(data)
        if len(data) == 0:  # lightgbm scores an empty array, but refuses MLflow's empty frame
            raise ValueError("Input data must be 2 dimensional and non empty.")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", NO_FEATURE_NAMES_WARNING, UserWarning)
            return self.model.predict(data)


def load(config: ModelConfig, model_dir: Path) -> LightGBMPredictor:
    """Read ``model.lgb`` as a Booster, or the pickled scikit-learn API model."""
    path = model_path(config, model_dir)
    fmt = config["serialization_format"]
    if fmt != BOOSTER_FORMAT:
        trusted = list(config.get("skops_trusted_types") or [])
        return LightGBMPredictor(read_estimator(path, fmt, trusted))
    import lightgbm

    try:
        booster = lightgbm.Booster(model_file=str(path))
    except Exception as exc:  # lightgbm.basic.LightGBMError
        raise ModelLoadError(
            f"cannot load {str(path)!r} as a LightGBM Booster: {type(exc).__name__}: {exc}"
        ) from exc
    return LightGBMPredictor(booster)
