"""Model loaders, one module per flavor, each importing its library only when called.

Adding a flavor (xgboost, onnx, ...) means one new module here with a
``load(config, model_dir) -> Predictor`` function, one line in :data:`REGISTRY`, and the
matching entry in ``packager.inspection.SUPPORTED_FLAVORS``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from handler.config import ModelConfig
from handler.errors import UnsupportedFlavorError

# flavor name in model.json -> module holding its ``load`` function
REGISTRY: dict[str, str] = {"sklearn": "handler.flavors.sklearn"}


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
    module_name = REGISTRY.get(flavor)
    if module_name is None:
        raise UnsupportedFlavorError(
            f"no runtime loader for flavor {flavor!r}; supported: {', '.join(sorted(REGISTRY))}"
        )
    module = importlib.import_module(module_name)
    predictor: Predictor = module.load(config, Path(model_dir))
    return predictor
