"""Route every Lambda event shape to the ASGI app, and answer the ones it cannot take.

HTTP-shaped events (API Gateway REST v1, HTTP API v2, Function URLs, ALB) go to Mangum
after the stage prefix is taken off the path. A *direct* invoke — ``aws lambda invoke``
or Step Functions sending a scoring body such as ``{"dataframe_split": ...}`` — is wrapped
into an HTTP API request to ``/invocations`` so it takes exactly the same path, and the
JSON body is returned as the function's result. Anything else gets an error that names
the shapes understood, instead of Mangum's ``RuntimeError``.
"""

from __future__ import annotations

import json
from typing import Any

from .payload import FORMATS
from .types import AsgiAdapter, EventShape, LambdaContext, LambdaEvent, ScoringAnswer

UNDERSTOOD = (
    "API Gateway REST (payload 1.0), HTTP API (payload 2.0), Lambda Function URL, "
    f"ALB, or a direct scoring body with one of the keys {', '.join(FORMATS)}"
)


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


def dispatch(event: Any, context: LambdaContext | None, adapter: AsgiAdapter) -> dict[str, Any]:
    """Answer one Lambda invocation through ``adapter`` (the Mangum-wrapped app)."""
    shape = classify(event)
    if shape is None:
        return dict(unsupported_event_answer(event))
    if shape != "direct":
        return adapter(strip_stage(event, shape), context)
    response = adapter(direct_to_http(event), context)
    answer: dict[str, Any] = json.loads(response["body"])
    return answer
