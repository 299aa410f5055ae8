"""Inference ``params``: defaults, unknown keys and types, as MLflow's scoring server.

Mirrors ``mlflow.models.utils._enforce_params_schema`` and ``_enforce_param_datatype``
(MLflow 3.17): missing params take their defaults, unknown keys are dropped, a value of the
wrong type is ``INVALID_PARAMETER_VALUE``. Without a params schema, params are ignored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ScoringError

_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool, np.bool_),
    "integer": (int, np.integer),
    "long": (int, np.integer),
    "float": (float, np.floating, int, np.integer),
    "double": (float, np.floating, int, np.integer),
    "string": (str,),
    "binary": (bytes, bytearray),
}


@dataclass(frozen=True)
class ParamSpec:
    """One inference parameter of the signature's params schema."""

    name: str
    type: str
    default: Any
    shape: tuple[int, ...] | None


class ParamSchema:
    """The ``params`` part of a signature (None: the model takes no params)."""

    def __init__(self, params: list[dict[str, Any]] | None) -> None:
        self.specs: tuple[ParamSpec, ...] | None = None
        if params is not None:
            self.specs = tuple(
                ParamSpec(
                    p["name"],
                    p["type"] if isinstance(p["type"], str) else "object",
                    p.get("default"),
                    tuple(p["shape"]) if p.get("shape") is not None else None,
                )
                for p in params
            )

    def enforce(self, raw: Any) -> dict[str, Any] | None:
        """Fill defaults, drop unknown keys, check types (as ``_enforce_params_schema``)."""
        if self.specs is None:
            return None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ScoringError.invalid_value(
                f"Parameters must be a dictionary. Got type {type(raw).__name__!r}."
            )
        params: dict[str, Any] = {}
        errors: list[str] = []
        for spec in self.specs:
            if spec.name not in raw:
                params[spec.name] = spec.default
                continue
            try:
                params[spec.name] = _param_value(raw[spec.name], spec)
            except ValueError as exc:
                errors.append(f"{spec.name!r}: {exc}")
        if errors:
            raise ScoringError.invalid_value(f"Invalid parameters found: {'; '.join(errors)}")
        return params


def _param_value(value: Any, spec: ParamSpec) -> Any:
    if spec.shape is None:
        return _param_scalar(value, spec.type)
    if not isinstance(value, list) or any(isinstance(v, (list, dict)) for v in value):
        raise ValueError(f"value must be a 1-D list for shape {spec.shape}, got {value!r}")
    return [_param_scalar(v, spec.type) for v in value]


def _param_scalar(value: Any, type_name: str) -> Any:
    if value is None or type_name == "object":
        return value
    if type_name == "datetime":
        try:
            converted = np.datetime64(value).item()
        except ValueError:
            converted = None
        if not isinstance(converted, (dt.date, dt.datetime)):
            raise ValueError(f"cannot convert {value!r} to a datetime")
        return converted
    if isinstance(value, (list, dict)):
        raise ValueError(f"value must be a scalar for type {type_name!r}, got {value!r}")
    allowed = _PARAM_TYPES.get(type_name, ())
    if isinstance(value, bool) and type_name != "boolean":
        allowed = ()
    ok = isinstance(value, allowed)  # a flag, not a narrowing: value stays Any for mypy
    if not ok:
        raise ValueError(f"cannot safely convert {type(value).__name__} {value!r} to {type_name!r}")
    if type_name in ("float", "double"):
        return float(value)  # a Python float, as MLflow passes it
    if type_name in ("integer", "long"):
        return int(value)
    return value
