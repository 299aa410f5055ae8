"""Route every Lambda event shape to the ASGI app, and answer the ones it cannot take.

HTTP-shaped events (API Gateway REST v1, HTTP API v2, Function URLs, ALB) go to Mangum
after the stage prefix is taken off the path. A *direct* invoke — ``aws lambda invoke``
or Step Functions sending a scoring body such as ``{"dataframe_split": ...}`` — is wrapped
into an HTTP API request to ``/invocations`` so it takes exactly the same path, and the
JSON body is returned as the function's result. Anything else gets an error that names
the shapes understood, instead of Mangum's ``RuntimeError``.

A broken HTTP-shaped event (a header that is not a string, a method that is a list, a body
marked base64 that is not) answers 400 with a JSON error naming the field, in the response
shape of the event, instead of a Lambda function error with a traceback (Mangum reads the
fields without checking them: ``AttributeError``, ``KeyError``, ``binascii.Error``) or a
500 from inside the app. Absent-or-null collections (``headers: null``, a null query string)
are read as empty, as API Gateway sends them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .errors import BAD_REQUEST
from .payload import FORMATS
from .types import AsgiAdapter, EventShape, LambdaContext, LambdaEvent, ScoringAnswer

UNDERSTOOD = (
    "API Gateway REST (payload 1.0), HTTP API (payload 2.0), Lambda Function URL, "
    f"ALB, or a direct scoring body with one of the keys {', '.join(FORMATS)}"
)


SHAPE_NAMES = {
    "v1": "API Gateway REST (payload 1.0)",
    "v2": "HTTP API (payload 2.0)",
    "url": "Lambda Function URL",
    "alb": "ALB",
}
_log = logging.getLogger("mlflow_lambda.events")
# fields Mangum iterates: str -> str, or str -> list of str (multi-value); null means empty
_STR_MAPS = ("headers", "queryStringParameters")
_LIST_MAPS = ("multiValueHeaders", "multiValueQueryStringParameters")


def classify(event: Any) -> EventShape | None:
    """Name the shape of ``event``, or ``None`` when the handler does not understand it."""
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext")
    if isinstance(context, dict):
        if "elb" in context and "httpMethod" in event:
            return "alb"
        if event.get("version") == "2.0" and isinstance(context.get("http"), dict):
            domain = str(context.get("domainName", ""))
            return "url" if ".lambda-url." in domain else "v2"
        if "httpMethod" in event and "path" in event:
            return "v1"
        return None
    if any(key in event for key in FORMATS):
        return "direct"
    return None


def _strip_prefix(path: str, stage: str) -> str:
    prefix = f"/{stage}"
    if path == prefix:
        return "/"
    return path[len(prefix) :] if path.startswith(prefix + "/") else path


def strip_stage(event: LambdaEvent, shape: EventShape) -> LambdaEvent:
    """Take a stage prefix (``/Prod/invocations``) off the request path.

    REST APIs reached through a custom domain or a proxy, and HTTP APIs on a named
    stage, put the stage in front of the route; MLflow's routes have no prefix.
    """
    context = event.get("requestContext") or {}
    stage = context.get("stage")
    if not stage or stage == "$default":
        return event
    if shape == "v1":
        path = str(event.get("path", ""))
        stripped = _strip_prefix(path, stage)
        return event if stripped == path else {**event, "path": stripped}
    if shape in ("v2", "url"):
        http = context["http"]
        stripped = _strip_prefix(str(http.get("path", "")), stage)
        if stripped == http.get("path"):
            return event
        return {
            **event,
            "rawPath": _strip_prefix(str(event.get("rawPath", stripped)), stage),
            "requestContext": {**context, "http": {**http, "path": stripped}},
        }
    return event


def direct_to_http(body: LambdaEvent) -> LambdaEvent:
    """An HTTP API (2.0) request that POSTs ``body`` as JSON to ``/invocations``."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/invocations",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {
                "method": "POST",
                "path": "/invocations",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "direct-invoke",
            },
            "stage": "$default",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def unsupported_event_answer(event: Any) -> ScoringAnswer:
    """The answer to an event of no known shape: what was received and what is understood."""
    if isinstance(event, dict):
        got = f"an object with keys {sorted(event)[:10]!r}"
    else:
        got = f"a JSON {type(event).__name__}"
    return {
        "error_code": "BAD_REQUEST",
        "message": f"Unsupported event: got {got}. Expected {UNDERSTOOD}.",
    }


def _check_map(event: LambdaEvent, key: str, multi: bool) -> str | None:
    value = event.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"{key!r} must be an object, got {type(value).__name__}"
    for name, item in value.items():
        items = item if multi and isinstance(item, list) else [item] if not multi else None
        if not isinstance(name, str) or items is None or not all(isinstance(i, str) for i in items):
            want = "a list of strings" if multi else "a string"
            return f"{key}[{name!r}] must be {want}, got {item!r:.60}"
    return None


def malformed(event: LambdaEvent, shape: EventShape) -> str | None:
    """What in an HTTP-shaped ``event`` cannot be read as a request, or None if nothing."""
    for key in _STR_MAPS + _LIST_MAPS:
        problem = _check_map(event, key, key in _LIST_MAPS)
        if problem:
            return problem
    body = event.get("body")
    if body is not None and not isinstance(body, str):
        return f"'body' must be a string or null, got {type(body).__name__}"
    if not isinstance(event.get("isBase64Encoded", False), (bool, type(None))):
        return f"'isBase64Encoded' must be true or false, got {event['isBase64Encoded']!r:.40}"
    if shape in ("v1", "alb"):
        for key in ("httpMethod", "path"):
            if not isinstance(event.get(key), str):
                return f"{key!r} must be a string, got {event.get(key)!r:.60}"
        identity = (event.get("requestContext") or {}).get("identity")
        if identity is not None and not isinstance(identity, dict):
            return f"requestContext.identity must be an object, got {identity!r:.60}"
        return None
    http = event["requestContext"]["http"]
    for key in ("method", "path", "sourceIp"):
        if not isinstance(http.get(key), str):
            return f"requestContext.http.{key} must be a string, got {http.get(key)!r:.60}"
    for key in ("rawPath", "rawQueryString"):
        if not isinstance(event.get(key, ""), (str, type(None))):
            return f"{key!r} must be a string, got {event[key]!r:.60}"
    cookies = event.get("cookies")
    if cookies is not None and not (
        isinstance(cookies, list) and all(isinstance(c, str) for c in cookies)
    ):
        return f"'cookies' must be a list of strings, got {cookies!r:.60}"
    return None


def _normalized(event: LambdaEvent, shape: EventShape) -> LambdaEvent:
    """``event`` with null collections read as empty, as Mangum needs them."""
    fixes: dict[str, Any] = {}
    for key in _STR_MAPS + _LIST_MAPS:
        if key in event and event[key] is None:
            fixes[key] = {}
    if shape == "alb" and "headers" not in event and "multiValueHeaders" not in event:
        fixes["headers"] = {}
    if shape in ("v2", "url"):
        fixes.update({key: "" for key in ("rawPath", "rawQueryString") if event.get(key) is None})
        if fixes.get("rawPath") == "":
            fixes["rawPath"] = event["requestContext"]["http"]["path"]
    return {**event, **fixes} if fixes else event


def http_error(event: LambdaEvent, shape: EventShape, message: str) -> dict[str, Any]:
    """A 400 JSON error in the proxy response format of ``shape``."""
    body = json.dumps({"error_code": BAD_REQUEST, "message": message})
    response: dict[str, Any] = {"statusCode": 400, "body": body, "isBase64Encoded": False}
    if shape == "alb" and isinstance(event.get("multiValueHeaders"), dict):
        # an ALB with multi-value headers on takes only multiValueHeaders in the response
        response["multiValueHeaders"] = {"content-type": ["application/json"]}
    else:
        response["headers"] = {"content-type": "application/json"}
    if shape == "alb":
        response["statusDescription"] = "400 Bad Request"
    return response


def _bad_event(shape: EventShape, problem: str) -> str:
    return (
        f"Malformed {SHAPE_NAMES[shape]} event: {problem}. Send the event as AWS does, or "
        "invoke the function directly with a scoring body."
    )


def dispatch(event: Any, context: LambdaContext | None, adapter: AsgiAdapter) -> dict[str, Any]:
    """Answer one Lambda invocation through ``adapter`` (the Mangum-wrapped app)."""
    shape = classify(event)
    if shape is None:
        return dict(unsupported_event_answer(event))
    if shape != "direct":
        problem = malformed(event, shape)
        if problem is not None:
            return http_error(event, shape, _bad_event(shape, problem))
        try:
            return adapter(strip_stage(_normalized(event, shape), shape), context)
        except Exception as exc:  # the boundary: Mangum refusing an event (the app never raises)
            _log.exception("could not read the %s event", shape)
            problem = f"{type(exc).__name__}: {exc!s:.200}"
            return http_error(event, shape, _bad_event(shape, problem))
    response = adapter(direct_to_http(event), context)
    try:
        answer: dict[str, Any] = json.loads(response["body"])
    except (ValueError, TypeError, KeyError):  # not our JSON: report it, not a traceback
        _log.error("the app answered a direct invoke with %r", response)
        return {"error_code": "INTERNAL_ERROR", "message": "Internal error; see the logs."}
    return answer
