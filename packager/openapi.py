"""The bundle's OpenAPI 3.1 document, written at build time from the model's signature.

``mlflow models serve`` (a FastAPI app since MLflow 3) answers ``GET /openapi.json`` with a
generic schema. Ours describes this model: the column names and types a ``dataframe_split``
or ``dataframe_records`` body carries, the tensor shapes of ``inputs`` / ``instances``, the
params, the predictions and the error body, with the input example (or a row of zeros built
from the signature, as the sample events use) as the request example that Swagger UI's
"Try it out" sends. The runtime serves the file as it is (``handler/app.py``), so a cold
start pays nothing for it.

Types follow MLflow's ``DataType`` (``mlflow/types/schema.py``) mapped to JSON Schema 2020-12,
which OpenAPI 3.1 uses as is; the request forms are those of docs/protocol.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlflow_lambda.handler import __version__
from mlflow_lambda.handler.errors import HTTP_STATUS
from mlflow_lambda.handler.payload import DF_RECORDS, DF_SPLIT, INPUTS, INSTANCES, PARAMS_KEY
from mlflow_lambda.packager.events import scoring_body

OPENAPI_FILE = "openapi.json"
OPENAPI_VERSION = "3.1.0"
Schema = dict[str, Any]

# MLflow DataType -> JSON Schema (binary travels base64-encoded, as in MLflow's JSON).
_COLUMN_TYPES: dict[str, Schema] = {
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "float"},
    "double": {"type": "number", "format": "double"},
    "string": {"type": "string"},
    "binary": {"type": "string", "contentEncoding": "base64"},
    "datetime": {"type": "string", "format": "date-time"},
}


def column_schema(spec: Mapping[str, Any]) -> Schema:
    """JSON Schema of one value of an MLflow column (or array item, object property)."""
    kind = spec.get("type")
    if isinstance(kind, str) and kind in _COLUMN_TYPES:
        return dict(_COLUMN_TYPES[kind])
    if kind == "array":
        return {"type": "array", "items": column_schema(spec.get("items") or {})}
    if kind == "object":
        props = {str(p["name"]): column_schema(p) for p in spec.get("properties") or []}
        required = [str(p["name"]) for p in spec.get("properties") or [] if p.get("required")]
        return {"type": "object", "properties": props, "required": required}
    if kind == "map":
        return {"type": "object", "additionalProperties": column_schema(spec.get("values") or {})}
    if kind == "tensor":
        return tensor_schema(spec.get("tensor-spec") or {})
    return {}  # a type this version does not know: anything


def tensor_schema(spec: Mapping[str, Any], *, batch: bool = True) -> Schema:
    """Nested arrays of a tensor's shape; ``-1`` (the batch dimension) has no fixed length."""
    dtype = str(spec.get("dtype", ""))
    item: Schema = {}
    if dtype.startswith(("int", "uint")):
        item = {"type": "integer"}
    elif dtype.startswith("float"):
        item = {"type": "number"}
    elif dtype.startswith("bool"):
        item = {"type": "boolean"}
    elif dtype in ("str", "object"):
        item = {"type": "string"}
    shape = [int(d) for d in spec.get("shape") or []]
    if not batch:
        shape = shape[1:]
    for dim in reversed(shape):
        item = {"type": "array", "items": item}
        if dim >= 0:
            item |= {"minItems": dim, "maxItems": dim}
    return item | {"description": f"{dtype or 'any'} tensor of shape {tuple(shape)}"}


def _record(columns: list[Mapping[str, Any]]) -> Schema:
    names = [str(c["name"]) for c in columns]
    return {
        "type": "object",
        "properties": {n: column_schema(c) for n, c in zip(names, columns, strict=True)},
        "required": [n for n, c in zip(names, columns, strict=True) if c.get("required", True)],
        "description": "One row; extra keys are dropped.",
    }


def _input_forms(inputs: list[Mapping[str, Any]] | None) -> dict[str, Schema]:
    """The schema of each data key's value, from the signature's inputs."""
    if not inputs:
        anything: Schema = {"description": "The model has no signature: any data."}
        return {k: anything for k in (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)}
    if all(c.get("type") == "tensor" for c in inputs):
        specs = [c.get("tensor-spec") or {} for c in inputs]
        if len(inputs) == 1 and not inputs[0].get("name"):
            batch = tensor_schema(specs[0])
            rows = [batch, batch]
        else:
            names = [str(c.get("name")) for c in inputs]
            batch = {
                "type": "object",
                "properties": {n: tensor_schema(s) for n, s in zip(names, specs, strict=True)},
            }
            row = {
                "type": "object",
                "properties": {
                    n: tensor_schema(s, batch=False) for n, s in zip(names, specs, strict=True)
                },
            }
            rows = [batch, {"type": "array", "items": row}]
        split = {"type": "array", "items": {"type": "array"}, "description": "Rows of the tensor."}
        return {
            DF_SPLIT: {"type": "object", "properties": {"data": split}, "required": ["data"]},
            DF_RECORDS: {"type": "array", "items": {"type": "object"}},
            INSTANCES: rows[1],
            INPUTS: rows[0],
        }
    named = [c for c in inputs if c.get("name")]
    names = [str(c["name"]) for c in named]
    cells = [column_schema(c) for c in inputs]
    record = _record(named) if named else {"type": "object"}
    split_props: Schema = {
        "data": {
            "type": "array",
            "items": {"type": "array", "prefixItems": cells},
            "description": "Rows, their values in the order of `columns`.",
        },
        "index": {"type": "array"},
    }
    if names:
        split_props["columns"] = {"type": "array", "items": {"enum": names}}
    columnar = {
        "type": "object",
        "properties": {
            n: {"type": "array", "items": column_schema(c)}
            for n, c in zip(names, named, strict=True)
        },
    }
    return {
        DF_SPLIT: {
            "type": "object",
            "properties": split_props,
            "required": ["data"],
            "additionalProperties": False,
        },
        DF_RECORDS: {"type": "array", "items": record},
        INSTANCES: {"type": "array", "items": record},
        INPUTS: columnar | {"description": "Column name -> its values."},
    }


def _params(params: list[Mapping[str, Any]] | None) -> Schema:
    if not params:
        return {"type": "object", "description": "The model takes no params; they are ignored."}
    props: dict[str, Schema] = {}
    for p in params:
        prop = column_schema(p)
        if p.get("shape") is not None:
            prop = {"type": "array", "items": prop}
        if p.get("default") is not None:
            prop["default"] = p["default"]
        props[str(p["name"])] = prop
    return {"type": "object", "properties": props, "additionalProperties": True}


def _predictions(outputs: list[Mapping[str, Any]] | None) -> Schema:
    if not outputs:
        return {}
    if len(outputs) == 1 and outputs[0].get("type") == "tensor":
        return tensor_schema(outputs[0].get("tensor-spec") or {})
    if len(outputs) == 1 and not outputs[0].get("name"):
        return {"type": "array", "items": column_schema(outputs[0])}
    return {"type": "array", "items": _record([o for o in outputs if o.get("name")])}


def _request_schemas(signature: Mapping[str, Any]) -> dict[str, Schema]:
    forms = _input_forms(signature.get("inputs"))
    schemas = {
        f"Request_{key}": {
            "type": "object",
            "properties": {key: form, PARAMS_KEY: {"$ref": "#/components/schemas/Params"}},
            "required": [key],
            "additionalProperties": False,
        }
        for key, form in forms.items()
    }
    request: Schema = {
        "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in schemas],
        "description": "Exactly one data key, and optionally `params`.",
    }
    return {"ScoringRequest": request, **schemas}


def _json(schema_ref: str, description: str) -> Schema:
    ref = {"$ref": f"#/components/schemas/{schema_ref}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _error_responses() -> dict[str, Schema]:
    statuses = sorted({*HTTP_STATUS.values(), 415})
    return {str(s): _json("Error", _ERROR_DESCRIPTIONS.get(s, "Error")) for s in statuses}


_ERROR_DESCRIPTIONS = {
    400: "Malformed request, a value the signature refuses, or the model raised on it "
    "(the message then ends with the exception's type and first line)",
    413: "Body over Lambda's 6 MB synchronous payload limit",
    415: "Unsupported Content-Type",
    500: "Internal error (see the function's log)",
    504: "Deadline exceeded",
}


def openapi_document(config: Mapping[str, Any], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for a model's ``model.json`` config."""
    signature = config.get("signature") or {}
    example = scoring_body(config)
    media: Schema = {"schema": {"$ref": "#/components/schemas/ScoringRequest"}}
    if example is not None:
        media["example"] = example
    text = {"type": "string"}
    invocations = {
        "summary": "Score rows with the model",
        "operationId": "invocations",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": media,
                "text/csv": {
                    "schema": text | {"description": "A header row, then one row per line"}
                },
            },
        },
        "responses": {"200": _json("Predictions", "The model's predictions"), **_error_responses()},
    }
    health = {"200": {"description": "Alive", "content": {"application/json": {"schema": text}}}}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": _description(config),
        },
        # Relative to where the document is served, so "Try it out" keeps an API Gateway
        # stage prefix (/Prod/invocations) that a root-relative "/" would drop.
        "servers": [{"url": "."}],
        "paths": {
            "/invocations": {"post": invocations},
            "/ping": {"get": {"summary": "Health check", "responses": health}},
            "/health": {"get": {"summary": "Health check", "responses": health}},
            "/version": {"get": {"summary": "mlflow-lambda's version", "responses": health}},
        },
        "components": {
            "schemas": {
                **_request_schemas(signature),
                "Params": _params(signature.get("params")),
                "Predictions": {
                    "type": "object",
                    "required": ["predictions"],
                    "properties": {"predictions": _predictions(signature.get("outputs"))},
                },
                "Error": {
                    "type": "object",
                    "required": ["error_code", "message"],
                    "properties": {
                        "error_code": {"type": "string", "enum": sorted(HTTP_STATUS)},
                        "message": {"type": "string"},
                    },
                },
            }
        },
    }


def _description(config: Mapping[str, Any]) -> str:
    lines = [
        f"MLflow's scoring protocol for a `{config.get('flavor')}` model "
        f"({config.get('serialization_format')}), packaged by mlflow-lambda {__version__}.",
        "The request schemas come from the model's signature; see docs/protocol.md.",
    ]
    if config.get("run_id"):
        lines.append(f"MLflow run: `{config['run_id']}`.")
    return "\n\n".join(lines)


def write_openapi(
    config: Mapping[str, Any], folders: Iterable[Path], *, title: str, version: str
) -> bytes:
    """Write ``openapi.json`` (sorted keys, so builds are reproducible) into each folder."""
    doc = openapi_document(config, title=title, version=version)
    data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")
    for folder in folders:
        (Path(folder) / OPENAPI_FILE).write_bytes(data)
    return data
