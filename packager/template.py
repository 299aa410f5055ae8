"""The SAM template for a packaged model, built as a dict and serialised once.

``render_template(TemplateOptions(...))`` returns the template; ``dump_template`` turns it into
YAML with sorted keys using only long-form intrinsics (``{"Ref": ...}``, ``{"Fn::Sub": ...}``),
so plain ``yaml.safe_dump`` writes it and ``yaml.safe_load`` reads it back unchanged.

What the template holds:

- ``ModelFunction`` (``AWS::Serverless::Function``): a zip (``CodeUri``, runtime, handler) or
  an image (``PackageType: Image``, build context in ``Metadata``), ``MemorySize`` and
  ``Timeout`` from template parameters whose defaults come from the build.
- ``ModelHttpApi`` (``AWS::Serverless::HttpApi``) with ``POST /invocations`` and ``GET /ping``,
  ``/health``, ``/version``; or a Lambda Function URL; or no endpoint at all.
- Optional IAM auth, arm64, provisioned concurrency, SnapStart and a model kept on S3
  (read-only access to exactly that prefix, no IAM statement on ``*``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from mlflow_lambda.handler import ENTRY_POINT
from mlflow_lambda.packager.errors import TemplateError

FUNCTION_ID = "ModelFunction"
API_ID = "ModelHttpApi"
ALIAS = "live"

# The HTTP API integration timeout is at most 30 s (API Gateway quotas, "HTTP APIs");
# a function that stops first gives the client our error instead of a bare 503.
HTTP_API_TIMEOUT_S = 30
DEFAULT_TIMEOUT_S = 28
MAX_TIMEOUT_S = 900
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10240

# SnapStart runs on Python 3.12 and later managed runtimes, zip packages only, and not
# together with provisioned concurrency.
# https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html ("Supported features and
# limitations": Java 11+, Python 3.12+, .NET 8+; no container images, no provisioned concurrency)
SNAPSTART_MIN_PYTHON = (3, 12)

# MLflow's scoring server routes (docs/protocol.md), one SAM event each.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("Invocations", "POST", "/invocations"),
    ("Ping", "GET", "/ping"),
    ("Health", "GET", "/health"),
    ("Version", "GET", "/version"),
    ("OpenApi", "GET", "/openapi.json"),
    ("Docs", "GET", "/docs"),
)


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
    api: Literal["http", "function-url", "none"] = "http"
    auth: Literal["none", "iam"] = "none"
    provisioned_concurrency: int | None = None
    snapstart: bool = False
    model_s3_uri: str | None = None  # MODEL_S3_URI: the handler fetches the model at cold start
    model_dir: str | None = None  # MODEL_DIR: where the handler loads (or fetches) the model
    description: str = "MLflow model served by mlflow-lambda"


def _round_up(mb: float, step: int = 128) -> int:
    return int(math.ceil(mb / step) * step)


def suggest_memory_mb(peak_rss_mb: float | None = None, bundle_mb: float | None = None) -> int:
    """A ``MemorySize`` default: measured peak + 25% + 64 MB, else 1.5x the unzipped bundle.

    Rounded up to the next 128 MB, at least 512 MB: Lambda gives CPU in proportion to memory
    (one vCPU at 1,769 MB, https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html)
    and importing numpy/scipy/sklearn is CPU-bound, so a smaller function cold-starts slowly.
    A bundle's imported shared objects and bytecode are most of its unzipped size, so size is a
    fair stand-in when nothing was measured (the import check measures the real peak).
    """
    if peak_rss_mb is not None:
        need = peak_rss_mb * 1.25 + 64
    elif bundle_mb is not None:
        need = bundle_mb * 1.5
    else:
        need = 1024
    return max(512, min(MAX_MEMORY_MB, _round_up(need)))


def _python_version(runtime: str) -> tuple[int, int]:
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    if not match:
        raise TemplateError(f"runtime {runtime!r} is not a Lambda Python runtime like 'python3.12'")
    return int(match[1]), int(match[2])


def _s3_read_resource(uri: str) -> str:
    """``s3://bucket/prefix`` -> the ARN pattern for objects under exactly that prefix."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if not uri.startswith("s3://") or not bucket or not prefix:
        raise TemplateError(
            f"model location {uri!r} must be s3://bucket/prefix with a non-empty prefix, so the "
            "function can read that model only; e.g. s3://my-models/forest/1"
        )
    if re.search(r"[*?$\s]", uri):
        raise TemplateError(
            f"model location {uri!r} contains a wildcard, '$' or a space; "
            "use the literal prefix the model was uploaded to"
        )
    return f"arn:${{AWS::Partition}}:s3:::{bucket}/{prefix}/*"


def _check(opts: TemplateOptions) -> None:
    if opts.package_type not in ("zip", "image"):
        raise TemplateError(f"package type {opts.package_type!r} must be 'zip' or 'image'")
    if opts.arch not in ("x86_64", "arm64"):
        raise TemplateError(f"architecture {opts.arch!r} must be 'x86_64' or 'arm64'")
    if opts.api not in ("http", "function-url", "none"):
        raise TemplateError(f"api {opts.api!r} must be 'http', 'function-url' or 'none'")
    if opts.auth not in ("none", "iam"):
        raise TemplateError(f"auth {opts.auth!r} must be 'none' or 'iam'")
    if opts.auth == "iam" and opts.api == "none":
        raise TemplateError(
            "auth 'iam' needs an endpoint to protect: use api 'http' or 'function-url'"
        )
    if not MIN_MEMORY_MB <= opts.memory_mb <= MAX_MEMORY_MB:
        raise TemplateError(
            f"memory {opts.memory_mb!r} MB is outside Lambda's {MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB"
        )
    limit = HTTP_API_TIMEOUT_S - 1 if opts.api == "http" else MAX_TIMEOUT_S
    if not 1 <= opts.timeout_s <= limit:
        raise TemplateError(
            f"timeout {opts.timeout_s!r} s must be 1-{limit} s"
            + (" (API Gateway HTTP APIs give up after 30 s)" if opts.api == "http" else "")
        )
    if opts.provisioned_concurrency is not None and opts.provisioned_concurrency < 1:
        raise TemplateError(
            f"provisioned concurrency {opts.provisioned_concurrency!r} must be at least 1 "
            "(or None for none)"
        )
    if opts.snapstart:
        if opts.package_type == "image":
            raise TemplateError("SnapStart does not support container images; use package type zip")
        if opts.provisioned_concurrency is not None:
            raise TemplateError(
                "SnapStart and provisioned concurrency cannot be combined on one function; pick one"
            )
        if _python_version(opts.runtime) < SNAPSTART_MIN_PYTHON:
            raise TemplateError(
                f"SnapStart needs python3.12 or later, not {opts.runtime!r}; "
                "build for a newer runtime or drop SnapStart"
            )
    elif opts.package_type == "zip":
        _python_version(opts.runtime)


def _function(opts: TemplateOptions) -> dict[str, Any]:
    props: dict[str, Any] = {
        "Architectures": [opts.arch],
        "Description": opts.description,
        "MemorySize": {"Ref": "MemorySize"},
        "Timeout": {"Ref": "Timeout"},
    }
    if opts.function_name:
        props["FunctionName"] = opts.function_name
    if opts.package_type == "zip":
        props.update(CodeUri=opts.code_uri, Handler=opts.handler, Runtime=opts.runtime)
    else:
        props["PackageType"] = "Image"
        if opts.image_uri:
            props["ImageUri"] = opts.image_uri
    variables = {"MODEL_DIR": opts.model_dir, "MODEL_S3_URI": opts.model_s3_uri}
    if any(variables.values()):
        props["Environment"] = {"Variables": {k: v for k, v in variables.items() if v}}
    if opts.model_s3_uri:
        model_objects = _s3_read_resource(opts.model_s3_uri)
        props["Policies"] = [
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadModelFiles",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject"],
                        "Resource": {"Fn::Sub": model_objects},
                    }
                ],
            }
        ]
    if opts.snapstart or opts.provisioned_concurrency:
        # Both work on a published version only; SAM publishes one per code change.
        props["AutoPublishAlias"] = ALIAS
    if opts.snapstart:
        props["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    if opts.provisioned_concurrency:
        props["ProvisionedConcurrencyConfig"] = {
            "ProvisionedConcurrentExecutions": opts.provisioned_concurrency
        }
    if opts.api == "function-url":
        props["FunctionUrlConfig"] = {"AuthType": "AWS_IAM" if opts.auth == "iam" else "NONE"}
    if opts.api == "http":
        props["Events"] = {
            name: {
                "Type": "HttpApi",
                "Properties": {"ApiId": {"Ref": API_ID}, "Method": method, "Path": path},
            }
            for name, method, path in ROUTES
        }
    resource: dict[str, Any] = {"Type": "AWS::Serverless::Function", "Properties": props}
    if opts.package_type == "image":
        # `sam build` builds the image from this context (SAM "Building container images").
        resource["Metadata"] = {
            "DockerContext": opts.docker_context,
            "DockerTag": opts.docker_tag,
            "Dockerfile": opts.dockerfile,
        }
    return resource


def _http_api(opts: TemplateOptions) -> dict[str, Any]:
    props: dict[str, Any] = {"Description": f"{opts.description} (MLflow scoring protocol)"}
    if opts.auth == "iam":
        # Every route then needs SigV4-signed requests (SAM HttpApi Auth, EnableIamAuthorizer).
        props["Auth"] = {"DefaultAuthorizer": "AWS_IAM", "EnableIamAuthorizer": True}
    return {"Type": "AWS::Serverless::HttpApi", "Properties": props}


def _outputs(opts: TemplateOptions) -> dict[str, Any]:
    outputs: dict[str, Any] = {
        "FunctionName": {"Description": "Lambda function name", "Value": {"Ref": FUNCTION_ID}},
        "FunctionArn": {
            "Description": "Lambda function ARN",
            "Value": {"Fn::GetAtt": [FUNCTION_ID, "Arn"]},
        },
    }
    if opts.api == "http":
        base = f"https://${{{API_ID}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
        outputs["ApiUrl"] = {"Description": "HTTP API base URL", "Value": {"Fn::Sub": base}}
        url = f"{base}/invocations"
    elif opts.api == "function-url":
        # AWS::Lambda::Url's FunctionUrl ends with "/"; SAM names the resource <Function>Url.
        url = f"${{{FUNCTION_ID}Url.FunctionUrl}}invocations"
    else:
        return outputs
    outputs["InvocationsUrl"] = {
        "Description": "POST MLflow scoring requests here",
        "Value": {"Fn::Sub": url},
    }
    return outputs


def render_template(opts: TemplateOptions) -> dict[str, Any]:
    """The SAM template for ``opts`` as a dict; raises :class:`TemplateError` on a bad mix."""
    _check(opts)
    timeout_max = HTTP_API_TIMEOUT_S - 1 if opts.api == "http" else MAX_TIMEOUT_S
    resources: dict[str, Any] = {FUNCTION_ID: _function(opts)}
    if opts.api == "http":
        resources[API_ID] = _http_api(opts)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": opts.description,
        "Parameters": {
            "MemorySize": {
                "Type": "Number",
                "Default": opts.memory_mb,
                "MinValue": MIN_MEMORY_MB,
                "MaxValue": MAX_MEMORY_MB,
                "Description": "Function memory in MB (CPU grows with it)",
            },
            "Timeout": {
                "Type": "Number",
                "Default": opts.timeout_s,
                "MinValue": 1,
                "MaxValue": timeout_max,
                "Description": "Function timeout in seconds",
            },
        },
        "Resources": resources,
        "Outputs": _outputs(opts),
    }


def dump_template(tpl: dict[str, Any]) -> str:
    """YAML for ``tpl``: sorted keys, block style, long-form intrinsics only."""
    body = yaml.safe_dump(tpl, sort_keys=True, default_flow_style=False, width=100)
    return "# Generated by mlflow-lambda; edit the options, not this file.\n" + body


TEMPLATE_FILE = "template.yaml"


def write_template(outdir: Path, opts: TemplateOptions) -> Path:
    """Render ``opts`` into ``outdir/template.yaml``; return its path."""
    path = Path(outdir) / TEMPLATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_template(render_template(opts)), encoding="utf-8")
    return path
