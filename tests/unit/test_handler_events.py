"""Event shapes through ``handler.events`` and a real Mangum, compared as whole dicts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from mangum import Mangum

from mlflow_lambda.handler.events import classify, dispatch, strip_stage

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return event


@pytest.fixture(scope="module")
def adapter() -> Mangum:
    """An app that echoes what it received, so the routing itself is what is tested."""
    app = FastAPI()

    @app.post("/invocations")
    async def invocations(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse(
            {
                "path": request.url.path,
                "content_type": request.headers.get("content-type"),
                "body": body.decode(),
            }
        )

    return Mangum(app, lifespan="off")


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("apigw-v1.json", "v1"),
        ("apigw-v2.json", "v2"),
        ("function-url.json", "url"),
        ("alb.json", "alb"),
    ],
)
def test_classify_http_shapes(name: str, shape: str) -> None:
    assert classify(load(name)) == shape


@pytest.mark.parametrize(
    ("event", "shape"),
    [
        ({"dataframe_split": {"data": [[1]]}}, "direct"),
        ({"inputs": [[1, 2]], "params": {"k": 1}}, "direct"),
        ({"instances": [1]}, "direct"),
        ({"dataframe_records": []}, "direct"),
        ({"Records": [{"eventSource": "aws:sqs"}]}, None),
        ({"requestContext": {"foo": 1}}, None),
        ([1, 2], None),
        ("hello", None),
        (None, None),
    ],
)
def test_classify_other_events(event: Any, shape: str | None) -> None:
    assert classify(event) == shape


JSON_BODY = (
    '{"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", '
    '"petal length (cm)", "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2], '
    "[6.7, 3.0, 5.2, 2.3]]}}"
)


def test_v1_event_answers_proxy_response(adapter: Mangum) -> None:
    response = dispatch(load("apigw-v1.json"), None, adapter)
    body = json.dumps(
        {"path": "/invocations", "content_type": "application/json", "body": JSON_BODY},
        separators=(",", ":"),
    )
    assert response == {
        "statusCode": 200,
        "headers": {"content-length": str(len(body)), "content-type": "application/json"},
        "multiValueHeaders": {},
        "body": body,
        "isBase64Encoded": False,
    }


def test_v1_stage_prefix_is_stripped(adapter: Mangum) -> None:
    event = load("apigw-v1.json")
    event["path"] = "/Prod/invocations"  # custom domains and proxies keep the stage
    response = dispatch(event, None, adapter)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["path"] == "/invocations"


def test_v2_base64_body_is_decoded(adapter: Mangum) -> None:
    response = dispatch(load("apigw-v2.json"), None, adapter)
    body = json.dumps(
        {"path": "/invocations", "content_type": "application/json", "body": JSON_BODY},
        separators=(",", ":"),
    )
    assert response == {
        "statusCode": 200,
        "headers": {"content-length": str(len(body)), "content-type": "application/json"},
        "body": body,
        "isBase64Encoded": False,
    }


def test_v2_named_stage_is_stripped(adapter: Mangum) -> None:
    event = load("apigw-v2.json")
    event["rawPath"] = "/prod/invocations"
    event["requestContext"]["stage"] = "prod"
    event["requestContext"]["http"]["path"] = "/prod/invocations"
    stripped = strip_stage(event, "v2")
    assert stripped["rawPath"] == "/invocations"
    assert stripped["requestContext"]["http"]["path"] == "/invocations"
    assert event["rawPath"] == "/prod/invocations"  # the caller's event is not modified
    assert json.loads(dispatch(event, None, adapter)["body"])["path"] == "/invocations"


def test_stage_strip_leaves_other_paths_alone() -> None:
    event = load("apigw-v1.json")
    event["path"] = "/Production/invocations"
    assert strip_stage(event, "v1") is event
    event["path"] = "/Prod"
    assert strip_stage(event, "v1")["path"] == "/"


def test_function_url_event(adapter: Mangum) -> None:
    response = dispatch(load("function-url.json"), None, adapter)
    assert response["statusCode"] == 200
    answer = json.loads(response["body"])
    assert answer["content_type"] == "text/csv"
    assert answer["body"].startswith("sepal length (cm),")


def test_alb_event(adapter: Mangum) -> None:
    event = load("alb.json")
    body = json.dumps(
        {"path": "/invocations", "content_type": "application/json", "body": event["body"]},
        separators=(",", ":"),
    )
    assert dispatch(event, None, adapter) == {
        "statusCode": 200,
        "headers": {"content-length": str(len(body)), "content-type": "application/json"},
        "body": body,
        "isBase64Encoded": False,
    }


def test_direct_invoke_returns_the_json_body(adapter: Mangum) -> None:
    event = {"dataframe_split": {"data": [[1, 2]]}, "params": {"k": 1}}
    before = copy.deepcopy(event)
    answer = dispatch(event, None, adapter)
    assert answer == {
        "path": "/invocations",
        "content_type": "application/json",
        "body": json.dumps(before),
    }
    assert event == before


@pytest.mark.parametrize(
    ("event", "got"),
    [
        ({"Records": []}, "an object with keys ['Records']"),
        ([1, 2], "a JSON list"),
        ("x", "a JSON str"),
    ],
)
def test_unknown_event_is_a_clear_error(adapter: Mangum, event: Any, got: str) -> None:
    answer = dispatch(event, None, adapter)
    assert answer["error_code"] == "BAD_REQUEST"
    assert answer["message"].startswith(f"Unsupported event: got {got}. Expected API Gateway")
    assert "dataframe_split" in answer["message"]
