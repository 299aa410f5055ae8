"""scikit-learn models saved by ``mlflow.sklearn`` (skops, pickle or cloudpickle).

Loads like ``mlflow.sklearn._load_model_from_local_file``: skops with exactly the MLmodel's
``skops_trusted_types`` (MLflow passes that list, or None when absent, to
``skops.io.load(path, trusted=...)``), pickle with ``pickle.load``, cloudpickle with
``cloudpickle.load``. The pyfunc ``predict_fn`` is honoured; like MLflow's
``_SklearnModelWrapper``, only ``predict`` and the methods below may serve, and params are
accepted but not passed to scikit-learn.

A model fitted on a DataFrame remembers its column names (``feature_names_in_``) and warns
when it gets a bare array; a bundle without pandas scores such a model from a 2-D array in
signature order (see ``handler.app.Scorer``), and :meth:`SklearnPredictor.predict` silences
exactly that warning, for that call only.

Every ``n_jobs`` in the estimator tree is forced to 1: joblib's process pool needs
``/dev/shm``, which Lambda does not have (https://github.com/joblib/joblib/issues/391).

A skops model is normally loaded once at build time, in the bundle's own Python and
scikit-learn, and shipped as a pickle (``model.json``'s ``preloaded``, written by
``packager.preload``): ``import skops.io`` alone imports every scikit-learn estimator to build
its table of trusted types, so unpickling the estimator it produced starts faster
(docs/findings.md) and the bundle needs no skops. The pickle is only read when ``files``
lists it with the same sha256, so the init's hash check (``config.verify_model_files``) has
covered it; otherwise the skops file is loaded as above.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import ModelConfig
from ..errors import ModelLoadError

# mlflow.sklearn.SUPPORTED_SERIALIZATION_FORMATS; cloudpickle when the MLmodel names none
SERIALIZATION_FORMATS = ("skops", "pickle", "cloudpickle")
# mlflow.sklearn._SklearnModelWrapper._SUPPORTED_CUSTOM_PREDICT_FN, plus predict itself
PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score")
# sklearn.utils.validation._check_feature_names: "X does not have valid feature names, but
# <Estimator> was fitted with feature names" (a regex, matched from the start of the message)
NO_FEATURE_NAMES_WARNING = "X does not have valid feature names"
# fitted sub-estimator containers scikit-learn keeps besides its constructor params
_FITTED_ATTRS = (
    "steps",
    "transformers_",
    "estimators_",
    "estimator_",
    "best_estimator_",
    "final_estimator_",
    "base_estimator_",
    "named_estimators_",
    "transformer_list",
    "regressor_",
    "calibrated_classifiers_",
)


class SklearnPredictor:
    """A loaded estimator and its ``predict_fn``."""

    def __init__(self, model: Any, predict_fn: str = "predict") -> None:
        if predict_fn not in PREDICT_FNS:
            raise ModelLoadError(
                f"predict_fn {predict_fn!r} is not supported for scikit-learn models; "
                f"use one of {list(PREDICT_FNS)!r}"
            )
        method = getattr(model, predict_fn, None)
        if method is None:
            raise ModelLoadError(
                f"model of type {type(model).__name__!r} has no method {predict_fn!r}; log it "
                "with a pyfunc_predict_fn the estimator implements"
            )
        self.model = model
        self.predict_fn = predict_fn
        self._method = method
        # A model fitted on a DataFrame checks column names (and warns on a bare array); one
        # fitted on an array gives the same answer for a plain 2-D array.
        names = getattr(model, "feature_names_in_", None)
        self.feature_names: tuple[str, ...] | None = (
            None if names is None else tuple(str(name) for name in names)
        )
        self.accepts_ndarray = self.feature_names is None

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Call the model's ``predict_fn`` on ``data``; params are ignored, as in MLflow.

        An array (no ``columns``) for a model fitted with feature names is scored with
        scikit-learn's "no valid feature names" warning silenced for this call only: the
        caller guarantees its columns are the fitted ones, in order.
        """
        if self.feature_names is None or hasattr(data, "columns"):
            return self._method(data)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", NO_FEATURE_NAMES_WARNING, UserWarning)
            return self._method(data)


def force_single_job(model: Any) -> int:
    """Set ``n_jobs = 1`` on ``model`` and every estimator nested in it; return how many."""
    seen: set[int] = set()
    changed = 0
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)):
            stack.extend(obj)
            continue
        if isinstance(obj, dict):
            stack.extend(obj.values())
            continue
        if not hasattr(obj, "get_params"):
            continue
        attrs = vars(obj)
        if "n_jobs" in attrs and attrs["n_jobs"] != 1:
            obj.n_jobs = 1
            changed += 1
        for name, value in attrs.items():
            if name in _FITTED_ATTRS or hasattr(value, "get_params"):
                stack.append(value)
            elif isinstance(value, (list, tuple)) and name in ("transformers", "estimators"):
                stack.append(value)
    return changed


def serialization_format(flavor_conf: Mapping[str, Any]) -> str:
    """The MLmodel's ``serialization_format`` (cloudpickle by default, as in MLflow)."""
    fmt = str(flavor_conf.get("serialization_format") or "cloudpickle")
    if fmt not in SERIALIZATION_FORMATS:
        supported = ", ".join(SERIALIZATION_FORMATS)
        raise ValueError(f"unsupported serialization format {fmt!r}; supported: {supported}")
    return fmt


def read_estimator(path: Path, fmt: str, trusted: list[str]) -> Any:
    """Unpickle (or skops-load) an estimator as ``mlflow.sklearn._load_model_from_local_file``."""
    try:
        return _read(path, fmt, trusted)
    except ModelLoadError:
        raise
    except Exception as exc:  # the library's own error, e.g. skops UntrustedTypesFoundException
        raise ModelLoadError(
            f"cannot load {str(path)!r} ({fmt}): {type(exc).__name__}: {exc}"
        ) from exc


def model_path(config: ModelConfig, model_dir: Path) -> Path:
    """``config["model_file"]`` inside ``model_dir``; it must exist and stay inside."""
    return _inside(model_dir, config["model_file"], "model_file")


def preloaded_path(config: ModelConfig, model_dir: Path) -> Path | None:
    """The build's pickle of the model (``config["preloaded"]``) inside ``model_dir``, or None.

    Unpickling runs code, so the pickle must be one whose sha256 ``files`` lists: the file
    the init's integrity check read.
    """
    preloaded = config.get("preloaded")
    if not preloaded:
        return None
    name = preloaded["file"]
    if config["files"].get(name) != preloaded["sha256"]:
        raise ModelLoadError(
            f"preloaded model {name!r} is not listed in model.json's files with sha256 "
            f"{preloaded['sha256']!r}; the bundle was altered, rebuild it with "
            "`mlflow-lambda package`"
        )
    return _inside(model_dir, name, "preloaded")


def _inside(model_dir: Path, name: str, key: str) -> Path:
    root = Path(model_dir).resolve()
    path = (root / name).resolve()
    if root not in path.parents:
        raise ModelLoadError(f"{key} {name!r} points outside the model directory")
    if not path.is_file():
        raise ModelLoadError(f"model file {str(path)!r} does not exist")
    return path


def _read(path: Path, fmt: str, trusted: list[str]) -> Any:
    if fmt == "skops":
        import skops.io

        # exactly the MLmodel's list, None when it is empty, as mlflow.sklearn passes it
        return skops.io.load(path, trusted=trusted or None)
    with path.open("rb") as f:
        if fmt == "pickle":
            return pickle.load(f)
        if fmt == "cloudpickle":
            import cloudpickle

            return cloudpickle.load(f)
    raise ModelLoadError(
        f"unsupported serialization format {fmt!r}; supported: skops, pickle, cloudpickle"
    )


def load(config: ModelConfig, model_dir: Path) -> SklearnPredictor:
    """Load ``config["model_file"]`` from ``model_dir`` and wrap it for scoring."""
    preloaded = preloaded_path(config, model_dir)
    if preloaded is not None:  # the build's pickle of the skops-loaded estimator
        model = read_estimator(preloaded, "pickle", [])
    else:
        path = model_path(config, model_dir)
        fmt = config["serialization_format"]
        model = read_estimator(path, fmt, list(config.get("skops_trusted_types") or []))
    force_single_job(model)
    return SklearnPredictor(model, config.get("predict_fn") or "predict")
