"""CloudFormation helpers: read a template, find and wait for a stack, Outputs, delete.

Shared by ``infra.deploy`` (create/update) and ``infra.plugin`` (get/list/delete). Every
wait is a bounded poll with an injected ``sleep`` so tests drive it without waiting.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from mlflow_lambda.infra.errors import DeployError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import StackTypeDef
    from mypy_boto3_s3 import S3Client

Progress = Callable[[str], None]

ENDPOINT_OUTPUT_KEYS = ("InvocationsUrl", "EndpointUrl", "ApiUrl", "FunctionUrl")


# Where a region can come from, in the order AWS's own CLI v2 and newer SDKs read them:
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-region.html. botocore itself reads
# only AWS_DEFAULT_REGION and the profile, so AWS_REGION is looked at here.
REGION_HINT = (
    "pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), or set region in your AWS profile "
    "(aws configure set region eu-west-1)"
)


def resolve_region(region: str | None, hint: str = REGION_HINT) -> str:
    """``region``, else ``$AWS_REGION``, ``$AWS_DEFAULT_REGION``, the profile's; else DeployError.

    The profile is ``$AWS_PROFILE`` (or ``default``) in ``~/.aws/config``, read by botocore.
    """
    import boto3

    for found in (region, os.environ.get("AWS_REGION"), os.environ.get("AWS_DEFAULT_REGION")):
        if found:
            return found
    try:
        profile_region = boto3.Session().region_name
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise DeployError(f"cannot read the AWS configuration: {exc}; {hint}") from None
    if not profile_region:
        raise DeployError(f"no AWS region: {hint}")
    return profile_region


def cfn_client(region: str | None, endpoint_url: str | None) -> CloudFormationClient:
    """A CloudFormation client for ``region`` (or the one :func:`resolve_region` finds)."""
    import boto3

    name = resolve_region(region)
    return boto3.client("cloudformation", region_name=name, endpoint_url=endpoint_url)


def s3_client(region: str | None, endpoint_url: str | None) -> S3Client:
    """An S3 client for ``region`` (or the one :func:`resolve_region` finds) at ``endpoint_url``."""
    import boto3

    return boto3.client("s3", region_name=resolve_region(region), endpoint_url=endpoint_url)


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation's short forms (``!Ref x``, ``!GetAtt a.b``)."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_form)


def load_template(path: Path) -> dict[str, Any]:
    """Read a CloudFormation/SAM template (YAML or JSON, short-form tags allowed)."""
    try:
        data = yaml.load(
            path.read_text(encoding="utf-8"), Loader=_CfnLoader
        )  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise DeployError(f"cannot read template {str(path)!r}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise DeployError(f"template {str(path)!r} has no Resources mapping")
    return data


def point_code_at(template: Mapping[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """A copy of ``template`` whose functions' local code paths point at ``s3://bucket/key``.

    Like ``aws cloudformation package``: ``CodeUri`` of ``AWS::Serverless::Function`` (and
    of ``Globals.Function``) and ``Code`` of ``AWS::Lambda::Function``, when they are a local
    path (a string not starting with ``s3://``).
    """
    out: dict[str, Any] = json.loads(json.dumps(template))
    changed = 0
    targets = [
        (r.get("Properties", {}), "CodeUri" if r["Type"] == "AWS::Serverless::Function" else "Code")
        for r in out["Resources"].values()
        if r.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    ]
    targets.append((out.get("Globals", {}).get("Function", {}), "CodeUri"))
    for props, name in targets:
        value = props.get(name)
        if isinstance(value, str) and not value.startswith("s3://"):
            props[name] = (
                {"Bucket": bucket, "Key": key}
                if name == "CodeUri"
                else {"S3Bucket": bucket, "S3Key": key}
            )
            changed += 1
    if not changed:
        raise DeployError(
            "the template has no function whose CodeUri/Code is a local path; "
            "deploy expects the template.yaml written by `mlflow-lambda package`"
        )
    return out


def rollout_of(template: Mapping[str, Any]) -> str | None:
    """The CodeDeploy shift a template's functions roll out with (SAM ``DeploymentPreference``
    ``Type``, e.g. ``Canary10Percent5Minutes``), or None."""
    for resource in template.get("Resources", {}).values():
        preference = (resource.get("Properties") or {}).get("DeploymentPreference")
        if isinstance(preference, dict) and preference.get("Type"):
            return str(preference["Type"])
    return None


def find_stack(cfn: CloudFormationClient, name_or_id: str) -> StackTypeDef | None:
    """The stack called ``name_or_id``, or ``None`` when there is none."""
    try:
        stacks = cfn.describe_stacks(StackName=name_or_id)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def wait_for_stack(
    cfn: CloudFormationClient,
    stack_id: str,
    *,
    progress: Progress,
    sleep: Callable[[float], None],
    poll_seconds: float,
    max_polls: int,
    gone_ok: bool = False,
) -> StackTypeDef | None:
    """Poll the stack until its status no longer ends in ``_IN_PROGRESS``; return it.

    ``None`` when the stack is gone and ``gone_ok`` (after a delete, looking a deleted
    stack up by id answers DELETE_COMPLETE on AWS but "does not exist" on some emulators).
    """
    last = ""
    for _ in range(max_polls):
        stack = find_stack(cfn, stack_id)
        if stack is None:
            if gone_ok:
                progress(f"Stack {stack_id}: deleted")
                return None
            raise DeployError(f"stack {stack_id!r} disappeared while waiting for it")
        status = stack["StackStatus"]
        if status != last:
            progress(f"Stack {stack['StackName']}: {status}")
            last = status
        if not status.endswith("_IN_PROGRESS"):
            return stack
        sleep(poll_seconds)
    raise DeployError(f"stack {stack_id!r} still {last} after {max_polls} polls")


def stack_failure_reasons(cfn: CloudFormationClient, stack_id: str) -> list[str]:
    """The reasons of the stack's FAILED resource events, oldest first."""
    events = cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])
    return [
        f"{e.get('LogicalResourceId')}: {e.get('ResourceStatusReason')}"
        for e in reversed(events)
        if e.get("ResourceStatus", "").endswith("FAILED")
    ]


def endpoint_from_outputs(outputs: Mapping[str, str]) -> str | None:
    """The scoring endpoint URL among a stack's Outputs, if any."""
    for key in ENDPOINT_OUTPUT_KEYS:
        if key in outputs:
            return outputs[key]
    https = [v for _, v in sorted(outputs.items()) if v.startswith("https://")]
    return https[0] if https else None


def stack_outputs(stack: Mapping[str, Any] | None) -> dict[str, str]:
    """A stack's Outputs as ``{OutputKey: OutputValue}``."""
    if not stack:
        return {}
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def destroy(
    stack_name: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    cfn: CloudFormationClient | None = None,
    progress: Progress = print,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 5.0,
    timeout_seconds: float = 1800.0,
) -> Literal["deleted", "absent"]:
    """Delete stack ``stack_name`` and wait for it; ``"absent"`` when there was none.

    The uploaded artifacts and an S3 model stay in their buckets (``sam delete`` asks; we
    never delete user data without being told which).
    """
    cfn = cfn or cfn_client(region, endpoint_url)
    max_polls = max(1, int(timeout_seconds / max(poll_seconds, 0.001)))
    try:
        stack = find_stack(cfn, stack_name)
        if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
            progress(f"Stack {stack_name} does not exist; nothing to delete")
            return "absent"
        stack_id = stack["StackId"]
        progress(f"Deleting stack {stack_name}")
        cfn.delete_stack(StackName=stack_id)
        final = wait_for_stack(
            cfn, stack_id, progress=progress, sleep=sleep, poll_seconds=poll_seconds,
            max_polls=max_polls, gone_ok=True,
        )  # fmt: skip
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"deleting stack {stack_name!r} failed: {exc}") from exc
    if final is not None and final["StackStatus"] != "DELETE_COMPLETE":
        reasons = "; ".join(stack_failure_reasons(cfn, stack_id)) or "no reason given"
        raise DeployError(
            f"stack {stack_name!r} ended in {final['StackStatus']}: {reasons}. Remove the "
            "resources named there (e.g. a non-empty bucket), then delete again"
        )
    return "deleted"
