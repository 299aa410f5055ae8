"""The runtime model config (``model.json``) and the integrity check of the model files.

``model.json`` is written at build time by ``packager.inspection`` (its docstring is the
format); the runtime reads it instead of the ``MLmodel`` YAML so that neither PyYAML nor
MLflow has to ship in the bundle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from .errors import ModelConfigError, ModelIntegrityError

# What ``packager.inspection`` writes; the runtime reads exactly this version.
MODEL_CONFIG_VERSION = 1
SUPPORTED_CONFIG_VERSIONS = (MODEL_CONFIG_VERSION,)


class Signature(TypedDict):
    """The MLmodel signature, each part already parsed from its JSON string (or null)."""

    inputs: list[dict[str, Any]] | None
    outputs: list[dict[str, Any]] | None
    params: list[dict[str, Any]] | None


class Preloaded(TypedDict):
    """A model file loaded once at build time and written as a pickle (``packager.preload``).

    ``file`` is listed in ``ModelConfig["files"]`` too, so its sha256 is checked with every
    other model file (in the bundle, or after the fetch from S3) before it is unpickled.
    """

    file: str  # the pickle, relative to the model directory
    sha256: str
    source: str  # the model file it was loaded from (``model_file``), e.g. model.skops
    pickle_protocol: int
    python_version: str  # the bundle's Python that wrote it, e.g. "3.12.1"
    library_version: str  # the bundle's flavor library that wrote it (scikit-learn)


class ModelConfig(TypedDict):
    """``model.json``, format version 1 (see ``packager/inspection.py``)."""

    config_version: int
    flavor: str
    loader_module: str
    model_file: str
    serialization_format: str
    flavor_conf: dict[str, Any]  # the flavor's own MLmodel section, as logged
    skops_trusted_types: list[str]
    predict_fn: str
    python_version: str | None
    mlflow_version: str | None
    flavor_library_version: str | None
    run_id: str | None
    model_id: str | None
    requirements: list[str]
    signature: Signature
    input_example: dict[str, Any] | None
    files: dict[str, str]
    preloaded: Preloaded | None  # absent in older model.json: read as None


_REQUIRED_KEYS = ("config_version", "flavor", "model_file", "serialization_format", "files")


def load_config(path: Path) -> ModelConfig:
    """Read and check ``model.json``; fill optional keys that older writers left out."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelConfigError(
            f"model config {str(path)!r} does not exist; rebuild the bundle with "
            "`mlflow-lambda package`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelConfigError(f"cannot read model config {str(path)!r}: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelConfigError(f"model config {str(path)!r} is not a JSON object")
    missing = [key for key in _REQUIRED_KEYS if key not in raw]
    if missing:
        raise ModelConfigError(f"model config {str(path)!r} lacks required keys {missing!r}")
    if raw["config_version"] not in SUPPORTED_CONFIG_VERSIONS:
        raise ModelConfigError(
            f"model config {str(path)!r} has config_version {raw['config_version']!r}; this "
            f"runtime reads {list(SUPPORTED_CONFIG_VERSIONS)!r}: rebuild the bundle with the "
            "same mlflow-lambda version"
        )
    signature = raw.get("signature") or {}
    raw["signature"] = {
        "inputs": signature.get("inputs"),
        "outputs": signature.get("outputs"),
        "params": signature.get("params"),
    }
    raw.setdefault("loader_module", f"mlflow.{raw['flavor']}")
    raw.setdefault("flavor_conf", {})  # older writers: sklearn only, which needs none of it
    raw.setdefault("skops_trusted_types", [])
    raw.setdefault("predict_fn", "predict")
    raw.setdefault("requirements", [])
    raw.setdefault("input_example", None)
    raw.setdefault("preloaded", None)
    for key in ("python_version", "mlflow_version", "flavor_library_version"):
        raw.setdefault(key, None)
    for key in ("run_id", "model_id"):
        raw.setdefault(key, None)
    config: ModelConfig = raw  # type: ignore[assignment]
    return config


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (the build hashes with the same function)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model_files(model_dir: Path, files: Mapping[str, str]) -> None:
    """Check that every file listed in ``files`` (POSIX path -> sha256) is intact.

    Files present on disk but not listed are not read. Raises :class:`ModelIntegrityError`
    naming the first missing or altered file, in sorted order.
    """
    root = Path(model_dir)
    for name in sorted(files):
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ModelIntegrityError(
                f"model file {name!r} in model.json is not a path inside the model directory"
            )
        path = root / relative
        if not path.is_file():
            raise ModelIntegrityError(
                f"model file {name!r} is missing from {str(root)!r}; the bundle is incomplete, "
                "rebuild it with `mlflow-lambda package`"
            )
        actual = sha256_file(path)
        if actual != files[name]:
            raise ModelIntegrityError(
                f"model file {name!r} has sha256 {actual!r}, expected {files[name]!r}; the "
                "model changed after packaging, rebuild the bundle"
            )
