"""Gradual rollout of a new model version behind a Lambda alias, rolled back by alarms.

SAM's ``AutoPublishAlias`` publishes a version whenever the function's code or configuration
changes and points the alias at it; ``DeploymentPreference`` makes CodeDeploy shift the
alias's traffic to the new version in steps (canary, linear, all at once) and shift it back
when an alarm fires during the shift (SAM "Deploying serverless applications gradually").

Two alarms watch each rollout: errors of the function behind the alias (an exception, a
timeout, an out-of-memory) and 5xx answers of the endpoint (the handler answers a failed
predict with a 500 that Lambda counts as a success).

The alias defaults to the MLflow alias of a ``models:/<name>@<alias>`` URI, so moving the
MLflow alias and deploying again rolls the newly aliased version out behind the same name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mlflow_lambda.packager.endpoint import API_ID, FUNCTION_ID, REST_STAGE
from mlflow_lambda.packager.template_options import ROLLOUTS, TemplateOptions

ERRORS_ALARM = "ModelErrorsAlarm"
SERVER_ERRORS_ALARM = "ModelServerErrorsAlarm"
# Snapstart and provisioned concurrency run on a published version: an alias is needed.
DEFAULT_ALIAS = "live"


def mlflow_alias(model_uri: str) -> str | None:
    """``models:/name@alias`` -> ``alias``; None for every other URI."""
    parts = urlsplit(model_uri)
    if parts.scheme != "models" or parts.netloc:
        return None
    segment = parts.path.strip("/")
    if "/" in segment or "@" not in segment:
        return None
    return segment.rpartition("@")[2] or None


def function_alias(opts: TemplateOptions) -> str | None:
    """The alias SAM publishes, if the function needs one."""
    if opts.alias is not None:
        return opts.alias
    if opts.snapstart or opts.provisioned_concurrency:
        return DEFAULT_ALIAS
    return None


def deployment_preference(opts: TemplateOptions) -> dict[str, Any] | None:
    """SAM ``DeploymentPreference``: the CodeDeploy shift and the alarms that undo it."""
    if opts.rollout is None:
        return None
    found = alarms(opts)
    watched: list[Any] = [{"Ref": ERRORS_ALARM}]
    if SERVER_ERRORS_ALARM in found:
        # By name, not Ref: the API calls the alias, the alias's update policy names the
        # deployment group, and a Ref from the group to an alarm on the API closes a cycle
        # (cfn-lint E3004 on the translated template). The alarm exists before any shift:
        # the first deploy creates it, and only later deploys move traffic.
        watched.append(found[SERVER_ERRORS_ALARM]["Properties"]["AlarmName"])
    return {"Type": ROLLOUTS[opts.rollout], "Alarms": watched}


def _alarm(description: str, namespace: str, metric: str, dims: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims.items())],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            # No traffic during the shift is no evidence against the new version.
            "TreatMissingData": "notBreaching",
        },
    }


def _server_errors(opts: TemplateOptions, alias_dims: dict[str, Any]) -> dict[str, Any] | None:
    """The endpoint's 5xx metric (API Gateway "HTTP API metrics", "REST API metrics";
    Lambda "Function URL metrics")."""
    what = "answered 5xx during a rollout; CodeDeploy rolls back"
    if opts.api == "http":
        dims = {"ApiId": {"Ref": API_ID}, "Stage": "$default"}
        return _alarm(f"HTTP API {what}", "AWS/ApiGateway", "5xx", dims)
    if opts.api == "rest":
        dims = {"ApiName": {"Fn::Sub": "${AWS::StackName}-model"}, "Stage": REST_STAGE}
        return _alarm(f"REST API {what}", "AWS/ApiGateway", "5XXError", dims)
    if opts.api == "function-url":
        return _alarm(f"Function URL {what}", "AWS/Lambda", "Url5xxCount", alias_dims)
    return None


def alarms(opts: TemplateOptions) -> dict[str, Any]:
    """The rollout's CloudWatch alarms by logical id (none without a rollout)."""
    if opts.rollout is None:
        return {}
    alias_dims = {
        "FunctionName": {"Ref": FUNCTION_ID},
        "Resource": {"Fn::Sub": f"${{{FUNCTION_ID}}}:{opts.alias}"},
    }
    found = {
        ERRORS_ALARM: _alarm(
            "The model function failed during a rollout; CodeDeploy rolls back",
            "AWS/Lambda",
            "Errors",
            alias_dims,
        )
    }
    server = _server_errors(opts, alias_dims)
    if server is not None:
        server["Properties"]["AlarmName"] = {"Fn::Sub": "${AWS::StackName}-model-5xx"}
        found[SERVER_ERRORS_ALARM] = server
    return found
