"""``mlflow-lambda deploy``: upload a built bundle and create or update its stack, no SAM CLI.

What ``sam deploy`` does for our templates, with boto3 only:

1. upload ``bundle.zip`` to S3 under a content-addressed key (``<stack>/<sha256>.zip``), so
   deploying the same bundle twice yields the same template and CloudFormation sees no change;
2. when the model lives on S3 (``manifest.model.location``), check that every object carries
   the sha256 ``model.json`` expects, uploading ``OUTDIR/model`` when it is there;
3. point each function's ``CodeUri`` (SAM) or ``Code`` (plain Lambda) at the uploaded zip;
4. create a change set (``CREATE`` for a new stack, ``UPDATE`` otherwise) with the SAM
   transform's capabilities, wait for it, execute it, wait for the stack, read its Outputs.

A change set that FAILED because nothing changed is deleted and reported as ``no-change``
(CloudFormation's own wording, see the DescribeChangeSet ``StatusReason`` docs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from mlflow_lambda.handler.config import sha256_file
from mlflow_lambda.infra.errors import DeployError
from mlflow_lambda.infra.stack import (
    Progress,
    cfn_client,
    destroy,
    endpoint_from_outputs,
    find_stack,
    load_template,
    point_code_at,
    rollout_of,
    s3_client,
    stack_failure_reasons,
    stack_outputs,
    wait_for_stack,
)
from mlflow_lambda.packager.manifest import read_manifest
from mlflow_lambda.packager.modelstore import check_uploaded, upload_model

__all__ = ["DeployResult", "default_bucket", "deploy", "destroy"]  # destroy: from infra.stack

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import TagTypeDef
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
DeployStatus = Literal["created", "updated", "no-change"]

# The SAM transform is a macro (CAPABILITY_AUTO_EXPAND) that creates an IAM role for the
# function (CAPABILITY_IAM); see the CreateChangeSet API reference, "Capabilities".
CAPABILITIES: list[Any] = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
# CloudFormation's StatusReason for an update change set without changes (both wordings seen).
NO_CHANGE_REASONS = ("didn't contain changes", "No updates are to be performed")
# TemplateBody is limited to 51,200 bytes; larger templates must go through S3 (TemplateURL).
TEMPLATE_BODY_LIMIT = 51_200
MODEL_URI_TAG = "mlflow-lambda:model-uri"
TAG_VALUE_LIMIT = 256  # CloudFormation tag values: at most 256 characters


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy`` did: the stack's status change, its Outputs and the endpoint URL."""

    stack_name: str
    stack_id: str
    status: DeployStatus
    outputs: dict[str, str] = field(default_factory=dict)
    endpoint_url: str | None = None
    artifact_uri: str = ""


# Output keys that name the scoring endpoint, in order of preference; any other https://
# output value is the fallback (templates edited by hand may rename the output).
def _artifact(outdir: Path, manifest: Mapping[str, Any]) -> Path:
    if manifest.get("target") == "image":
        raise DeployError(
            f"{str(outdir)!r} holds an image build; `deploy` uploads zip bundles only. "
            "Push the image to ECR and use `sam deploy`, or package with --target zip"
        )
    artifact = outdir / "bundle.zip"
    if not artifact.is_file():
        raise DeployError(f"{str(artifact)!r} does not exist; run `mlflow-lambda package` first")
    return artifact


def _ensure_bucket(s3: S3Client, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        raise DeployError(
            f"cannot use artifact bucket {bucket!r}: {exc}. Create it in the stack's region "
            "(Lambda reads code only from a bucket in its own region) or pass another --s3-bucket"
        ) from exc


def default_bucket(s3: S3Client, sts: Any, region: str, progress: Progress) -> str:
    """``mlflow-lambda-<account>-<region>``, created (private) when it does not exist yet."""
    account = sts.get_caller_identity()["Account"]
    bucket = f"mlflow-lambda-{account}-{region}"
    try:
        s3.head_bucket(Bucket=bucket)
        return bucket
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (*_NOT_FOUND, "NoSuchBucket"):
            raise
    progress(f"Creating artifact bucket {bucket}")
    if region == "us-east-1":  # the one region that refuses a LocationConstraint
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
        )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return bucket


def _upload_artifact(
    s3: S3Client, artifact: Path, bucket: str, key: str, progress: Progress
) -> None:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        progress(f"Artifact already uploaded: s3://{bucket}/{key}")
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _NOT_FOUND:
            raise
    size_mb = artifact.stat().st_size / 1e6
    progress(f"Uploading {artifact.name} ({size_mb:.1f} MB) to s3://{bucket}/{key}")
    s3.upload_file(str(artifact), bucket, key)


def _ensure_model(
    outdir: Path, manifest: Mapping[str, Any], s3: S3Client, progress: Progress
) -> None:
    model = manifest.get("model") or {}
    location = model.get("location") or "bundle"
    if location == "bundle":
        return
    files: dict[str, str] = model.get("files") or {}
    problems = check_uploaded(location, files, s3)
    if not problems:
        return
    local = outdir / "model"
    if not local.is_dir():
        listed = ", ".join(f"{rel}: {why}" for rel, why in problems.items())
        raise DeployError(
            f"the model at {location!r} does not match the bundle's model.json ({listed}); "
            f"package again with --model-location {location}, which uploads it"
        )
    progress(f"Uploading model files to {location}: {', '.join(problems)}")
    upload_model(local, location, files, s3)


def _tags(manifest: Mapping[str, Any], extra: Mapping[str, str] | None) -> list[TagTypeDef]:
    tags = {MODEL_URI_TAG: str((manifest.get("model") or {}).get("uri") or "")}
    tags.update(extra or {})
    return [{"Key": k, "Value": v[:TAG_VALUE_LIMIT]} for k, v in sorted(tags.items()) if v]


def _template_argument(
    body: str, s3: S3Client, bucket: str, key: str, region: str
) -> dict[str, str]:
    if len(body.encode()) <= TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": body}
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return {"TemplateURL": f"https://{bucket}.s3.{region}.amazonaws.com/{key}"}


def _wait_change_set(
    cfn: CloudFormationClient,
    change_set_id: str,
    stack_name: str,
    *,
    sleep: Callable[[float], None],
    poll_seconds: float,
    max_polls: int,
) -> tuple[str, str]:
    """Poll until the change set is created or failed; return (Status, StatusReason)."""
    for _ in range(max_polls):
        found = cfn.describe_change_set(ChangeSetName=change_set_id, StackName=stack_name)
        status = found["Status"]
        if status in ("CREATE_COMPLETE", "FAILED", "DELETE_COMPLETE", "DELETE_FAILED"):
            return status, found.get("StatusReason", "")
        sleep(poll_seconds)
    raise DeployError(
        f"change set {change_set_id!r} was still being created after {max_polls} polls; "
        "look at it in the CloudFormation console"
    )


def deploy(
    outdir: Path,
    *,
    stack_name: str,
    s3_bucket: str | None,
    region: str | None,
    endpoint_url: str | None,
    cfn: CloudFormationClient | None = None,
    s3: S3Client | None = None,
    sts: Any = None,
    progress: Progress = print,
    tags: Mapping[str, str] | None = None,
    change_set_name: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 5.0,
    timeout_seconds: float = 1800.0,
) -> DeployResult:
    """Deploy the build in ``outdir`` as CloudFormation stack ``stack_name``.

    ``s3_bucket`` holds the uploaded artifact; it must exist in the stack's region. Without
    it, ``mlflow-lambda-<account>-<region>`` is used and created when missing (as ``sam
    deploy`` manages its own bucket). ``cfn``/``s3``/``sts`` are injected clients (tests);
    otherwise they are made for ``region`` and ``endpoint_url``. Raises :class:`DeployError`
    with CloudFormation's reasons.
    """
    outdir = Path(outdir)
    manifest = read_manifest(outdir)
    if manifest is None:
        raise DeployError(
            f"{str(outdir)!r} has no manifest.json; run `mlflow-lambda package -o {outdir}` first"
        )
    template_path = outdir / "template.yaml"
    if not template_path.is_file():
        raise DeployError(f"{str(template_path)!r} does not exist; package again")
    artifact = _artifact(outdir, manifest)
    cfn = cfn or cfn_client(region, endpoint_url)
    s3 = s3 or s3_client(region, endpoint_url)
    if not s3_bucket and sts is None:
        import boto3

        sts = boto3.client("sts", region_name=cfn.meta.region_name, endpoint_url=endpoint_url)
    max_polls = max(1, int(timeout_seconds / max(poll_seconds, 0.001)))
    try:
        return _deploy(
            outdir,
            manifest,
            artifact,
            template_path,
            stack_name=stack_name,
            bucket=s3_bucket or "",
            cfn=cfn,
            s3=s3,
            sts=sts,
            progress=progress,
            tags=_tags(manifest, tags),
            change_set_name=change_set_name,
            sleep=sleep,
            poll_seconds=poll_seconds,
            max_polls=max_polls,
        )
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"deploying stack {stack_name!r} failed: {exc}") from exc


def _deploy(
    outdir: Path,
    manifest: Mapping[str, Any],
    artifact: Path,
    template_path: Path,
    *,
    stack_name: str,
    bucket: str,
    cfn: CloudFormationClient,
    s3: S3Client,
    sts: Any,
    progress: Progress,
    tags: list[TagTypeDef],
    change_set_name: str | None,
    sleep: Callable[[float], None],
    poll_seconds: float,
    max_polls: int,
) -> DeployResult:
    region = cfn.meta.region_name
    if bucket:
        _ensure_bucket(s3, bucket)
    else:
        bucket = default_bucket(s3, sts, region, progress)
    _ensure_model(outdir, manifest, s3, progress)
    digest = sha256_file(artifact)
    key = f"{stack_name}/{digest}.zip"
    _upload_artifact(s3, artifact, bucket, key, progress)

    template = point_code_at(load_template(template_path), bucket, key)
    body = json.dumps(template, indent=1, sort_keys=True)
    template_arg = _template_argument(body, s3, bucket, f"{stack_name}/{digest}.json", region)

    stack = find_stack(cfn, stack_name)
    status = stack["StackStatus"] if stack else None
    if status is not None and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise DeployError(f"stack {stack_name!r} is busy ({status}); wait and deploy again")
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
        raise DeployError(
            f"stack {stack_name!r} is in {status} and cannot be updated; run "
            f"`mlflow-lambda deploy {outdir} --stack-name {stack_name} --delete`, then deploy again"
        )
    # A stack left in REVIEW_IN_PROGRESS (a CREATE change set never executed) takes CREATE.
    creating = status is None or status == "REVIEW_IN_PROGRESS"
    kind: Literal["CREATE", "UPDATE"] = "CREATE" if creating else "UPDATE"
    name = change_set_name or f"mlflow-lambda-{digest[:12]}-{int(time.time())}"
    description = f"mlflow-lambda: {(manifest.get('model') or {}).get('uri', '')}"[:1024]
    progress(f"Creating change set {name} ({kind}) for stack {stack_name}")
    created = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=name,
        ChangeSetType=kind,
        Capabilities=CAPABILITIES,
        Description=description,
        Tags=tags,
        **template_arg,  # type: ignore[arg-type]
    )
    change_set_id, stack_id = created["Id"], created["StackId"]
    cs_status, reason = _wait_change_set(
        cfn, change_set_id, stack_name, sleep=sleep, poll_seconds=poll_seconds, max_polls=max_polls
    )
    if cs_status == "FAILED" and any(text in reason for text in NO_CHANGE_REASONS):
        cfn.delete_change_set(ChangeSetName=change_set_id, StackName=stack_name)
        progress(f"No changes to deploy: stack {stack_name} is up to date")
        final = find_stack(cfn, stack_id)
        outputs = stack_outputs(final)
        return DeployResult(
            stack_name, stack_id, "no-change", outputs, endpoint_from_outputs(outputs),
            f"s3://{bucket}/{key}",
        )  # fmt: skip
    if cs_status != "CREATE_COMPLETE":
        raise DeployError(
            f"change set {name!r} for stack {stack_name!r} is {cs_status}: {reason or 'no reason'}"
        )
    progress(f"Executing change set {name}")
    cfn.execute_change_set(ChangeSetName=change_set_id, StackName=stack_name)
    shift = rollout_of(template)
    if shift and not creating:
        # The first deploy points the alias at version 1 outright; later ones shift traffic
        # through CodeDeploy, and the stack stays UPDATE_IN_PROGRESS until that is done.
        progress(f"Rolling the new version out ({shift}); CodeDeploy rolls back on an alarm")
    final = wait_for_stack(
        cfn,
        stack_id,
        progress=progress,
        sleep=sleep,
        poll_seconds=poll_seconds,
        max_polls=max_polls,
    )
    final_status = final["StackStatus"] if final else "DELETE_COMPLETE"
    if final is None or final_status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        reasons = stack_failure_reasons(cfn, stack_id)
        kept = ""
        if final_status == "UPDATE_ROLLBACK_COMPLETE":
            kept = "; the update was rolled back and the previous version still serves"
        raise DeployError(
            f"stack {stack_name!r} ended in {final_status}: "
            f"{'; '.join(reasons) or 'no reason'}{kept}"
        )
    outputs = stack_outputs(final)
    endpoint = endpoint_from_outputs(outputs)
    progress(f"Stack {stack_name} {final_status}" + (f". Endpoint: {endpoint}" if endpoint else ""))
    return DeployResult(
        stack_name, stack_id, "created" if creating else "updated", outputs, endpoint,
        f"s3://{bucket}/{key}",
    )  # fmt: skip
