"""The OpenAPI 3.1 document written at build time, and ``/openapi.json`` + ``/docs`` serving it.

Every document is checked by a real validator (openapi-spec-validator), and request bodies by
the document's own schema (openapi-schema-validator's 3.1 validator, JSON Schema 2020-12).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from mlflow_lambda.handler.app import create_app
from mlflow_lambda.handler.config import ModelConfig
from mlflow_lambda.handler.docs import SWAGGER_UI_ASSETS, SWAGGER_UI_BASE
from mlflow_lambda.packager.openapi import OPENAPI_FILE, openapi_document, write_openapi
from tests.unit.test_handler_app import COLUMNS, FakePredictor, make_config

IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
IRIS_COLUMNS = [{"type": "double", "name": n, "required": True} for n in IRIS]
MIXED = [
    {"type": "long", "name": "age", "required": True},
    {"type": "double", "name": "income", "required": True},
    {"type": "string", "name": "city", "required": False},
]
TENSOR = [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]
PARAMS = [
    {"name": "alpha", "type": "double", "default": 0.5, "shape": None},
    {"name": "tags", "type": "string", "default": ["a"], "shape": [-1]},
]
EXAMPLE = {"dataframe_split": {"columns": IRIS, "data": [[5.1, 3.5, 1.4, 0.2]]}}


def config_for(inputs: Any, example: Any = None, params: Any = None) -> dict[str, Any]:
    config: dict[str, Any] = dict(make_config(inputs))
    config["signature"] = {"inputs": inputs, "outputs": [{"type": "long"}], "params": params}
    config["input_example"] = example
    return config


def document(config: dict[str, Any]) -> dict[str, Any]:
    doc = openapi_document(config, title="iris", version="3")
    validate(doc)  # raises OpenAPIValidationError on an invalid document
    return doc


def request_validator(doc: dict[str, Any]) -> OAS31Validator:
    """A validator for a scoring body against the document's ScoringRequest schema."""
    # the components ride along so that "#/components/schemas/..." resolves inside the schema
    schema = {"$ref": "#/components/schemas/ScoringRequest", "components": doc["components"]}
    return OAS31Validator(schema)


def test_columns_signature_names_and_types() -> None:
    doc = document(config_for(IRIS_COLUMNS, EXAMPLE))
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "iris"
    schemas = doc["components"]["schemas"]
    split = schemas["Request_dataframe_split"]["properties"]["dataframe_split"]
    assert split["properties"]["columns"]["items"]["enum"] == IRIS
    assert (
        split["properties"]["data"]["items"]["prefixItems"]
        == [{"type": "number", "format": "double"}] * 4
    )
    record = schemas["Request_dataframe_records"]["properties"]["dataframe_records"]["items"]
    assert list(record["properties"]) == IRIS and record["required"] == IRIS
    media = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    assert media["example"] == EXAMPLE
    responses = doc["paths"]["/invocations"]["post"]["responses"]
    assert sorted(responses) == ["200", "400", "413", "415", "500", "504"]
    assert schemas["Error"]["properties"]["error_code"]["enum"] == [
        "BAD_REQUEST", "DEADLINE_EXCEEDED", "INTERNAL_ERROR", "INVALID_PARAMETER_VALUE",
        "REQUEST_LIMIT_EXCEEDED",
    ]  # fmt: skip


def test_the_example_satisfies_the_schema_and_bad_bodies_do_not() -> None:
    doc = document(config_for(MIXED, params=PARAMS))
    validator = request_validator(doc)
    example = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"][
        "example"
    ]  # a row of zeros from the signature: there is no input example
    assert example == {"dataframe_split": {"columns": ["age", "income", "city"],
                                           "data": [[0, 0.0, ""]]}}  # fmt: skip
    good = [
        example,
        {"dataframe_records": [{"age": 3, "income": 1.5}], "params": {"alpha": 0.1}},
        {"inputs": {"age": [1, 2], "income": [0.5, 1.0]}},
        {"instances": [{"age": 1, "income": 2.0, "city": "paris"}]},
    ]
    bad = [
        {"dataframe_records": [{"age": 1.5, "income": 1.0}]},  # a fraction into a long
        {"dataframe_records": [{"income": 1.0}]},  # a required column missing
        {"dataframe_split": {"data": [[1, 2.0, "x"]], "extra": 1}},  # no such key
        {"dataframe_split": {"data": [[1, 2.0, "x"]]}, "inputs": {}},  # two data keys
        {"params": {"alpha": 1.0}},  # no data key
        {"dataframe_records": [{"age": 1, "income": 1.0}], "params": {"alpha": "high"}},
    ]
    assert [validator.is_valid(body) for body in good] == [True] * len(good)
    assert [validator.is_valid(body) for body in bad] == [False] * len(bad)
    alpha = doc["components"]["schemas"]["Params"]["properties"]["alpha"]
    assert alpha == {"type": "number", "format": "double", "default": 0.5}


def test_tensor_signature_shapes() -> None:
    doc = document(config_for(TENSOR))
    validator = request_validator(doc)
    inputs = doc["components"]["schemas"]["Request_inputs"]["properties"]["inputs"]
    assert inputs["items"]["minItems"] == inputs["items"]["maxItems"] == 3
    assert "minItems" not in inputs  # -1: any number of rows
    assert validator.is_valid({"inputs": [[0.1, 0.2, 0.3], [1, 2, 3]]})
    assert not validator.is_valid({"inputs": [[0.1, 0.2]]})
    assert not validator.is_valid({"instances": [["a", 0.2, 0.3]]})
    media = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    assert media["example"] == {"inputs": [[0.0, 0.0, 0.0]]}


def test_no_signature_accepts_any_data_and_has_no_example() -> None:
    doc = document(config_for(None))
    media = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    assert "example" not in media
    assert request_validator(doc).is_valid({"dataframe_split": {"data": [[1, "x"]]}})


def test_written_twice_byte_for_byte(tmp_path: Path) -> None:
    config = config_for(IRIS_COLUMNS, EXAMPLE)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    data = write_openapi(config, [tmp_path / "a", tmp_path / "b"], title="iris", version="3")
    assert (tmp_path / "a" / OPENAPI_FILE).read_bytes() == data
    assert (tmp_path / "b" / OPENAPI_FILE).read_bytes() == data
    assert write_openapi(config, [], title="iris", version="3") == data
    assert json.loads(data) == openapi_document(config, title="iris", version="3")


def test_app_serves_the_file_and_swagger_ui(tmp_path: Path) -> None:
    path = tmp_path / OPENAPI_FILE
    config: ModelConfig = make_config(COLUMNS)
    path.write_bytes(write_openapi(config, [], title="t", version="1"))
    client = TestClient(create_app(FakePredictor(), config, openapi_path=path))
    r = client.get("/openapi.json")
    assert (r.status_code, r.headers["content-type"], r.content) == (
        200, "application/json", path.read_bytes())  # fmt: skip
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name, sha in SWAGGER_UI_ASSETS.items():
        assert f'"{SWAGGER_UI_BASE}{name}" integrity="sha384-{sha}"' in page.text
    assert 'url: "openapi.json"' in page.text  # relative: works under a stage prefix
    assert client.post("/docs").status_code == 405


@pytest.mark.parametrize("path", [None, Path("/nonexistent/openapi.json")])
def test_no_document_is_a_404_that_says_what_to_do(path: Path | None) -> None:
    client = TestClient(create_app(FakePredictor(), make_config(COLUMNS), openapi_path=path))
    r = client.get("/openapi.json")
    assert (r.status_code, r.json()) == (
        404,
        {"detail": "This bundle has no openapi.json; rebuild it with `mlflow-lambda package`."},
    )
