"""Sample Lambda events for every shape the handler understands.

``make_event`` builds one event as AWS would deliver it; ``sample_events`` and
``write_events`` turn a model's ``model.json`` config into ready-to-use files under
``events/`` for ``mlflow-lambda invoke``, ``sam local invoke`` and the Lambda console.

Shapes and the AWS pages they follow:

- ``v1``: API Gateway REST, Lambda proxy integration (payload 1.0). ``path`` is the
  resource path; the stage appears only in ``requestContext.path`` (``/Prod/invocations``),
  as in the Lambda console's ``apigateway-aws-proxy`` sample event.
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
- ``v2``: HTTP API, payload 2.0. On the ``$default`` stage (what SAM creates) the path has no
  prefix; a *named* stage is put in front of ``rawPath`` and ``requestContext.http.path``
  (aws-powertools/powertools-lambda-python#621, logandk/serverless-wsgi#191).
  https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
- ``url``: Lambda Function URL, payload 2.0 with ``routeKey``/``stage`` ``$default``.
  https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html
- ``alb``: Application Load Balancer target, lowercase ``headers`` (multi-value headers off).
  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/lambda-functions.html
- ``direct``: ``aws lambda invoke`` with the scoring body itself as the event.

Identifiers, times and addresses are fixed (documentation values such as 203.0.113.7 from
RFC 5737) so the files written at build time are byte-for-byte reproducible.
"""

from __future__ import annotations

import base64 as b64
import copy
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from mlflow_lambda.handler.payload import DF_SPLIT, INPUTS
from mlflow_lambda.handler.schema import probe_body
from mlflow_lambda.packager.importcheck import ModelFacts

logger = logging.getLogger(__name__)

Shape = Literal["v1", "v2", "url", "alb", "direct"]
SHAPES: tuple[Shape, ...] = ("v1", "v2", "url", "alb", "direct")

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
API_ID = "a1b2c3d4e5"
URL_ID = "abcdefghijklmnopqrstuvwxyz012345"
TARGET_GROUP_ARN = (
    f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:targetgroup/mlflow-lambda/0123456789abcdef"
)
_REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
_TRACE_ID = "Root=1-67891233-abcdef012345678912345678"
_TIME = "01/Jan/2026:00:00:00 +0000"
_TIME_EPOCH_MS = 1767225600000
_SOURCE_IP = "203.0.113.7"
_USER_AGENT = "curl/8.5.0"

# HTTP APIs, Function URLs and ALBs pass these content types through as text and base64-encode
# every other body, a missing Content-Type included (ALB "Receive events from the load balancer";
# Function URL "Request payload"). REST APIs base64 only binaryMediaTypes, which SAM leaves empty.
TEXT_CONTENT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")

# The stage each API kind gets from SAM when none is declared: REST APIs "Prod",
# HTTP APIs "$default" (AWS::Serverless::Api / AWS::Serverless::HttpApi StageName).
_DEFAULT_STAGE: dict[str, str] = {"v1": "Prod", "v2": "$default"}


def _is_text(content_type: str | None) -> bool:
    if content_type is None:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return any(mime.startswith(t) for t in TEXT_CONTENT_TYPES)


def _raw_body(body: str | bytes | dict[str, Any] | None) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, dict):
        return json.dumps(body).encode("utf-8")
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def _encode_body(
    raw: bytes | None, shape: Shape, content_type: str | None, base64: bool | None
) -> tuple[str | None, bool]:
    """The event's ``body`` string and ``isBase64Encoded`` flag, as AWS would send them."""
    if raw is None:
        return None, False
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if base64 is None:
        base64 = text is None or (shape in ("v2", "url", "alb") and not _is_text(content_type))
    if base64:
        return b64.b64encode(raw).decode("ascii"), True
    if text is None:
        raise ValueError(
            f"body {raw[:16]!r}... is not UTF-8 text; pass base64=True (or leave base64 unset)"
        )
    return text, False


def _merge_headers(defaults: dict[str, str], extra: dict[str, str] | None) -> dict[str, str]:
    """``defaults`` updated by ``extra``, header names compared case-insensitively."""
    merged = dict(defaults)
    for name, value in (extra or {}).items():
        for existing in [k for k in merged if k.lower() == name.lower()]:
            del merged[existing]
        merged[name] = value
    return merged


def _base_headers(host: str, content_type: str | None, raw: bytes | None) -> dict[str, str]:
    headers = {
        "Accept": "*/*",
        "Host": host,
        "User-Agent": _USER_AGENT,
        "X-Amzn-Trace-Id": _TRACE_ID,
        "X-Forwarded-For": _SOURCE_IP,
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    if raw is not None:
        headers["Content-Length"] = str(len(raw))
    return headers


class _Request(NamedTuple):
    method: str
    path: str
    body: str | None  # as the event carries it: text or base64
    is_b64: bool
    headers: dict[str, str]  # with realistic defaults, in the client's casing


def _direct(body: str | bytes | dict[str, Any] | None, method: str, path: str) -> dict[str, Any]:
    if method != "POST" or path != "/invocations":
        raise ValueError(
            f"a direct invoke always scores (POST /invocations), got {method} {path!r}; "
            "use shape 'v2' for other routes"
        )
    raw = _raw_body(body)
    if raw is None:
        raise ValueError("a direct invoke needs a scoring body such as {'dataframe_split': ...}")
    try:
        event = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"a direct invoke's body must be JSON, got {raw[:40]!r}: {exc}") from None
    if not isinstance(event, dict):
        raise ValueError(f"a direct invoke's body must be a JSON object, got {event!r:.60}")
    return event


def make_event(
    shape: str,
    body: str | bytes | dict[str, Any] | None,
    *,
    method: str = "POST",
    path: str = "/invocations",
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
    stage: str | None = None,
    base64: bool | None = None,
) -> dict[str, Any]:
    """One Lambda event of ``shape`` (``v1``, ``v2``, ``url``, ``alb`` or ``direct``).

    ``body``: a dict is JSON-encoded; bytes that are not UTF-8 are base64-encoded.
    ``base64``: ``None`` does what AWS does for the shape (HTTP APIs, Function URLs and ALBs
    base64 bodies whose content type is not text, or missing); ``True``/``False`` force it.
    ``stage``: ``None`` is SAM's default (``Prod`` for REST, ``$default`` for HTTP APIs); a named
    HTTP API stage is prefixed to the path, as AWS does. Function URLs and ALBs have no stage.
    ``headers`` are added to (and override, case-insensitively) realistic defaults. A ``direct``
    event is the JSON body itself, a fresh dict.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown event shape {shape!r}; choose one of {', '.join(SHAPES)}")
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/', e.g. '/invocations'")
    method = method.upper()
    if shape == "direct":
        return _direct(body, method, path)
    raw = _raw_body(body)
    text, is_b64 = _encode_body(raw, shape, content_type, base64)
    if shape == "alb":
        host = f"mlflow-lambda-1234567890.{REGION}.elb.amazonaws.com"
    elif shape == "url":
        host = f"{URL_ID}.lambda-url.{REGION}.on.aws"
    else:
        host = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
    all_headers = _merge_headers(_base_headers(host, content_type, raw), headers)
    request = _Request(method, path, text, is_b64, all_headers)
    if shape == "v1":
        return _v1(request, host, stage or _DEFAULT_STAGE["v1"])
    if shape == "alb":
        return _alb(request)
    return _payload_v2(shape, request, host, stage)


def _v1(req: _Request, host: str, stage: str) -> dict[str, Any]:
    method, path, headers = req.method, req.path, req.headers
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": API_ID,
            "httpMethod": method,
            "identity": {"sourceIp": _SOURCE_IP, "userAgent": _USER_AGENT},
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": _REQUEST_ID,
            "requestTime": _TIME,
            "requestTimeEpoch": _TIME_EPOCH_MS,
            "resourceId": "tj5h2k",
            "resourcePath": path,
            "stage": stage,
        },
        "body": req.body,
        "isBase64Encoded": req.is_b64,
    }


def _payload_v2(shape: Shape, req: _Request, domain: str, stage: str | None) -> dict[str, Any]:
    method, path = req.method, req.path
    if shape == "url":
        api_id, account, stage, route_key = URL_ID, "anonymous", "$default", "$default"
    else:
        api_id, account = API_ID, ACCOUNT_ID
        stage, route_key = stage or _DEFAULT_STAGE["v2"], f"{method} {path}"
    full_path = path if stage == "$default" else f"/{stage}{path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": full_path,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in req.headers.items()},
        "requestContext": {
            "accountId": account,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": api_id,
            "http": {
                "method": method,
                "path": full_path,
                "protocol": "HTTP/1.1",
                "sourceIp": _SOURCE_IP,
                "userAgent": _USER_AGENT,
            },
            "requestId": _REQUEST_ID,
            "routeKey": route_key,
            "stage": stage,
            "time": _TIME,
            "timeEpoch": _TIME_EPOCH_MS,
        },
        "isBase64Encoded": req.is_b64,
    }
    if req.body is not None:  # payload 2.0 leaves "body" out when the request has none
        event["body"] = req.body
    return event


def _alb(req: _Request) -> dict[str, Any]:
    return {
        "requestContext": {"elb": {"targetGroupArn": TARGET_GROUP_ARN}},
        "httpMethod": req.method,
        "path": req.path,
        "queryStringParameters": {},
        "headers": {k.lower(): v for k, v in req.headers.items()},
        "body": req.body or "",  # the load balancer sends "" for a request without a body
        "isBase64Encoded": req.is_b64,
    }


# Zero values for MLflow column types (mlflow.types.schema.DataType, plus Array/Object/Map).
_COLUMN_ZERO: dict[str, Any] = {
    "boolean": False,
    "integer": 0,
    "long": 0,
    "float": 0.0,
    "double": 0.0,
    "string": "",
    "binary": "",
    "datetime": "1970-01-01T00:00:00",
    "array": [],
    "object": {},
    "map": {},
}


def _tensor_zero(spec: dict[str, Any]) -> Any:
    dtype = str(spec.get("dtype", "float64"))
    zero: Any = 0.0
    if dtype.startswith(("int", "uint")):
        zero = 0
    elif dtype.startswith("bool"):
        zero = False
    elif not dtype.startswith("float"):
        zero = ""
    value = zero
    for dim in reversed(list(spec.get("shape") or [])):
        # -1 is the batch (or any variable) dimension: one row is enough for a sample.
        value = [copy.deepcopy(value) for _ in range(1 if int(dim) < 0 else int(dim))]
    return value


def _synthesise(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    if all(col.get("type") == "tensor" for col in inputs):
        tensors = [_tensor_zero(col.get("tensor-spec") or {}) for col in inputs]
        names = [col.get("name") for col in inputs]
        if len(inputs) == 1 and not names[0]:
            return {INPUTS: tensors[0]}
        return {INPUTS: {str(n): t for n, t in zip(names, tensors, strict=True)}}
    row = [copy.deepcopy(_COLUMN_ZERO.get(str(c.get("type")))) for c in inputs]
    split: dict[str, Any] = {"data": [row]}
    names = [col.get("name") for col in inputs]
    if all(names):
        split = {"columns": names, "data": [row]}
    return {DF_SPLIT: split}


def scoring_body(
    config: Mapping[str, Any], facts: ModelFacts | None = None
) -> dict[str, Any] | None:
    """A scoring body for the model: its input example, else one row of zeros from the
    signature, else one row of zeros of the estimator's fitted width (``facts``, read by the
    build's import check: ``n_features_in_``, and ``feature_names_in_`` as column names).

    ``None`` when nothing tells the model's input (MLflow allows that), so no sample can be
    made.
    """
    example = config.get("input_example")
    if isinstance(example, dict) and example:
        return example
    inputs = (config.get("signature") or {}).get("inputs")
    if isinstance(inputs, list) and inputs:
        return _synthesise(inputs)
    if facts is not None and facts.n_features is not None:
        return probe_body(facts.n_features, facts.feature_names)
    return None


def sample_events(
    config: Mapping[str, Any], facts: ModelFacts | None = None
) -> dict[str, dict[str, Any]]:
    """One ready-to-use event per shape, keyed by file name, from a ``model.json`` config
    (and, for a model without an input example or signature, the estimator's ``facts``).

    ``invocations-{v1,v2,url,alb,direct}.json`` POST the model's scoring body;
    ``invocations.json`` is the HTTP API one again (what the SAM template deploys) and
    ``ping-v2.json`` is a health check. A model with neither an input example nor a signature
    nor a known fitted width gets the ping event only (a warning says why).
    """
    events: dict[str, dict[str, Any]] = {
        "ping-v2.json": make_event("v2", None, method="GET", path="/ping", content_type=None)
    }
    body = scoring_body(config, facts)
    if body is None:
        logger.warning(
            "the model has no input example, no signature inputs and no fitted width known "
            "to the build (n_features_in_), so no sample /invocations events were written; "
            "log it with input_example=... to get them"
        )
        return events
    for shape in SHAPES:
        events[f"invocations-{shape}.json"] = make_event(shape, body)
    events["invocations.json"] = copy.deepcopy(events["invocations-v2.json"])
    return events


def write_events(
    outdir: Path, config: Mapping[str, Any], facts: ModelFacts | None = None
) -> list[Path]:
    """Write ``sample_events(config, facts)`` into ``outdir/events/``, sorted keys, indented.

    Returns the written paths, sorted.
    """
    folder = Path(outdir) / "events"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, event in sorted(sample_events(config, facts).items()):
        path = folder / name
        path.write_text(json.dumps(event, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
