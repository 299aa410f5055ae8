"""Sample Lambda events: every shape through the real Mangum, compared as whole responses."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from mangum import Mangum

from mlflow_lambda.packager.events import (
    SHAPES,
    make_event,
    sample_events,
    scoring_body,
    write_events,
)
from mlflow_lambda.packager.importcheck import ModelFacts
from mlflow_lambda.packager.inspection import inspect_model
from tests import mlflow_models as mm

HTTP_SHAPES = [s for s in SHAPES if s != "direct"]
BODY = {"dataframe_split": {"columns": ["x", "y"], "data": [[1.5, "é"]]}}


def _echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/invocations")
    async def invocations(request: Request) -> dict[str, Any]:
        return {
            "body": (await request.body()).decode("utf-8", "backslashreplace"),
            "content_type": request.headers.get("content-type"),
            "host": request.headers.get("host"),
            "method": request.method,
            "path": request.url.path,
        }

    @app.get("/ping")
    async def ping() -> PlainTextResponse:
        return PlainTextResponse("\n")

    return app


@pytest.fixture(scope="module")
def adapter() -> Mangum:
    return Mangum(_echo_app(), lifespan="off")


# Mangum only hands the context to the app in the scope; these apps never read it.
NO_CONTEXT: Any = None


def _invoke(adapter: Mangum, event: dict[str, Any]) -> dict[str, Any]:
    return adapter(event, NO_CONTEXT)


HOSTS = {
    "v1": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
    "v2": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
    "url": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
    "alb": "mlflow-lambda-1234567890.us-east-1.elb.amazonaws.com",
}


def _json_response(shape: str, status: int, payload: Any) -> dict[str, Any]:
    """The response dict Mangum 0.22 builds for a FastAPI JSON answer, per event shape."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    headers = {"content-length": str(len(body.encode())), "content-type": "application/json"}
    if shape in ("v2", "url", "alb"):
        return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}
    return {
        "statusCode": status,
        "headers": headers,
        "multiValueHeaders": {},
        "body": body,
        "isBase64Encoded": False,
    }


def _echo(shape: str, body: str, content_type: str | None) -> dict[str, Any]:
    return {
        "body": body,
        "content_type": content_type,
        "host": HOSTS[shape],
        "method": "POST",
        "path": "/invocations",
    }


@pytest.mark.parametrize("shape", HTTP_SHAPES)
def test_json_invocation_reaches_the_app_unchanged(shape: str, adapter: Mangum) -> None:
    event = make_event(shape, BODY)
    assert event["isBase64Encoded"] is False
    expected = _json_response(shape, 200, _echo(shape, json.dumps(BODY), "application/json"))
    assert _invoke(adapter, event) == expected


@pytest.mark.parametrize("shape", HTTP_SHAPES)
def test_ping_answers_plain_newline(shape: str, adapter: Mangum) -> None:
    event = make_event(shape, None, method="get", path="/ping", content_type=None)
    headers = {"content-length": "1", "content-type": "text/plain; charset=utf-8"}
    expected: dict[str, Any] = {
        "statusCode": 200,
        "headers": headers,
        "body": "\n",
        "isBase64Encoded": False,
    }
    if shape == "v1":
        expected["multiValueHeaders"] = {}
    assert _invoke(adapter, event) == expected


@pytest.mark.parametrize("shape", ["v2", "url", "alb"])
def test_body_without_content_type_is_base64_like_aws(shape: str, adapter: Mangum) -> None:
    event = make_event(shape, BODY, content_type=None)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == json.dumps(BODY).encode()
    assert "content-type" not in event["headers"]
    assert _invoke(adapter, event) == _json_response(
        shape, 200, _echo(shape, json.dumps(BODY), None)
    )


def test_rest_api_keeps_untyped_text_bodies_as_text() -> None:
    event = make_event("v1", "a,b\n1,2\n", content_type=None)
    assert (event["body"], event["isBase64Encoded"]) == ("a,b\n1,2\n", False)


@pytest.mark.parametrize("shape", HTTP_SHAPES)
def test_csv_is_text_and_binary_bytes_are_base64(shape: str, adapter: Mangum) -> None:
    csv = make_event(shape, "x,y\n1,2\n", content_type="text/csv")
    assert (csv["body"], csv["isBase64Encoded"]) == ("x,y\n1,2\n", False)
    raw = b"PAR1\x00\xff\xfe"
    parquet = make_event(shape, raw, content_type="application/vnd.apache.parquet")
    assert (parquet["body"], parquet["isBase64Encoded"]) == ("UEFSMQD//g==", True)
    expected = _echo(shape, "PAR1\x00\\xff\\xfe", "application/vnd.apache.parquet")
    assert _invoke(adapter, parquet) == _json_response(shape, 200, expected)


def test_base64_can_be_forced_either_way() -> None:
    forced = make_event("v1", "{}", base64=True)
    assert (forced["body"], forced["isBase64Encoded"]) == ("e30=", True)
    plain = make_event("v2", "{}", content_type=None, base64=False)
    assert (plain["body"], plain["isBase64Encoded"]) == ("{}", False)
    with pytest.raises(ValueError, match=r"not UTF-8 text; pass base64=True"):
        make_event("alb", b"\xff", base64=False)


def test_rest_api_event_puts_the_stage_in_request_context_only() -> None:
    event = make_event("v1", BODY, stage="dev")
    assert (event["resource"], event["path"], event["httpMethod"]) == (
        "/invocations",
        "/invocations",
        "POST",
    )
    ctx = event["requestContext"]
    assert (ctx["path"], ctx["stage"], ctx["resourcePath"]) == (
        "/dev/invocations",
        "dev",
        "/invocations",
    )
    assert make_event("v1", BODY)["requestContext"]["stage"] == "Prod"
    assert event["multiValueHeaders"] == {k: [v] for k, v in event["headers"].items()}
    assert event["headers"]["Content-Length"] == str(len(json.dumps(BODY).encode()))
    assert "version" not in event  # REST events have none; Mangum would take it for an HTTP API


def test_http_api_named_stage_prefixes_the_path(adapter: Mangum) -> None:
    default = make_event("v2", BODY)
    assert (default["rawPath"], default["requestContext"]["stage"]) == ("/invocations", "$default")
    assert default["routeKey"] == default["requestContext"]["routeKey"] == "POST /invocations"
    named = make_event("v2", BODY, stage="Prod")
    assert named["rawPath"] == named["requestContext"]["http"]["path"] == "/Prod/invocations"
    # Plain Mangum does not know the stage: a named-stage event 404s unless the base path is set.
    assert _invoke(adapter, named) == _json_response("v2", 404, {"detail": "Not Found"})
    based = Mangum(_echo_app(), lifespan="off", api_gateway_base_path="/Prod")
    expected = _echo("v2", json.dumps(BODY), "application/json")
    assert _invoke(based, named) == _json_response("v2", 200, expected)


def test_function_url_and_alb_identify_themselves() -> None:
    url = make_event("url", BODY, stage="ignored")
    ctx = url["requestContext"]
    assert (url["routeKey"], ctx["stage"], ctx["accountId"]) == (
        "$default",
        "$default",
        "anonymous",
    )
    assert ".lambda-url." in ctx["domainName"]
    alb = make_event("alb", None, method="GET", path="/health", content_type=None)
    assert alb["requestContext"]["elb"]["targetGroupArn"].startswith(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/"
    )
    assert (alb["body"], alb["httpMethod"], alb["path"]) == ("", "GET", "/health")
    assert all(k == k.lower() for k in alb["headers"])


def test_headers_override_defaults_case_insensitively() -> None:
    event = make_event("v1", "{}", headers={"content-type": "text/csv", "X-Api-Key": "k"})
    assert event["headers"]["content-type"] == "text/csv"
    assert "Content-Type" not in event["headers"]
    assert event["headers"]["X-Api-Key"] == "k"
    v2 = make_event("v2", "{}", headers={"X-Api-Key": "k"})
    assert v2["headers"]["x-api-key"] == "k"


def test_direct_event_is_the_scoring_body() -> None:
    direct = make_event("direct", BODY)
    assert direct == BODY
    assert direct is not BODY
    assert make_event("direct", json.dumps(BODY).encode()) == BODY
    with pytest.raises(ValueError, match="must be JSON"):
        make_event("direct", "a,b\n1,2")
    with pytest.raises(ValueError, match="must be a JSON object"):
        make_event("direct", "[1, 2]")
    with pytest.raises(ValueError, match=r"always scores \(POST /invocations\), got GET '/ping'"):
        make_event("direct", BODY, method="GET", path="/ping")


def test_bad_arguments_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="unknown event shape 'v3'; choose one of v1, v2, url"):
        make_event("v3", BODY)
    with pytest.raises(ValueError, match="path 'invocations' must start with '/'"):
        make_event("v2", BODY, path="invocations")


EXPECTED_FILES = [
    "invocations-alb.json",
    "invocations-direct.json",
    "invocations-url.json",
    "invocations-v1.json",
    "invocations-v2.json",
    "invocations.json",
    "ping-v2.json",
]


def test_sample_events_from_a_real_model(forest: mm.LoggedModel, adapter: Mangum) -> None:
    config = inspect_model(forest.local_dir)
    example = config["input_example"]
    assert list(example) == ["dataframe_split"]
    events = sample_events(config)
    assert sorted(events) == EXPECTED_FILES
    assert events["invocations-direct.json"] == example
    assert events["invocations.json"] == events["invocations-v2.json"]
    for shape in HTTP_SHAPES:
        event = events[f"invocations-{shape}.json"]
        expected = _echo(shape, json.dumps(example), "application/json")
        assert _invoke(adapter, event) == _json_response(shape, 200, expected)
    assert _invoke(adapter, events["ping-v2.json"])["body"] == "\n"


def test_sample_bodies_from_a_column_signature() -> None:
    inputs = [
        {"type": "double", "name": "income", "required": True},
        {"type": "long", "name": "age", "required": True},
        {"type": "string", "name": "city", "required": True},
        {"type": "boolean", "name": "member", "required": False},
    ]
    config = {"input_example": None, "signature": {"inputs": inputs, "outputs": None}}
    expected = {
        "dataframe_split": {
            "columns": ["income", "age", "city", "member"],
            "data": [[0.0, 0, "", False]],
        }
    }
    assert scoring_body(config) == expected
    assert sample_events(config)["invocations-direct.json"] == expected
    unnamed = {"signature": {"inputs": [{"type": "double"}, {"type": "float"}]}}
    assert scoring_body(unnamed) == {"dataframe_split": {"data": [[0.0, 0.0]]}}


def test_sample_bodies_from_tensor_signatures() -> None:
    one = [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]
    assert scoring_body({"signature": {"inputs": one}}) == {"inputs": [[0.0, 0.0, 0.0]]}
    named = [
        {"type": "tensor", "name": "ids", "tensor-spec": {"dtype": "int32", "shape": [-1, 2, 2]}},
        {"type": "tensor", "name": "flag", "tensor-spec": {"dtype": "bool", "shape": [-1]}},
    ]
    assert scoring_body({"signature": {"inputs": named}}) == {
        "inputs": {"ids": [[[0, 0], [0, 0]]], "flag": [False]}
    }


def test_model_without_example_or_signature_gets_ping_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = sample_events({"input_example": None, "signature": {"inputs": None}})
    assert sorted(events) == ["ping-v2.json"]
    assert "no input example, no signature inputs and no fitted width" in caplog.text


def test_model_known_by_its_fitted_width_gets_a_row_of_zeros() -> None:
    # the user story's model: no example, no signature; the build's check read n_features_in_
    config = {"input_example": None, "signature": {"inputs": None}}
    events = sample_events(config, ModelFacts(n_features=4))
    assert json.loads(events["invocations-v2.json"]["body"]) == {
        "dataframe_split": {"columns": [0, 1, 2, 3], "data": [[0.0, 0.0, 0.0, 0.0]]}
    }
    assert len(events) == 7
    named = scoring_body(config, ModelFacts(2, ["x", "y"]))
    assert named == {"dataframe_split": {"columns": ["x", "y"], "data": [[0.0, 0.0]]}}
    assert scoring_body(config, ModelFacts()) is None
    signed = {"input_example": None, "signature": {"inputs": [{"type": "double", "name": "a"}]}}
    assert scoring_body(signed, ModelFacts(9)) == {  # the signature comes first
        "dataframe_split": {"columns": ["a"], "data": [[0.0]]}
    }


def test_write_events_is_sorted_and_reproducible(tmp_path: Path) -> None:
    config = {"input_example": BODY, "signature": {"inputs": None}}
    paths = write_events(tmp_path, config)
    assert [p.name for p in paths] == EXPECTED_FILES
    assert all(p.parent == tmp_path / "events" for p in paths)
    text = (tmp_path / "events" / "invocations-v1.json").read_text(encoding="utf-8")
    assert text == json.dumps(make_event("v1", BODY), indent=2, sort_keys=True) + "\n"
    first = {p.name: p.read_bytes() for p in paths}
    write_events(tmp_path, config)
    assert {p.name: p.read_bytes() for p in paths} == first
