"""The endpoint in front of the function: an HTTP API, a REST API, a Function URL or none.

Who may call it (``auth``), how fast (``throttle``, API Gateway only), the function's events
for each route, the template's Outputs, and the lines ``package`` prints about it, so a
user sees before deploying whether what they built is open to the internet.

Throttling is the stage's default route settings (HTTP API ``DefaultRouteSettings``, REST API
``MethodSettings`` on ``/*``): API Gateway answers 429 past the rate, before Lambda bills.
"""

from __future__ import annotations

from typing import Any

from mlflow_lambda.packager.template_options import TemplateOptions

FUNCTION_ID = "ModelFunction"
API_ID = "ModelHttpApi"
REST_API_ID = "ModelRestApi"
REST_STAGE = "prod"  # a REST API needs a named stage; it becomes part of the URL
JWT_AUTHORIZER = "JwtAuthorizer"
# API Gateway's default for a stage when nothing is chosen: enough for interactive use and a
# batch job, low enough that a leaked URL cannot run up much of a bill (README "Choose your
# endpoint"); --throttle RATE,BURST or off.
DEFAULT_THROTTLE: tuple[float, int] = (50.0, 100)

Route = tuple[str, str, str]  # (event name, method, path): template.ROUTES


def _rate(rate: float) -> float | int:
    return int(rate) if float(rate).is_integer() else rate


def events(opts: TemplateOptions, routes: tuple[Route, ...]) -> dict[str, Any] | None:
    """The function's ``Events``: one per route of the API, none without an API."""
    if opts.api == "http":
        kind, key, api_id = "HttpApi", "ApiId", API_ID
    elif opts.api == "rest":
        kind, key, api_id = "Api", "RestApiId", REST_API_ID
    else:
        return None
    # A fresh {"Ref": ...} per route: a shared dict would be dumped as a YAML anchor.
    return {
        name: {"Type": kind, "Properties": {key: {"Ref": api_id}, "Method": method, "Path": path}}
        for name, method, path in routes
    }


def function_url(opts: TemplateOptions) -> dict[str, Any] | None:
    """``FunctionUrlConfig`` for a Function URL (on the alias, when there is one)."""
    if opts.api != "function-url":
        return None
    return {"AuthType": "AWS_IAM" if opts.auth == "iam" else "NONE"}


def _http_api(opts: TemplateOptions) -> dict[str, Any]:
    props: dict[str, Any] = {"Description": f"{opts.description} (MLflow scoring protocol)"}
    if opts.auth == "iam":
        # Every route then needs SigV4-signed requests (SAM HttpApi Auth, EnableIamAuthorizer).
        props["Auth"] = {"DefaultAuthorizer": "AWS_IAM", "EnableIamAuthorizer": True}
    elif opts.auth == "jwt":
        # API Gateway checks the token's signature, issuer, audience and expiry itself
        # (HTTP API "Controlling access with JWT authorizers").
        props["Auth"] = {
            "DefaultAuthorizer": JWT_AUTHORIZER,
            "Authorizers": {
                JWT_AUTHORIZER: {
                    "IdentitySource": "$request.header.Authorization",
                    "JwtConfiguration": {
                        "issuer": opts.jwt_issuer,
                        "audience": list(opts.jwt_audience),
                    },
                }
            },
        }
    if opts.throttle is not None:
        rate, burst = opts.throttle
        props["DefaultRouteSettings"] = {
            "ThrottlingBurstLimit": int(burst),
            "ThrottlingRateLimit": _rate(rate),
        }
    if opts.tags:
        props["Tags"] = dict(opts.tags)
    return {"Type": "AWS::Serverless::HttpApi", "Properties": props}


def _rest_api(opts: TemplateOptions) -> dict[str, Any]:
    props: dict[str, Any] = {
        "Description": f"{opts.description} (MLflow scoring protocol)",
        "EndpointConfiguration": {"Type": "REGIONAL"},
        "Name": {"Fn::Sub": "${AWS::StackName}-model"},
        "StageName": REST_STAGE,
    }
    if opts.auth == "iam":
        # InvokeRole NONE: API Gateway calls the function with its own resource-based
        # permission; SAM's default (CALLER_CREDENTIALS) would also make every caller need
        # lambda:InvokeFunction on it.
        props["Auth"] = {"DefaultAuthorizer": "AWS_IAM", "InvokeRole": "NONE"}
    if opts.throttle is not None:
        rate, burst = opts.throttle
        props["MethodSettings"] = [
            {
                "HttpMethod": "*",
                "ResourcePath": "/*",
                "ThrottlingBurstLimit": int(burst),
                "ThrottlingRateLimit": _rate(rate),
            }
        ]
    if opts.tags:
        props["Tags"] = dict(opts.tags)
    return {"Type": "AWS::Serverless::Api", "Properties": props}


def api_resources(opts: TemplateOptions) -> dict[str, Any]:
    """The API Gateway resource of ``opts.api``, by logical id (none for a URL or no API)."""
    if opts.api == "http":
        return {API_ID: _http_api(opts)}
    if opts.api == "rest":
        return {REST_API_ID: _rest_api(opts)}
    return {}


def outputs(opts: TemplateOptions) -> dict[str, Any]:
    """The template's Outputs: the function, and the URLs to POST scoring requests to."""
    out: dict[str, Any] = {
        "FunctionName": {"Description": "Lambda function name", "Value": {"Ref": FUNCTION_ID}},
        "FunctionArn": {
            "Description": "Lambda function ARN",
            "Value": {"Fn::GetAtt": [FUNCTION_ID, "Arn"]},
        },
    }
    if opts.api in ("http", "rest"):
        api_id = API_ID if opts.api == "http" else REST_API_ID
        base = f"https://${{{api_id}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
        if opts.api == "rest":
            base += f"/{REST_STAGE}"
        kind = "HTTP API" if opts.api == "http" else "REST API"
        out["ApiUrl"] = {"Description": f"{kind} base URL", "Value": {"Fn::Sub": base}}
        url = f"{base}/invocations"
    elif opts.api == "function-url":
        # AWS::Lambda::Url's FunctionUrl ends with "/"; SAM names the resource <Function>Url.
        url = f"${{{FUNCTION_ID}Url.FunctionUrl}}invocations"
    else:
        return out
    out["InvocationsUrl"] = {
        "Description": "POST MLflow scoring requests here",
        "Value": {"Fn::Sub": url},
    }
    return out


_KIND = {
    "http": "API Gateway HTTP API",
    "rest": "API Gateway REST API",
    "function-url": "Lambda Function URL",
}


def describe(opts: TemplateOptions) -> list[str]:
    """What ``package`` prints: who can call the endpoint, how fast, and how it rolls out."""
    if opts.api == "none":
        lines = ["endpoint: none; only IAM principals allowed lambda:InvokeFunction can call it"]
    elif opts.auth == "none":
        lines = [
            f"endpoint: {_KIND[opts.api]}, PUBLIC: anyone who has the URL can call it "
            "(--auth iam or jwt to require credentials)"
        ]
    elif opts.auth == "iam":
        lines = [
            f"endpoint: {_KIND[opts.api]}, private: callers sign requests with AWS IAM (SigV4)"
        ]
    else:
        audience = ", ".join(opts.jwt_audience)
        lines = [
            f"endpoint: {_KIND[opts.api]}, private: callers send a JWT from {opts.jwt_issuer} "
            f"for audience {audience}"
        ]
    if opts.api in ("http", "rest"):
        if opts.throttle is None:
            lines.append("throttling: off (only the account's API Gateway quota applies)")
        else:
            rate, burst = opts.throttle
            lines.append(f"throttling: {_rate(rate)} requests/s, burst {burst} (--throttle)")
    if opts.reserved_concurrency is not None:
        lines.append(f"concurrency: at most {opts.reserved_concurrency} at once (reserved)")
    if opts.rollout is not None:
        lines.append(f"rollout: {opts.rollout} behind alias {opts.alias!r}, rolled back on alarm")
    elif opts.alias is not None:
        lines.append(f"alias: {opts.alias!r} (each deploy publishes a version and moves it)")
    return lines
