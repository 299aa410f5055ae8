"""Read an MLflow model directory once, at build time, into ``model.json``.

The runtime reads this small JSON file instead of the ``MLmodel`` YAML, so the
bundle needs neither PyYAML nor MLflow. The format (``MODEL_CONFIG_VERSION`` 1)::

    {
      "config_version": 1,
      "flavor": "sklearn",                   # key of handler.flavors.FLAVORS
      "loader_module": "mlflow.sklearn",
      "model_file": "model.skops",           # relative to the model directory
      "serialization_format": "skops",       # the flavor module's serialization_format(...):
                                             # skops | pickle | cloudpickle (sklearn, lightgbm's
                                             # sklearn API), xgb | json | ubj (xgboost),
                                             # lgb (a lightgbm Booster), cbm | ... (catboost), onnx
      "flavor_conf": {"pickled_model": ...}, # the flavor's own MLmodel section, as logged
                                             # (absent in older model.json: read as {})
      "skops_trusted_types": ["sklearn.tree._tree.Tree"],
      "predict_fn": "predict",
      "python_version": "3.11.7",
      "mlflow_version": "3.17.2",
      "flavor_library_version": "1.9.1",     # FLAVORS[flavor].version_key, e.g. sklearn_version
      "run_id": "...", "model_id": "...",
      "requirements": ["numpy==2.4.6", ...],  # the model's requirements.txt, as logged
      "signature": {"inputs": [...] | null, "outputs": [...] | null, "params": [...] | null},
      "input_example": {...} | null,          # a scoring body, e.g. {"dataframe_split": ...}
      "files": {"MLmodel": "<sha256>", ...},  # every file of the model directory
      "preloaded": {"file": "model.preloaded.pkl", "sha256": ..., ...} | null
                                              # a skops model's build-time pickle
                                              # (packager/preload.py; absent: null)
    }
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from mlflow_lambda.handler.config import MODEL_CONFIG_VERSION, ModelConfig, Signature, sha256_file
from mlflow_lambda.handler.flavors import FLAVORS, GENERIC_FLAVOR, serialization_format
from mlflow_lambda.handler.flavors.sklearn import SERIALIZATION_FORMATS
from mlflow_lambda.packager.errors import ModelInspectionError, UnsupportedFlavorError
from mlflow_lambda.packager.generic import generic_fields, is_generic

__all__ = [
    "SERIALIZATION_FORMATS",
    "hash_model_files",
    "inspect_model",
    "save_model_config",
    "write_model_config",
]


def hash_model_files(model_dir: Path) -> dict[str, str]:
    """Map every file under ``model_dir`` (POSIX relative path) to its sha256, sorted."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    return {p.relative_to(model_dir).as_posix(): sha256_file(p) for p in files}


def _load_mlmodel(model_dir: Path) -> dict[str, Any]:
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise ModelInspectionError(
            f"{str(model_dir)!r} is not an MLflow model directory: it has no MLmodel file"
        )
    try:
        data = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ModelInspectionError(f"cannot parse {str(mlmodel)!r}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise ModelInspectionError(f"{str(mlmodel)!r} has no 'flavors' mapping")
    return data


def _pick_flavor(flavors: dict[str, Any]) -> str:
    for name in FLAVORS:
        if name in flavors:
            return name
    if is_generic(flavors):  # MLflow's own pyfunc serves it (packager/generic.py)
        return GENERIC_FLAVOR
    pyfunc = flavors.get("python_function") or {}
    loader = pyfunc.get("loader_module")
    found = sorted(k for k in flavors if k != "python_function")
    raise UnsupportedFlavorError(
        f"unsupported model flavor {', '.join(found) or loader!r} (loader {loader!r}); "
        f"supported flavors: {', '.join(sorted(FLAVORS))}"
    )


def _library_version(flavor: str, conf: dict[str, Any]) -> str | None:
    key = FLAVORS[flavor].version_key
    version = conf.get(key) if key else None
    return str(version) if version else None


def _parse_signature(raw: Any) -> Signature:
    """The MLmodel's signature, each part parsed from the JSON string MLflow stores."""
    parts: dict[str, Any] = {}
    for key in ("inputs", "outputs", "params"):
        value = raw.get(key) if isinstance(raw, dict) else None
        try:
            parts[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError as exc:
            raise ModelInspectionError(
                f"MLmodel signature {key!r} is not valid JSON: {exc}"
            ) from None
    return Signature(inputs=parts["inputs"], outputs=parts["outputs"], params=parts["params"])


def _read_input_example(model_dir: Path, mlmodel: dict[str, Any]) -> dict[str, Any] | None:
    info = mlmodel.get("saved_input_example_info") or {}
    serving = info.get("serving_input_path")
    if serving and (model_dir / serving).is_file():
        example = json.loads((model_dir / serving).read_text(encoding="utf-8"))
        return example if isinstance(example, dict) else None
    return None


def _read_requirements(model_dir: Path) -> list[str]:
    path = model_dir / "requirements.txt"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def inspect_model(model_dir: Path) -> ModelConfig:
    """Return the runtime model config for the MLflow model in ``model_dir``.

    Fails with :class:`UnsupportedFlavorError` for a flavor the runtime cannot load,
    so a bad model is caught at build time, never at request time.
    """
    model_dir = Path(model_dir)
    mlmodel = _load_mlmodel(model_dir)
    flavors: dict[str, Any] = mlmodel["flavors"]
    flavor = _pick_flavor(flavors)
    pyfunc = flavors.get("python_function") or {}
    if flavor == GENERIC_FLAVOR:  # the generic path (packager/generic.py)
        specific = {**generic_fields(model_dir, flavors), "flavor_conf": {}}
    else:
        specific = _native_fields(model_dir, flavors, flavor)
    config: ModelConfig = {
        "config_version": MODEL_CONFIG_VERSION,
        **specific,  # type: ignore[typeddict-item]
        "python_version": pyfunc.get("python_version"),
        "mlflow_version": mlmodel.get("mlflow_version"),
        "run_id": mlmodel.get("run_id"),
        "model_id": mlmodel.get("model_id"),
        "requirements": _read_requirements(model_dir),
        "signature": _parse_signature(mlmodel.get("signature")),
        "input_example": _read_input_example(model_dir, mlmodel),
        "files": hash_model_files(model_dir),
        "preloaded": None,  # packager.preload fills it in once the bundle's Python has run
    }
    return config


def _native_fields(model_dir: Path, flavors: dict[str, Any], flavor: str) -> dict[str, Any]:
    """The flavor-specific keys of ``model.json`` for a flavor with a native loader."""
    conf = flavors[flavor] or {}
    pyfunc = flavors.get("python_function") or {}
    try:
        fmt = serialization_format(flavor, conf)
    except ValueError as exc:
        raise UnsupportedFlavorError(f"{flavor} model: {exc}") from None
    # sklearn names its file pickled_model, xgboost/lightgbm/onnx/catboost data (the pyfunc
    # section repeats it as model_path or data)
    model_file = (
        conf.get("pickled_model")
        or conf.get("data")
        or pyfunc.get("model_path")
        or pyfunc.get("data")
    )
    if not model_file or not (model_dir / model_file).is_file():
        raise ModelInspectionError(
            f"model file {model_file!r} named in {str(model_dir / 'MLmodel')!r} does not exist"
        )
    if conf.get("code"):
        raise UnsupportedFlavorError(
            f"models logged with code_paths ({conf['code']!r}) are not supported yet"
        )
    return {
        "flavor": flavor,
        "loader_module": pyfunc.get("loader_module", FLAVORS[flavor].loader_module),
        "model_file": model_file,
        "serialization_format": fmt,
        "flavor_conf": dict(conf),
        "skops_trusted_types": list(conf.get("skops_trusted_types") or []),
        "predict_fn": pyfunc.get("predict_fn") or "predict",
        "flavor_library_version": _library_version(flavor, conf),
    }


def write_model_config(model_dir: Path, dest: Path) -> ModelConfig:
    """Inspect ``model_dir`` and write ``model.json`` to ``dest`` (sorted keys, stable bytes)."""
    config = inspect_model(model_dir)
    save_model_config(config, dest)
    return config


def save_model_config(config: ModelConfig, dest: Path) -> None:
    """Write ``config`` to ``dest`` as ``model.json`` (sorted keys, stable bytes)."""
    dest.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
