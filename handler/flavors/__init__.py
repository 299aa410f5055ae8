"""Model loaders, one module per flavor, each importing its library only when called.

Adding a flavor (xgboost, onnx, ...) means one new module here, named after the flavor, with a
``load(config, model_dir) -> Predictor`` function, and one line in :data:`FLAVORS`, the table
the build reads too (``packager.inspection`` picks a model's flavor from it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..config import ModelConfig
from ..errors import UnknownFlavorError


@dataclass(frozen=True)
class Flavor:
    """A flavor the runtime loads natively: a module of this package named after the flavor."""

    loader_module: str  # MLflow's pyfunc loader for it (recorded in model.json)
    distribution: str  # the library that loads the model, installed into the bundle


# Flavor name in the MLmodel -> how it is served. The build reads this table too (which flavor
# a model has, what to install for it), so adding a flavor is one line here and one module.
FLAVORS: dict[str, Flavor] = {
    "sklearn": Flavor(loader_module="mlflow.sklearn", distribution="scikit-learn"),
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


def load_model(config: ModelConfig, model_dir: Path) -> Predictor:
    """Load the model in ``model_dir`` with the loader of ``config["flavor"]``."""
    flavor = config["flavor"]
    if flavor == GENERIC_FLAVOR:  # the generic path
        flavor = "pyfunc"
    elif flavor not in FLAVORS:
        raise UnknownFlavorError(
            f"no runtime loader for flavor {flavor!r}; supported: {', '.join(sorted(FLAVORS))}"
        )
    module = importlib.import_module(f".{flavor}", __name__)
    predictor: Predictor = module.load(config, Path(model_dir))
    return predictor
