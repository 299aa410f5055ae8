"""The generic path at build time: models MLflow's own pyfunc serves from ``mlflow-skinny``.

A model whose MLmodel has no flavor of ``handler.flavors.FLAVORS`` but a ``python_function``
flavor (a custom ``PythonModel``, pickled or models-from-code; statsmodels, prophet, pytorch,
...) is bundled with ``mlflow-skinny`` of the version it was logged with plus its own
requirements, and loaded at init by ``mlflow.pyfunc.load_model`` (``handler/flavors/pyfunc.py``).
Its ``code_paths`` and ``artifacts`` are files of the model directory, so they ship with it
and are hashed like every other model file.

``packager.inspection`` asks :func:`generic_fields` for the flavor-specific keys of
``model.json``; ``packager.plan`` asks :func:`generic_requirements` and
:func:`generic_drop_reason` what to install. Why ``mlflow-skinny``, not ``mlflow``: the full
distribution adds the tracking server, its UI and their dependencies (FINDINGS: 461 vs 242 MB
for the README's forest bundle); serving needs only the ``mlflow`` package, which
``mlflow-skinny`` installs whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow_lambda.handler.flavors import FLAVORS, GENERIC_FLAVOR
from mlflow_lambda.packager.errors import UnsupportedFlavorError

PYFUNC = "python_function"
SERIALIZATION = "pyfunc"  # model.json's serialization_format on the generic path
MLFLOW_SKINNY = "mlflow-skinny"
PANDAS_REASON = "mlflow.pyfunc imports pandas (the model is served through MLflow's pyfunc)"
_REPLACED = (
    "replaced by mlflow-skinny of the same version: serving needs MLflow's Python package "
    "only, not its tracking server and UI"
)
# Distributions plan.py leaves out of native bundles that the generic path keeps.
_KEPT = frozenset({MLFLOW_SKINNY, "mlflow-tracing"})
# pyfunc loaders that cannot work in Lambda's Python runtime, and why (one line each).
_REFUSED: dict[str, str] = {
    "mlflow.spark": "Spark models need a JVM and a Spark session, which Lambda's Python "
    "runtime does not have; log the model with another flavor (e.g. ONNX) to serve it here",
}


def is_generic(flavors: dict[str, Any]) -> bool:
    """Whether MLflow's pyfunc is how this MLmodel's ``flavors`` get served here."""
    pyfunc = flavors.get(PYFUNC)
    has_native = any(name in flavors for name in FLAVORS)
    return not has_native and isinstance(pyfunc, dict) and bool(pyfunc.get("loader_module"))


def native_flavor(flavors: dict[str, Any]) -> str:
    """The flavor a user would name: ``statsmodels``, or ``python_function`` for custom code."""
    return next((name for name in sorted(flavors) if name != PYFUNC), PYFUNC)


def _model_file(model_dir: Path, pyfunc: dict[str, Any]) -> str:
    """The file that holds the model: the pickled ``python_model``, the flavor's ``data``, the
    models-from-code file (its recorded path is the logging machine's; the copy sits at the
    model's root), else the MLmodel itself."""
    candidates = [pyfunc.get("python_model"), pyfunc.get("model_path"), pyfunc.get("data")]
    code_path = pyfunc.get("model_code_path")
    if code_path:
        candidates.append(Path(str(code_path)).name)
    for name in candidates:
        if name and (model_dir / str(name)).exists():
            return str(name)
    return "MLmodel"


def generic_fields(model_dir: Path, flavors: dict[str, Any]) -> dict[str, Any]:
    """The flavor-specific keys of ``model.json`` for a model MLflow's pyfunc loads."""
    pyfunc: dict[str, Any] = flavors[PYFUNC]
    loader = str(pyfunc["loader_module"])
    flavor = native_flavor(flavors)
    if loader in _REFUSED:
        raise UnsupportedFlavorError(
            f"unsupported model flavor {flavor!r} (loader {loader!r}): {_REFUSED[loader]}"
        )
    code = pyfunc.get("code")
    if code and not (model_dir / str(code)).is_dir():
        raise UnsupportedFlavorError(
            f"the {flavor!r} model names code_paths directory {code!r}, which is not in "
            f"{str(model_dir)!r}; log the model again with its code_paths"
        )
    conf = flavors.get(flavor) if flavor != PYFUNC else None
    version = conf.get(f"{flavor}_version") if isinstance(conf, dict) else None
    return {
        "flavor": GENERIC_FLAVOR,
        "loader_module": loader,
        "model_file": _model_file(model_dir, pyfunc),
        "serialization_format": SERIALIZATION,
        "skops_trusted_types": [],
        "predict_fn": "predict",  # MLflow's own wrapper reads its predict_fn from the MLmodel
        "flavor_library_version": version,
    }


def generic_requirements(config: dict[str, Any] | Any) -> list[str]:
    """What the generic path adds to the model's own requirements: ``mlflow-skinny`` of the
    MLflow version the model was logged with (the MLmodel's ``mlflow_version``)."""
    version = config.get("mlflow_version")
    return [f"{MLFLOW_SKINNY}=={version}" if version else MLFLOW_SKINNY]


def generic_drop_reason(name: str, reason: str | None) -> str | None:
    """``plan``'s reason to leave ``name`` out of a native bundle, as the generic path sees it:
    ``mlflow`` is replaced by ``mlflow-skinny``, which (with ``mlflow-tracing``) stays, and
    ``pyarrow`` stays when the model lists it (MLflow infers requirements from what loading
    and predicting imported: the statsmodels OLS's ``load_model`` fails without it)."""
    if name == "mlflow":
        return _REPLACED
    if name in _KEPT:
        return None
    if name == "pyarrow":  # the model's own requirement: MLflow saw its loader import it
        return None
    return reason
