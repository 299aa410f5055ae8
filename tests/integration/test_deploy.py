"""``infra.deploy``: real S3 and CloudFormation calls against a moto server, SAM calls stubbed.

Where moto cannot go: moto's CloudFormation has no ``AWS::Serverless-2016-10-31`` transform
and no ``AWS::ApiGatewayV2::*`` resources (FINDINGS.md), so the template ``package`` writes
cannot be created there. The moto half of this file deploys a plain-CloudFormation template
(an IAM role and an ``AWS::Lambda::Function`` whose ``Code`` is ``bundle.zip``) through the
same code path: artifact upload, change sets (CREATE, UPDATE, the FAILED "no changes" one),
stack waits, Outputs, delete. The Stubber half feeds the real SAM template to a stubbed
CloudFormation client and asserts every call and parameter we send to AWS.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from infra.deploy import deploy, load_template, point_code_at
from infra.stack import destroy
from packager.errors import DeployError
from tests.integration.deploy_helpers import moto_env, write_outdir

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

REGION = "us-east-1"
BUCKET = "artifacts"

# A template moto can create: no transform, no API Gateway v2; same code path as SAM's.
PLAIN_TEMPLATE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "ModelFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": "bundle.zip",
                "Handler": "handler.lambda_function.handler",
                "Runtime": "python3.12",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            },
        },
    },
    "Outputs": {
        "FunctionName": {"Value": {"Ref": "ModelFunction"}},
        "InvocationsUrl": {
            "Value": {"Fn::Sub": "https://${ModelFunction}.example.invalid/invocations"}
        },
    },
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_env() as url:
        boto3.client("s3", region_name=REGION, endpoint_url=url).create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture
def cfn(endpoint: str) -> CloudFormationClient:
    return boto3.client("cloudformation", region_name=REGION, endpoint_url=endpoint)


@pytest.fixture
def s3(endpoint: str) -> S3Client:
    return boto3.client("s3", region_name=REGION, endpoint_url=endpoint)


def _code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256: base64 of the zip's sha256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_create_then_no_change_then_update_then_delete(
    endpoint: str, cfn: CloudFormationClient, s3: S3Client, tmp_path: Path
) -> None:
    outdir = write_outdir(tmp_path / "build", PLAIN_TEMPLATE, bundle=b"zip-v1")
    lines: list[str] = []
    kwargs: dict[str, Any] = dict(
        stack_name="churn",
        s3_bucket=BUCKET,
        region=REGION,
        endpoint_url=endpoint,
        progress=lines.append,
        sleep=lambda _: None,
    )

    first = deploy(outdir, **kwargs)
    key1 = f"churn/{hashlib.sha256(b'zip-v1').hexdigest()}.zip"
    assert (first.status, first.stack_name, first.artifact_uri) == (
        "created",
        "churn",
        f"s3://{BUCKET}/{key1}",
    )
    assert s3.get_object(Bucket=BUCKET, Key=key1)["Body"].read() == b"zip-v1"
    # moto 5.2.5 does not rebuild a stack's Outputs when a change set is executed
    # (cloudformation/models.py, ChangeSet.apply updates only the resource map), so the
    # Outputs and the endpoint URL are asserted in the Stubber tests below.
    resources = cfn.describe_stack_resources(StackName="churn")["StackResources"]
    function_name = next(
        r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "ModelFunction"
    )
    lam = boto3.client("lambda", region_name=REGION, endpoint_url=endpoint)
    assert lam.get_function_configuration(FunctionName=function_name)["CodeSha256"] == (
        _code_sha256(b"zip-v1")
    )
    stack = cfn.describe_stacks(StackName="churn")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {t["Key"]: t["Value"] for t in stack["Tags"]} == {
        "mlflow-lambda:model-uri": "models:/churn/3"
    }

    lines.clear()
    second = deploy(outdir, **kwargs)
    assert (second.status, second.stack_id) == ("no-change", first.stack_id)
    assert f"Artifact already uploaded: s3://{BUCKET}/{key1}" in lines
    assert lines[-1] == "No changes to deploy: stack churn is up to date"
    # The FAILED "no changes" change set is deleted, not left behind in the console. (moto
    # also keeps executed change sets in the list, which AWS drops, so filter on FAILED.)
    summaries = cfn.list_change_sets(StackName="churn")["Summaries"]
    assert [s["ChangeSetName"] for s in summaries if s["Status"] == "FAILED"] == []

    (outdir / "bundle.zip").write_bytes(b"zip-v2")
    third = deploy(outdir, **kwargs)
    assert (third.status, third.stack_id) == ("updated", first.stack_id)
    assert lam.get_function_configuration(FunctionName=function_name)["CodeSha256"] == (
        _code_sha256(b"zip-v2")
    )

    assert (
        destroy(
            "churn",
            region=REGION,
            endpoint_url=endpoint,
            progress=lines.append,
            sleep=lambda _: None,
        )
        == "deleted"
    )
    assert [
        s["StackName"]
        for s in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])[
            "StackSummaries"
        ]
    ].count("churn") == 0
    assert destroy("churn", cfn=cfn, progress=lines.append) == "absent"


def test_model_on_s3_is_uploaded_from_outdir_or_refused(
    endpoint: str, cfn: CloudFormationClient, s3: S3Client, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket="models")
    files = {"MLmodel": hashlib.sha256(b"flavors: {}\n").hexdigest()}
    model = {"location": "s3://models/churn/3", "files": files}
    outdir = write_outdir(tmp_path / "build", PLAIN_TEMPLATE, bundle=b"zip", model=model)
    with pytest.raises(DeployError) as info:
        deploy(
            outdir,
            stack_name="s3model",
            s3_bucket=BUCKET,
            region=REGION,
            endpoint_url=endpoint,
            progress=lambda _: None,
            sleep=lambda _: None,
        )
    assert str(info.value) == (
        "the model at 's3://models/churn/3' does not match the bundle's model.json "
        "(MLmodel: missing); package again with --model-location s3://models/churn/3, "
        "which uploads it"
    )
    # Refused before any CloudFormation call: no stack, not even REVIEW_IN_PROGRESS.
    assert "s3model" not in {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]}

    (outdir / "model").mkdir()
    (outdir / "model" / "MLmodel").write_bytes(b"flavors: {}\n")
    result = deploy(
        outdir,
        stack_name="s3model",
        s3_bucket=BUCKET,
        region=REGION,
        endpoint_url=endpoint,
        progress=lambda _: None,
        sleep=lambda _: None,
    )
    assert result.status == "created"
    got = s3.get_object(Bucket="models", Key="churn/3/MLmodel")
    assert (got["Body"].read(), got["Metadata"]) == (b"flavors: {}\n", {"sha256": files["MLmodel"]})
    destroy("s3model", cfn=cfn, progress=lambda _: None, sleep=lambda _: None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no-manifest", "has no manifest.json; run `mlflow-lambda package -o"),
        ("no-bundle", "bundle.zip' does not exist; run `mlflow-lambda package` first"),
        ("image", "holds an image build; `deploy` uploads zip bundles only"),
        ("no-bucket", "cannot use artifact bucket 'missing-bucket'"),
        ("no-code", "the template has no function whose CodeUri/Code is a local path"),
    ],
)
def test_refusals(endpoint: str, tmp_path: Path, change: str, message: str) -> None:
    template = json.loads(json.dumps(PLAIN_TEMPLATE))
    if change == "no-code":
        template["Resources"]["ModelFunction"]["Properties"]["Code"] = {
            "S3Bucket": "b",
            "S3Key": "k",
        }
    outdir = write_outdir(
        tmp_path / "b", template, bundle=b"z", target="image" if change == "image" else "zip"
    )
    if change == "no-manifest":
        (outdir / "manifest.json").unlink()
    if change == "no-bundle":
        (outdir / "bundle.zip").unlink()
    bucket = "missing-bucket" if change == "no-bucket" else BUCKET
    with pytest.raises(DeployError) as info:
        deploy(
            outdir,
            stack_name="refused",
            s3_bucket=bucket,
            region=REGION,
            endpoint_url=endpoint,
            progress=lambda _: None,
        )
    assert message in str(info.value)


def test_load_template_reads_short_form_tags(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: ./bundle.zip\n"
        "      Role: !GetAtt Role.Arn\n"
        "      Environment: {Variables: {A: !Ref P, B: !Sub '${AWS::Region}-x'}}\n"
        "      Layers: !If [HasLayer, [!Ref Layer], !Ref AWS::NoValue]\n"
    )
    template = point_code_at(load_template(path), "bkt", "k/x.zip")
    assert template == {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": {"Bucket": "bkt", "Key": "k/x.zip"},
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Environment": {
                        "Variables": {"A": {"Ref": "P"}, "B": {"Fn::Sub": "${AWS::Region}-x"}}
                    },
                    "Layers": {"Fn::If": ["HasLayer", [{"Ref": "Layer"}], {"Ref": "AWS::NoValue"}]},
                },
            }
        }
    }


# --- The SAM path, CloudFormation stubbed ----------------------------------------------
# moto cannot run the SAM transform, so these tests give ``deploy`` the real template
# ``package`` writes, a real S3 (the moto server) and a CloudFormation client whose answers
# are stubbed with botocore's Stubber, which also asserts every call and its parameters.

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
    from datetime import datetime, timezone

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
    from infra.template import TemplateOptions, dump_template, render_template

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
    from botocore.stub import Stubber

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
    from datetime import datetime, timezone

    from botocore.stub import Stubber

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
