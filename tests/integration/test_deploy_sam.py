"""``infra.deploy`` on the SAM path: real template, real S3 (moto server), stubbed CloudFormation.

moto cannot run the SAM transform (and has no ``AWS::ApiGatewayV2::*``), so CloudFormation is
botocore's Stubber here: it answers as AWS does and asserts every call and parameter we send
(CreateChangeSet CREATE then UPDATE with CAPABILITY_IAM + CAPABILITY_AUTO_EXPAND, the FAILED
"no changes" change set deleted, DeleteStack). The plain-CloudFormation path runs against moto
in ``test_deploy.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from mlflow_lambda.infra.deploy import deploy, destroy
from mlflow_lambda.infra.errors import DeployError
from tests.integration.deploy_helpers import write_outdir
from tests.moto_server import moto_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

REGION = "us-east-1"
BUCKET = "artifacts"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Client]:
    with moto_server() as url:
        client = boto3.client("s3", region_name=REGION, endpoint_url=url)
        client.create_bucket(Bucket=BUCKET)
        yield client


STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/churn/1"
CS_ID = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/cs-1/1"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
URL = "https://abc123.execute-api.us-east-1.amazonaws.com"
OUTPUTS = [
    {"OutputKey": "ApiUrl", "OutputValue": URL},
    {"OutputKey": "FunctionName", "OutputValue": "churn-ModelFunction-X"},
    {"OutputKey": "InvocationsUrl", "OutputValue": f"{URL}/invocations"},
]


class JsonOf:
    """Equal to a JSON document that parses to ``value`` (for Stubber's expected params)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and json.loads(other) == self.value

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JsonOf({self.value!r})"


def _stack(status: str, outputs: list[dict[str, str]] | None = None) -> dict[str, Any]:
    stack: dict[str, Any] = {
        "StackId": STACK_ID,
        "StackName": "churn",
        "CreationTime": datetime(2025, 1, 1, tzinfo=timezone.utc),
        "StackStatus": status,
    }
    if outputs:
        stack["Outputs"] = outputs
    return stack


@pytest.fixture
def sam_outdir(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A build dir with the real SAM template; returns it and the template deploy must send."""
    from mlflow_lambda.packager.template import TemplateOptions, dump_template, render_template

    tpl = render_template(TemplateOptions())
    outdir = write_outdir(tmp_path / "build", {"Resources": {}}, bundle=b"sam-zip")
    (outdir / "template.yaml").write_text(dump_template(tpl))
    sent = json.loads(json.dumps(tpl))
    key = f"churn/{hashlib.sha256(b'sam-zip').hexdigest()}.zip"
    sent["Resources"]["ModelFunction"]["Properties"]["CodeUri"] = {"Bucket": BUCKET, "Key": key}
    return outdir, sent


def _expect_change_set(
    stub: Any,
    kind: str,
    template: dict[str, Any],
    *,
    status: str = "CREATE_COMPLETE",
    reason: str | None = None,
) -> None:
    stub.add_response(
        "create_change_set",
        {"Id": CS_ID, "StackId": STACK_ID},
        {
            "StackName": "churn",
            "ChangeSetName": "cs-1",
            "ChangeSetType": kind,
            "Capabilities": CAPABILITIES,
            "Description": "mlflow-lambda: models:/churn/3",
            "Tags": [{"Key": "mlflow-lambda:model-uri", "Value": "models:/churn/3"}],
            "TemplateBody": JsonOf(template),
        },
    )
    where = {"ChangeSetName": CS_ID, "StackName": "churn"}
    stub.add_response("describe_change_set", {"Status": "CREATE_PENDING"}, where)
    answer = {"Status": status, **({"StatusReason": reason} if reason else {})}
    stub.add_response("describe_change_set", answer, where)


def _run(outdir: Path, cfn: Any, s3: S3Client, lines: list[str]) -> Any:
    return deploy(
        outdir,
        stack_name="churn",
        s3_bucket=BUCKET,
        region=REGION,
        endpoint_url=None,
        cfn=cfn,
        s3=s3,
        progress=lines.append,
        change_set_name="cs-1",
        sleep=lambda _: None,
    )


def test_sam_create_update_no_change_delete_calls(
    sam_outdir: tuple[Path, dict[str, Any]], s3: S3Client
) -> None:
    outdir, sent = sam_outdir
    cfn = boto3.client("cloudformation", region_name=REGION)
    lines: list[str] = []
    with Stubber(cfn) as stub:
        # create: no stack yet -> CREATE change set -> execute -> wait for CREATE_COMPLETE
        stub.add_client_error(
            "describe_stacks",
            "ValidationError",
            "Stack with id churn does not exist",
            expected_params={"StackName": "churn"},
        )
        _expect_change_set(stub, "CREATE", sent)
        stub.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID, "StackName": "churn"})
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("CREATE_IN_PROGRESS")]}, {"StackName": STACK_ID}
        )
        stub.add_response(
            "describe_stacks",
            {"Stacks": [_stack("CREATE_COMPLETE", OUTPUTS)]},
            {"StackName": STACK_ID},
        )
        created = _run(outdir, cfn, s3, lines)

        # update: the stack exists -> UPDATE change set
        stub.add_response(
            "describe_stacks",
            {"Stacks": [_stack("CREATE_COMPLETE", OUTPUTS)]},
            {"StackName": "churn"},
        )
        _expect_change_set(stub, "UPDATE", sent)
        stub.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID, "StackName": "churn"})
        stub.add_response(
            "describe_stacks",
            {"Stacks": [_stack("UPDATE_COMPLETE", OUTPUTS)]},
            {"StackName": STACK_ID},
        )
        updated = _run(outdir, cfn, s3, [])

        # no change: the change set FAILS with CloudFormation's reason, and is deleted
        stub.add_response(
            "describe_stacks",
            {"Stacks": [_stack("UPDATE_COMPLETE", OUTPUTS)]},
            {"StackName": "churn"},
        )
        _expect_change_set(
            stub,
            "UPDATE",
            sent,
            status="FAILED",
            reason="The submitted information didn't contain changes. Submit different "
            "information to create a change set.",
        )
        stub.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID, "StackName": "churn"})
        stub.add_response(
            "describe_stacks",
            {"Stacks": [_stack("UPDATE_COMPLETE", OUTPUTS)]},
            {"StackName": STACK_ID},
        )
        unchanged = _run(outdir, cfn, s3, [])

        # delete
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("UPDATE_COMPLETE")]}, {"StackName": "churn"}
        )
        stub.add_response("delete_stack", {}, {"StackName": STACK_ID})
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("DELETE_IN_PROGRESS")]}, {"StackName": STACK_ID}
        )
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("DELETE_COMPLETE")]}, {"StackName": STACK_ID}
        )
        deleted = destroy("churn", cfn=cfn, progress=lines.append, sleep=lambda _: None)
        stub.assert_no_pending_responses()

    outputs = {o["OutputKey"]: o["OutputValue"] for o in OUTPUTS}
    assert [
        (r.status, r.stack_id, r.outputs, r.endpoint_url) for r in (created, updated, unchanged)
    ] == [(s, STACK_ID, outputs, f"{URL}/invocations") for s in ("created", "updated", "no-change")]
    assert deleted == "deleted"
    key = sent["Resources"]["ModelFunction"]["Properties"]["CodeUri"]["Key"]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"sam-zip"
    assert lines == [
        f"Uploading bundle.zip (0.0 MB) to s3://{BUCKET}/{key}",
        "Creating change set cs-1 (CREATE) for stack churn",
        "Executing change set cs-1",
        "Stack churn: CREATE_IN_PROGRESS",
        "Stack churn: CREATE_COMPLETE",
        f"Stack churn CREATE_COMPLETE. Endpoint: {URL}/invocations",
        "Deleting stack churn",
        "Stack churn: DELETE_IN_PROGRESS",
        "Stack churn: DELETE_COMPLETE",
    ]


def test_sam_template_we_send_is_accepted_by_the_transform(
    sam_outdir: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CodeUri rewrite yields a template the real SAM translator turns into Lambda code."""
    from samtranslator.translator.transform import transform

    class NoPolicies:
        def load(self) -> dict[str, str]:
            raise AssertionError("no managed policy lookups (offline)")

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    _, sent = sam_outdir
    out = transform(json.loads(json.dumps(sent)), {}, NoPolicies())
    code = out["Resources"]["ModelFunction"]["Properties"]["Code"]
    key = sent["Resources"]["ModelFunction"]["Properties"]["CodeUri"]["Key"]
    assert code == {"S3Bucket": BUCKET, "S3Key": key}


def test_failed_stack_reports_cloudformation_reasons(
    sam_outdir: tuple[Path, dict[str, Any]], s3: S3Client
) -> None:
    outdir, sent = sam_outdir
    cfn = boto3.client("cloudformation", region_name=REGION)
    event = {
        "StackId": STACK_ID,
        "EventId": "e1",
        "StackName": "churn",
        "Timestamp": datetime(2025, 1, 1, tzinfo=timezone.utc),
        "LogicalResourceId": "ModelFunction",
        "ResourceStatus": "CREATE_FAILED",
        "ResourceStatusReason": "Unzipped size must be smaller than 262144000 bytes",
    }
    with Stubber(cfn) as stub:
        stub.add_client_error(
            "describe_stacks",
            "ValidationError",
            "Stack with id churn does not exist",
            expected_params={"StackName": "churn"},
        )
        _expect_change_set(stub, "CREATE", sent)
        stub.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID, "StackName": "churn"})
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("ROLLBACK_COMPLETE")]}, {"StackName": STACK_ID}
        )
        stub.add_response(
            "describe_stack_events", {"StackEvents": [event]}, {"StackName": STACK_ID}
        )
        with pytest.raises(DeployError) as info:
            _run(outdir, cfn, s3, [])
        # A later deploy refuses to update the rolled-back stack and says what to do.
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("ROLLBACK_COMPLETE")]}, {"StackName": "churn"}
        )
        with pytest.raises(DeployError) as again:
            _run(outdir, cfn, s3, [])
        stub.assert_no_pending_responses()
    assert str(info.value) == (
        "stack 'churn' ended in ROLLBACK_COMPLETE: ModelFunction: Unzipped size must be "
        "smaller than 262144000 bytes"
    )
    assert str(again.value) == (
        f"stack 'churn' is in ROLLBACK_COMPLETE and cannot be updated; run `mlflow-lambda "
        f"deploy {outdir} --stack-name churn --delete`, then deploy again"
    )


def _rollout_outdir(tmp_path: Path, bundle: bytes) -> tuple[Path, dict[str, Any]]:
    """A build of ``models:/churn@champion`` with a canary rollout, as ``package`` writes it."""
    from mlflow_lambda.packager.surface import Surface
    from mlflow_lambda.packager.template import TemplateOptions, dump_template, render_template

    uri = "models:/churn@champion"
    opts = Surface(rollout="canary-10-5m").template_options(TemplateOptions(), uri)
    tpl = render_template(opts)
    outdir = write_outdir(tmp_path / "build", {"Resources": {}}, bundle=bundle, model_uri=uri)
    (outdir / "template.yaml").write_text(dump_template(tpl))
    sent = json.loads(json.dumps(tpl))
    key = f"churn/{hashlib.sha256(bundle).hexdigest()}.zip"
    sent["Resources"]["ModelFunction"]["Properties"]["CodeUri"] = {"Bucket": BUCKET, "Key": key}
    return outdir, sent


def _expect_rollout_change_set(stub: Any, kind: str, template: dict[str, Any]) -> None:
    where = {"ChangeSetName": CS_ID, "StackName": "churn"}
    stub.add_response(
        "create_change_set",
        {"Id": CS_ID, "StackId": STACK_ID},
        {
            "StackName": "churn",
            "ChangeSetName": "cs-1",
            "ChangeSetType": kind,
            "Capabilities": CAPABILITIES,
            "Description": "mlflow-lambda: models:/churn@champion",
            "Tags": [{"Key": "mlflow-lambda:model-uri", "Value": "models:/churn@champion"}],
            "TemplateBody": JsonOf(template),
        },
    )
    stub.add_response("describe_change_set", {"Status": "CREATE_COMPLETE"}, where)
    stub.add_response("execute_change_set", {}, where)


def test_rollout_deploy_calls_shift_then_roll_back(tmp_path: Path, s3: S3Client) -> None:
    """Create, then a new version rolled out by CodeDeploy (the stack waits in
    UPDATE_IN_PROGRESS while traffic shifts), then one whose alarm fires and is rolled back."""
    outdir, first = _rollout_outdir(tmp_path / "v1", b"model-v1")
    props = first["Resources"]["ModelFunction"]["Properties"]
    assert (props["AutoPublishAlias"], props["DeploymentPreference"]) == (
        "champion",
        {
            "Type": "Canary10Percent5Minutes",
            "Alarms": [{"Ref": "ModelErrorsAlarm"}, {"Fn::Sub": "${AWS::StackName}-model-5xx"}],
        },
    )
    cfn = boto3.client("cloudformation", region_name=REGION)
    lines: list[str] = []
    with Stubber(cfn) as stub:
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id churn does not exist",
            expected_params={"StackName": "churn"},
        )  # fmt: skip
        _expect_rollout_change_set(stub, "CREATE", first)
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("CREATE_COMPLETE", OUTPUTS)]},
            {"StackName": STACK_ID},
        )  # fmt: skip
        created = _run(outdir, cfn, s3, lines)

        # the MLflow alias moved to version 4: a new bundle, the same template shape
        outdir, second = _rollout_outdir(tmp_path / "v2", b"model-v2")
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("CREATE_COMPLETE", OUTPUTS)]},
            {"StackName": "churn"},
        )  # fmt: skip
        _expect_rollout_change_set(stub, "UPDATE", second)
        for status in ("UPDATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_IN_PROGRESS",
                       "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_COMPLETE"):  # fmt: skip
            stub.add_response(
                "describe_stacks", {"Stacks": [_stack(status, OUTPUTS)]}, {"StackName": STACK_ID}
            )
        updated = _run(outdir, cfn, s3, lines)

        # version 5 fails its canary: the alarm fires, CodeDeploy shifts back, the stack rolls back
        outdir, third = _rollout_outdir(tmp_path / "v3", b"model-v3")
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("UPDATE_COMPLETE", OUTPUTS)]},
            {"StackName": "churn"},
        )  # fmt: skip
        _expect_rollout_change_set(stub, "UPDATE", third)
        for status in ("UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS",
                       "UPDATE_ROLLBACK_COMPLETE"):  # fmt: skip
            stub.add_response(
                "describe_stacks", {"Stacks": [_stack(status, OUTPUTS)]}, {"StackName": STACK_ID}
            )
        reason = (
            "CodeDeploy deployment d-ABC123 failed: the deployment was stopped because "
            "alarm ModelErrorsAlarm was in ALARM"
        )
        event = {
            "StackId": STACK_ID, "EventId": "e9", "StackName": "churn",
            "Timestamp": datetime(2025, 1, 2, tzinfo=timezone.utc),
            "LogicalResourceId": "ModelFunctionAliaschampion",
            "ResourceStatus": "UPDATE_FAILED", "ResourceStatusReason": reason,
        }  # fmt: skip
        stub.add_response(
            "describe_stack_events", {"StackEvents": [event]}, {"StackName": STACK_ID}
        )
        with pytest.raises(DeployError) as info:
            _run(outdir, cfn, s3, lines)
        stub.assert_no_pending_responses()

    assert (created.status, updated.status) == ("created", "updated")
    assert str(info.value) == (
        f"stack 'churn' ended in UPDATE_ROLLBACK_COMPLETE: ModelFunctionAliaschampion: {reason}; "
        "the update was rolled back and the previous version still serves"
    )
    shift = (
        "Rolling the new version out (Canary10Percent5Minutes); CodeDeploy rolls back on an alarm"
    )
    # the two updates shift traffic; the create points the alias at version 1 outright
    assert [line for line in lines if line.startswith("Rolling")] == [shift, shift]
    assert "Stack churn: UPDATE_ROLLBACK_IN_PROGRESS" in lines
