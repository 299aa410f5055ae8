"""``infra.deploy``: real S3 and CloudFormation calls against a moto server.

Where moto cannot go: moto's CloudFormation has no ``AWS::Serverless-2016-10-31`` transform
and no ``AWS::ApiGatewayV2::*`` resources (docs/findings.md), so the template ``package`` writes
cannot be created there, and moto 5.2.5 does not fill a stack's Outputs after a change set
runs. This file deploys a plain-CloudFormation template (an IAM role and an
``AWS::Lambda::Function`` whose ``Code`` is ``bundle.zip``) through the same code path:
artifact upload, change sets (CREATE, UPDATE, the FAILED "no changes" one), stack waits,
delete. ``test_deploy_sam.py`` feeds the real SAM template to a stubbed CloudFormation client,
asserting every call and parameter we send, and the Outputs/endpoint URL we read back.
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

from mlflow_lambda.infra.deploy import deploy, destroy
from mlflow_lambda.infra.errors import DeployError
from mlflow_lambda.infra.stack import load_template, point_code_at
from tests.integration.deploy_helpers import PLAIN_TEMPLATE, write_outdir
from tests.moto_server import moto_server

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

REGION = "us-east-1"
BUCKET = "artifacts"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
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


def test_default_bucket_is_created_private_in_the_region(endpoint: str, tmp_path: Path) -> None:
    outdir = write_outdir(tmp_path / "build", PLAIN_TEMPLATE, bundle=b"zip")
    lines: list[str] = []
    quiet: dict[str, Any] = {"progress": lines.append, "sleep": lambda _: None}
    region = "eu-west-1"
    first = deploy(
        outdir, stack_name="auto", s3_bucket=None, region=region, endpoint_url=endpoint, **quiet
    )
    bucket = "mlflow-lambda-123456789012-eu-west-1"  # moto's account id
    assert first.artifact_uri.startswith(f"s3://{bucket}/auto/")
    assert lines[0] == f"Creating artifact bucket {bucket}"
    s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == region
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    lines.clear()
    again = deploy(
        outdir, stack_name="auto", s3_bucket=None, region=region, endpoint_url=endpoint, **quiet
    )
    assert (again.status, again.artifact_uri) == ("no-change", first.artifact_uri)
    assert not any(line.startswith("Creating artifact bucket") for line in lines)


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
