"""The SAM template for a packaged model, built as a dict and serialised once.

``render_template(TemplateOptions(...))`` returns the template; ``dump_template`` turns it into
YAML with sorted keys using only long-form intrinsics (``{"Ref": ...}``, ``{"Fn::Sub": ...}``),
so plain ``yaml.safe_dump`` writes it and ``yaml.safe_load`` reads it back unchanged.

What the template holds:

- ``ModelFunction`` (``AWS::Serverless::Function``): a zip (``CodeUri``, runtime, handler) or
  an image (``PackageType: Image``, build context in ``Metadata``), ``MemorySize`` and
  ``Timeout`` from template parameters whose defaults come from the build; environment,
  tags, reserved concurrency, a VPC.
- The endpoint (``packager.endpoint``): an HTTP API (``ModelHttpApi``) or REST API
  (``ModelRestApi``) with ``POST /invocations`` and ``GET /ping``, ``/health``, ``/version``,
  throttled; or a Lambda Function URL; or none. Auth: none, IAM or (HTTP API) JWT.
- An alias and a gradual rollout with its alarms (``packager.rollout``); provisioned
  concurrency, SnapStart; a log group with a retention; a model kept on S3 (read-only access
  to exactly that prefix, no IAM statement on ``*``).

Options are checked first (``packager.template_options``): a mix AWS would refuse is a
one-line :class:`TemplateError`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from mlflow_lambda.packager import endpoint, rollout
from mlflow_lambda.packager.endpoint import API_ID, FUNCTION_ID
from mlflow_lambda.packager.errors import TemplateError
from mlflow_lambda.packager.template_options import (
    DEFAULT_TIMEOUT_S,
    HTTP_API_TIMEOUT_S,
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    MIN_MEMORY_MB,
    SNAPSTART_MIN_PYTHON,
    TemplateOptions,
    check_options,
    timeout_limit,
)

__all__ = [
    "API_ID", "DEFAULT_TIMEOUT_S", "FUNCTION_ID", "HTTP_API_TIMEOUT_S", "MAX_MEMORY_MB",
    "MAX_TIMEOUT_S", "MIN_MEMORY_MB", "ROUTES", "SNAPSTART_MIN_PYTHON", "TEMPLATE_FILE",
    "TemplateError", "TemplateOptions", "dump_template", "render_template", "suggest_memory_mb",
    "write_template",
]  # fmt: skip

LOG_GROUP_ID = "ModelLogGroup"

# MLflow's scoring server routes (docs/protocol.md), one SAM event each.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("Invocations", "POST", "/invocations"),
    ("Ping", "GET", "/ping"),
    ("Health", "GET", "/health"),
    ("Version", "GET", "/version"),
    ("OpenApi", "GET", "/openapi.json"),
    ("Docs", "GET", "/docs"),
)


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


def _model_policy(uri: str) -> list[dict[str, Any]]:
    """Read-only access to the model's objects under exactly its S3 prefix."""
    statement = {
        "Sid": "ReadModelFiles",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": {"Fn::Sub": _s3_read_resource(uri)},
    }
    return [{"Version": "2012-10-17", "Statement": [statement]}]


def _code(opts: TemplateOptions) -> dict[str, Any]:
    if opts.package_type == "zip":
        return {"CodeUri": opts.code_uri, "Handler": opts.handler, "Runtime": opts.runtime}
    return {"PackageType": "Image", **({"ImageUri": opts.image_uri} if opts.image_uri else {})}


def _environment(opts: TemplateOptions) -> dict[str, Any] | None:
    own = {"MODEL_DIR": opts.model_dir, "MODEL_S3_URI": opts.model_s3_uri}
    variables = {k: v for k, v in own.items() if v} | dict(opts.environment)
    return {"Variables": variables} if variables else None


def _versions(opts: TemplateOptions) -> dict[str, Any]:
    """Alias, rollout, SnapStart and provisioned concurrency: all act on published versions."""
    alias = rollout.function_alias(opts)
    if alias is None:
        return {}
    props: dict[str, Any] = {"AutoPublishAlias": alias}  # SAM publishes one per change
    if opts.snapstart:
        props["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    if opts.provisioned_concurrency:
        props["ProvisionedConcurrencyConfig"] = {
            "ProvisionedConcurrentExecutions": opts.provisioned_concurrency
        }
    preference = rollout.deployment_preference(opts)
    if preference is not None:
        props["DeploymentPreference"] = preference
    return props


def _function(opts: TemplateOptions) -> dict[str, Any]:
    optional: dict[str, Any] = {
        "FunctionName": opts.function_name,
        "Environment": _environment(opts),
        "Policies": _model_policy(opts.model_s3_uri) if opts.model_s3_uri else None,
        "ReservedConcurrentExecutions": opts.reserved_concurrency,
        "Tags": dict(opts.tags) or None,
        "VpcConfig": {
            "SecurityGroupIds": list(opts.vpc_security_groups),
            "SubnetIds": list(opts.vpc_subnets),
        }
        if opts.vpc_subnets
        else None,
        "FunctionUrlConfig": endpoint.function_url(opts),
        "Events": endpoint.events(opts, ROUTES),
    }
    props: dict[str, Any] = {
        "Architectures": [opts.arch],
        "Description": opts.description,
        "MemorySize": {"Ref": "MemorySize"},
        "Timeout": {"Ref": "Timeout"},
        **_code(opts),
        **{key: value for key, value in optional.items() if value is not None},
        **_versions(opts),
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


def _log_group(opts: TemplateOptions) -> dict[str, Any]:
    """The function's log group, made by the stack so it has a retention (Lambda would make
    one that keeps logs forever on the first invocation)."""
    if opts.log_retention_days is None:
        return {}
    props = {
        "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{FUNCTION_ID}}}"},
        "RetentionInDays": opts.log_retention_days,
    }
    # Said explicitly (cfn-lint I3011): the logs go with the stack, so a stack made again
    # with the same --name does not fail on a log group left behind.
    return {
        LOG_GROUP_ID: {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": props,
        }
    }


def render_template(opts: TemplateOptions) -> dict[str, Any]:
    """The SAM template for ``opts`` as a dict; raises :class:`TemplateError` on a bad mix."""
    check_options(opts)
    resources: dict[str, Any] = {
        FUNCTION_ID: _function(opts),
        **endpoint.api_resources(opts),
        **rollout.alarms(opts),
        **_log_group(opts),
    }
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
                "MaxValue": timeout_limit(opts),
                "Description": "Function timeout in seconds",
            },
        },
        "Resources": resources,
        "Outputs": endpoint.outputs(opts),
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
