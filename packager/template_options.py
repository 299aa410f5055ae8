"""What the SAM template depends on (:class:`TemplateOptions`) and the mixes AWS would refuse.

``check_options`` raises :class:`TemplateError` with one line naming the bad value and what to
do instead, before anything is rendered, so ``package`` fails in a second rather than after
a ten-minute CloudFormation rollback. Each limit cites the AWS page it comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mlflow_lambda.handler import ENTRY_POINT
from mlflow_lambda.packager.errors import TemplateError

ApiKind = Literal["http", "rest", "function-url", "none"]
AuthKind = Literal["none", "iam", "jwt"]
API_KINDS: tuple[ApiKind, ...] = ("http", "rest", "function-url", "none")
AUTH_KINDS: tuple[AuthKind, ...] = ("none", "iam", "jwt")
GATEWAY_APIS = ("http", "rest")  # API Gateway: throttling and a 29-30 s integration timeout

# The API Gateway integration timeout is at most 29 s (REST) / 30 s (HTTP APIs) (API Gateway
# quotas); a function that stops first gives the client our error instead of a bare 503/504.
HTTP_API_TIMEOUT_S = 30
DEFAULT_TIMEOUT_S = 28
MAX_TIMEOUT_S = 900
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10240

# SnapStart runs on Python 3.12 and later managed runtimes, zip packages only, and not
# together with provisioned concurrency.
# https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html ("Supported features and
# limitations": Java 11+, Python 3.12+, .NET 8+; no container images, no provisioned concurrency)
SNAPSTART_MIN_PYTHON = (3, 12)

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy, retentionInDays).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)  # fmt: skip
# Lambda sets these itself; a function may not (Lambda "Defined runtime environment variables").
RESERVED_ENV = {"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_EXECUTION_ENV",
                "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
                "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}  # fmt: skip
OWN_ENV = ("MODEL_DIR", "MODEL_S3_URI")  # set by the build from --model-location
ENV_LIMIT_BYTES = 4096  # all keys and values of one function (Lambda quotas)
MAX_TAGS = 50  # per resource (Lambda TagResource)
MAX_SUBNETS, MAX_SECURITY_GROUPS = 16, 5  # Lambda VpcConfig
# Lambda alias names: 1-128 of [A-Za-z0-9_-], not all digits (CreateAlias, Name pattern).
_ALIAS = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}")
_ENV_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

# --rollout NAME -> SAM DeploymentPreference Type (CodeDeploy's predefined Lambda configs).
ROLLOUTS: dict[str, str] = {
    "all-at-once": "AllAtOnce",
    "canary-10-5m": "Canary10Percent5Minutes",
    "canary-10-10m": "Canary10Percent10Minutes",
    "canary-10-15m": "Canary10Percent15Minutes",
    "canary-10-30m": "Canary10Percent30Minutes",
    "linear-10-1m": "Linear10PercentEvery1Minute",
    "linear-10-2m": "Linear10PercentEvery2Minutes",
    "linear-10-3m": "Linear10PercentEvery3Minutes",
    "linear-10-10m": "Linear10PercentEvery10Minutes",
}


@dataclass(frozen=True)
class TemplateOptions:
    """Everything the template depends on; defaults give an HTTP API in front of a zip."""

    function_name: str | None = None  # physical FunctionName; None lets CloudFormation name it
    runtime: str = "python3.12"
    arch: Literal["x86_64", "arm64"] = "x86_64"
    handler: str = ENTRY_POINT
    package_type: Literal["zip", "image"] = "zip"
    code_uri: str = "bundle.zip"  # zip: local path for `sam deploy`, or s3://bucket/key
    image_uri: str | None = None  # image: an ECR URI; None leaves it to `sam build`
    dockerfile: str = "Dockerfile"
    docker_context: str = "."
    docker_tag: str = "latest"
    memory_mb: int = 1024
    timeout_s: int = DEFAULT_TIMEOUT_S
    api: ApiKind = "http"
    auth: AuthKind = "none"
    jwt_issuer: str | None = None  # auth "jwt": the token issuer (an https:// URL)
    jwt_audience: tuple[str, ...] = ()  # auth "jwt": accepted audiences (client ids)
    throttle: tuple[float, int] | None = None  # API Gateway (requests per second, burst)
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None
    snapstart: bool = False
    environment: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    log_retention_days: int | None = None  # None: CloudWatch keeps the logs forever
    vpc_subnets: tuple[str, ...] = ()
    vpc_security_groups: tuple[str, ...] = ()
    alias: str | None = None  # a Lambda alias the endpoint calls (SAM AutoPublishAlias)
    rollout: str | None = None  # a ROLLOUTS key: how a new version replaces the alias's
    model_s3_uri: str | None = None  # MODEL_S3_URI: the handler fetches the model at cold start
    model_dir: str | None = None  # MODEL_DIR: where the handler loads (or fetches) the model
    description: str = "MLflow model served by mlflow-lambda"


def python_version(runtime: str) -> tuple[int, int]:
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    if not match:
        raise TemplateError(f"runtime {runtime!r} is not a Lambda Python runtime like 'python3.12'")
    return int(match[1]), int(match[2])


def timeout_limit(opts: TemplateOptions) -> int:
    return HTTP_API_TIMEOUT_S - 1 if opts.api in GATEWAY_APIS else MAX_TIMEOUT_S


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise TemplateError(message)


def _check_kinds(opts: TemplateOptions) -> None:
    _need(
        opts.package_type in ("zip", "image"),
        f"package type {opts.package_type!r} must be 'zip' or 'image'",
    )
    _need(
        opts.arch in ("x86_64", "arm64"), f"architecture {opts.arch!r} must be 'x86_64' or 'arm64'"
    )
    _need(
        opts.api in API_KINDS, f"api {opts.api!r} must be one of {', '.join(map(repr, API_KINDS))}"
    )
    _need(
        opts.auth in AUTH_KINDS,
        f"auth {opts.auth!r} must be one of {', '.join(map(repr, AUTH_KINDS))}",
    )


def _check_auth(opts: TemplateOptions) -> None:
    if opts.auth == "iam":
        _need(
            opts.api != "none",
            "auth 'iam' needs an endpoint to protect: use an HTTP API, a REST API or a "
            "Function URL (without one, only IAM principals can invoke the function anyway)",
        )
    if opts.auth != "jwt":
        _need(
            not opts.jwt_issuer and not opts.jwt_audience,
            f"a JWT issuer or audience was given with auth {opts.auth!r}; use auth 'jwt' "
            "or leave them out",
        )
        return
    _need(
        opts.api == "http",
        f"auth 'jwt' is an HTTP API authorizer, not available for api {opts.api!r}; use the "
        "HTTP API, or auth 'iam' for a REST API or Function URL",
    )
    _need(
        bool(opts.jwt_issuer) and bool(opts.jwt_audience),
        "auth 'jwt' needs an issuer and at least one audience, e.g. --jwt-issuer "
        "https://cognito-idp.us-east-1.amazonaws.com/<pool-id> --jwt-audience <client-id>",
    )
    _need(
        str(opts.jwt_issuer).startswith("https://"),
        f"JWT issuer {opts.jwt_issuer!r} must be an https:// URL (API Gateway fetches its "
        "keys from <issuer>/.well-known/openid-configuration)",
    )


def _check_capacity(opts: TemplateOptions) -> None:
    _need(
        MIN_MEMORY_MB <= opts.memory_mb <= MAX_MEMORY_MB,
        f"memory {opts.memory_mb!r} MB is outside Lambda's {MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB",
    )
    limit = timeout_limit(opts)
    gateway = {
        "http": " (API Gateway HTTP APIs give up after 30 s)",
        "rest": " (API Gateway REST APIs give up after 29 s)",
    }.get(opts.api, "")
    _need(
        1 <= opts.timeout_s <= limit, f"timeout {opts.timeout_s!r} s must be 1-{limit} s{gateway}"
    )
    if opts.throttle is not None:
        _need(
            opts.api in GATEWAY_APIS,
            f"throttling is an API Gateway setting and api {opts.api!r} has none; cap a "
            "Function URL or a direct invoke with reserved concurrency instead",
        )
        rate, burst = opts.throttle
        _need(
            rate > 0 and burst >= 1 and float(burst).is_integer(),
            f"throttle {rate!r},{burst!r} needs a rate above 0 requests per second and a "
            "whole burst of at least 1, e.g. 50,100",
        )
    pc, rc = opts.provisioned_concurrency, opts.reserved_concurrency
    _need(
        pc is None or pc >= 1,
        f"provisioned concurrency {pc!r} must be at least 1 (or None for none)",
    )
    _need(
        rc is None or rc >= 1,
        f"reserved concurrency {rc!r} must be at least 1 (0 would stop the function "
        "from running at all)",
    )
    _need(
        pc is None or rc is None or pc <= rc,
        f"provisioned concurrency {pc!r} cannot exceed reserved concurrency {rc!r}",
    )


def _check_snapstart(opts: TemplateOptions) -> None:
    if not opts.snapstart:
        if opts.package_type == "zip":
            python_version(opts.runtime)
        return
    _need(
        opts.package_type != "image",
        "SnapStart does not support container images; use package type zip",
    )
    _need(
        opts.provisioned_concurrency is None,
        "SnapStart and provisioned concurrency cannot be combined on one function; pick one",
    )
    _need(
        python_version(opts.runtime) >= SNAPSTART_MIN_PYTHON,
        f"SnapStart needs python3.12 or later, not {opts.runtime!r}; "
        "build for a newer runtime or drop SnapStart",
    )


def _check_environment(opts: TemplateOptions) -> None:
    size = 0
    for key, value in opts.environment:
        _need(
            bool(_ENV_KEY.fullmatch(key)),
            f"environment variable name {key!r} must start with a letter and hold only "
            "letters, digits and '_'",
        )
        _need(
            key not in RESERVED_ENV and key not in OWN_ENV,
            f"environment variable {key!r} is set by "
            + ("the build (--model-location)" if key in OWN_ENV else "Lambda itself")
            + "; choose another name",
        )
        size += len(key.encode()) + len(value.encode())
    _need(
        size <= ENV_LIMIT_BYTES,
        f"environment variables take {size} bytes; Lambda allows {ENV_LIMIT_BYTES} in all",
    )
    _need(len(opts.tags) <= MAX_TAGS, f"{len(opts.tags)} tags; Lambda allows {MAX_TAGS}")
    for key, value in opts.tags:
        _need(
            1 <= len(key) <= 128 and len(value) <= 256 and not key.lower().startswith("aws:"),
            f"tag {key!r}={value!r}: keys are 1-128 characters not starting with 'aws:', "
            "values at most 256",
        )


def _check_network(opts: TemplateOptions) -> None:
    days = opts.log_retention_days
    _need(
        days is None or days in LOG_RETENTION_DAYS,
        f"log retention {days!r} days is not one CloudWatch Logs accepts; pick one of "
        f"{', '.join(map(str, LOG_RETENTION_DAYS))}",
    )
    subnets, groups = opts.vpc_subnets, opts.vpc_security_groups
    _need(
        bool(subnets) == bool(groups),
        "a VPC needs both subnets and security groups (--vpc-subnets subnet-1,subnet-2 "
        "--vpc-security-groups sg-1)",
    )
    _need(
        len(subnets) <= MAX_SUBNETS and len(groups) <= MAX_SECURITY_GROUPS,
        f"Lambda takes at most {MAX_SUBNETS} subnets and {MAX_SECURITY_GROUPS} security "
        f"groups, not {len(subnets)} and {len(groups)}",
    )
    for kind, prefix, ids in (("subnet", "subnet-", subnets), ("security group", "sg-", groups)):
        for bad in [i for i in ids if not re.fullmatch(prefix + r"[0-9a-f]{8,17}", i)]:
            raise TemplateError(f"{kind} id {bad!r} does not look like {prefix}0123456789abcdef0")


def _check_rollout(opts: TemplateOptions) -> None:
    if opts.alias is not None:
        _need(
            bool(_ALIAS.fullmatch(opts.alias)),
            f"alias {opts.alias!r} is not a Lambda alias name (1-128 letters, digits, '-' "
            "or '_', not all digits); pass --alias NAME",
        )
    if opts.rollout is None:
        return
    _need(
        opts.rollout in ROLLOUTS, f"rollout {opts.rollout!r} must be one of {', '.join(ROLLOUTS)}"
    )
    _need(
        opts.alias is not None,
        f"rollout {opts.rollout!r} moves traffic between versions behind an alias: give "
        "--alias NAME, or package a models:/<name>@<alias> URI",
    )


def check_options(opts: TemplateOptions) -> None:
    """Raise :class:`TemplateError` for options CloudFormation, SAM or Lambda would refuse."""
    _check_kinds(opts)
    _check_auth(opts)
    _check_capacity(opts)
    _check_snapstart(opts)
    _check_environment(opts)
    _check_network(opts)
    _check_rollout(opts)
