"""Model loaders, one module per flavor, each importing its library only when called.

Adding a flavor means one new module here, named after the flavor, with a
``load(config, model_dir) -> Predictor`` function and a ``serialization_format(flavor_conf)``
function (how the model file is stored, read from the flavor's own MLmodel section, which the
build records in ``model.json`` as ``flavor_conf``), and one line in :data:`FLAVORS`, the table
the build reads too (``packager.inspection`` picks a model's flavor from it and calls
``serialization_format``, so the build and the runtime read the MLmodel keys the same way).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from ..config import ModelConfig
from ..errors import UnknownFlavorError


@dataclass(frozen=True)
class Flavor:
    """A flavor the runtime loads natively: a module of this package named after the flavor."""

    loader_module: str  # MLflow's pyfunc loader for it (recorded in model.json)
    distribution: str  # the library that loads the model, installed into the bundle
    # The key of the flavor's MLmodel section that records ``distribution``'s version (the
    # pin when the requirements lack it); None when the recorded version is another library's
    # (onnx records ``onnx_version``, but the runtime loads with onnxruntime).
    version_key: str | None = None


# Flavor name in the MLmodel -> how it is served. The build reads this table too (which flavor
# a model has, what to install for it), so adding a flavor is one line here and one module.
# The MLmodel keys are those of mlflow/<flavor>/__init__.py's ``add_flavor`` call (MLflow 3.17).
FLAVORS: dict[str, Flavor] = {
    "sklearn": Flavor("mlflow.sklearn", "scikit-learn", "sklearn_version"),
    "xgboost": Flavor("mlflow.xgboost", "xgboost", "xgb_version"),
    "lightgbm": Flavor("mlflow.lightgbm", "lightgbm", "lgb_version"),
    "onnx": Flavor("mlflow.onnx", "onnxruntime"),
    "catboost": Flavor("mlflow.catboost", "catboost", "catboost_version"),
}
# Every other model with a python_function flavor: MLflow's own pyfunc loads it from the
# bundle's mlflow-skinny (the generic path: flavors/pyfunc.py, packager/generic.py).
GENERIC_FLAVOR = "python_function"


class Predictor(Protocol):
    """What the app scores with: ``predict(data, params)``.

    ``data`` is what MLflow's pyfunc layer would hand the model after signature
    enforcement (a DataFrame for column signatures, a numpy array for tensors). A predictor
    may also define (the app reads both with ``getattr``):

    - ``accepts_ndarray = True`` to receive a 2-D float array instead of a DataFrame when
      every signature column has the same float type;
    - ``feature_names``: the column names the model was fitted with, in order (or None).
      Without pandas installed, a model whose signature columns are all numeric gets a 2-D
      array in signature order; the app checks these names equal the signature's, and the
      predictor must accept such an array (scikit-learn: silence the feature-name warning).
    """

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        """Score ``data``; ``params`` is the enforced params dict, or None without a schema."""
        ...


def flavor_module(flavor: str) -> ModuleType:
    """The loader module of ``flavor`` (importing it imports no model library)."""
    if flavor == GENERIC_FLAVOR:  # the generic path: MLflow's own pyfunc (flavors/pyfunc.py)
        flavor = "pyfunc"
    elif flavor not in FLAVORS:
        raise UnknownFlavorError(
            f"no runtime loader for flavor {flavor!r}; supported: {', '.join(sorted(FLAVORS))}"
        )
    return importlib.import_module(f".{flavor}", __name__)


def serialization_format(flavor: str, flavor_conf: Mapping[str, Any]) -> str:
    """How a ``flavor`` model's file is stored, from its MLmodel section (ValueError if unknown)."""
    fmt: str = flavor_module(flavor).serialization_format(flavor_conf)
    return fmt


def load_model(config: ModelConfig, model_dir: Path) -> Predictor:
    """Load the model in ``model_dir`` with the loader of ``config["flavor"]``."""
    module = flavor_module(config["flavor"])
    predictor: Predictor = module.load(config, Path(model_dir))
    return predictor
