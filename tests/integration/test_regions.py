"""Where ``deploy`` and the ``lambda`` plugin take the region from, and what they say without one.

Real components: a moto server (CloudFormation and S3 keep one state per region), the real
``mlflow-lambda`` and ``mlflow deployments`` CLIs in fresh processes whose only AWS settings
are the ones each test gives (``AWS_REGION``, ``AWS_DEFAULT_REGION``, a profile file).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import boto3
import pytest

from tests.integration.deploy_helpers import PLAIN_TEMPLATE, write_outdir
from tests.moto_server import FAKE_AWS_ENV, moto_server

pytestmark = pytest.mark.integration

VENV_BIN = Path(__file__).resolve().parent.parent.parent / ".venv" / "bin"
TAG = [{"Key": "mlflow-lambda:model-uri", "Value": "models:/churn/3"}]
REGIONS = ("eu-west-3", "ap-south-1", "eu-north-1", "us-east-1")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto, with one mlflow-lambda stack per region, named after its region."""
    with moto_server() as url:
        for region in REGIONS:
            cfn = boto3.client("cloudformation", region_name=region, endpoint_url=url)
            body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
            cfn.create_stack(StackName=f"in-{region}", TemplateBody=body, Tags=TAG)
        yield url


def _run(
    argv: list[str], endpoint: str, home: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in FAKE_AWS_ENV.items() if k != "AWS_CONFIG_FILE"}
    base |= {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(home), "AWS_ENDPOINT_URL": endpoint}
    base.setdefault("AWS_CONFIG_FILE", str(home / "no-aws-config"))
    return subprocess.run(
        argv, env={**base, **env}, cwd=home, capture_output=True, text=True, timeout=180
    )


def _profile(home: Path, region: str) -> dict[str, str]:
    config = home / "aws-config"
    config.write_text(f"[profile work]\nregion = {region}\n")
    return {"AWS_CONFIG_FILE": str(config), "AWS_PROFILE": "work"}


def _ways(home: Path) -> list[tuple[dict[str, str], str]]:
    return [
        ({"AWS_REGION": "eu-west-3"}, "eu-west-3"),
        ({"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
        ({"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "ap-south-1"}, "eu-west-3"),
        (_profile(home, "eu-north-1"), "eu-north-1"),
    ]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """This process's AWS settings with no region anywhere; each test adds the one it tries."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    return monkeypatch


def _use(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    # boto3's default session reads the profile once per process; a user's process has one
    # environment, this one changes it, so each setting starts a session of its own.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_the_plugin_lists_the_stacks_of_the_region_the_environment_names(
    endpoint: str, tmp_path: Path, aws_env: pytest.MonkeyPatch
) -> None:
    from mlflow_lambda.infra.plugin import LambdaDeploymentClient
    from mlflow_lambda.infra.plugin_aws import AwsDeployer

    for env, region in _ways(tmp_path):
        _use(aws_env, env)
        client = LambdaDeploymentClient("lambda", deployer=AwsDeployer(None, endpoint))
        assert [d["name"] for d in client.list_deployments()] == [f"in-{region}"], env
    # the target URI's region wins over the environment
    _use(aws_env, {"AWS_REGION": "eu-west-3"})
    client = LambdaDeploymentClient(
        "lambda:/us-east-1", deployer=AwsDeployer("us-east-1", endpoint)
    )
    assert [d["name"] for d in client.list_deployments()] == ["in-us-east-1"]
    # and the real CLI, as a user runs it
    done = _run([str(VENV_BIN / "mlflow"), "deployments", "list", "-t", "lambda"],
                endpoint, tmp_path, {"AWS_REGION": "eu-north-1"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "'in-eu-north-1'" in done.stdout and "'in-eu-west-3'" not in done.stdout


def test_the_plugin_without_a_region_says_what_to_set_in_one_line(
    endpoint: str, tmp_path: Path
) -> None:
    done = _run([str(VENV_BIN / "mlflow"), "deployments", "get", "-t", "lambda", "--name", "x"],
                endpoint, tmp_path, {})  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: no AWS region: use the target 'lambda:/<region>' (e.g. -t lambda:/eu-west-1), "
        "set AWS_REGION, or set region in your AWS profile (aws configure set region eu-west-1)"
    ]
    assert "--region" not in done.stderr  # `mlflow deployments` has no such flag


def test_plugin_errors_are_one_line_and_still_mlflow_exceptions(tmp_path: Path) -> None:
    from mlflow.exceptions import MlflowException

    from mlflow_lambda.infra.plugin import LambdaDeploymentClient

    client = LambdaDeploymentClient("lambda")
    with pytest.raises(MlflowException, match="unknown config option"):
        client.create_deployment("x", "models:/m/1", config={"regoin": "eu-west-1"})
    done = _run([str(VENV_BIN / "mlflow"), "deployments", "create", "-t", "lambda:/eu-west-3",
                 "--name", "x", "-m", "models:/m/1", "-C", "regoin=eu-west-1"],
                "http://127.0.0.1:9", tmp_path, {})  # fmt: skip
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr and "'regoin'" in done.stderr


def test_deploy_takes_the_region_from_the_environment_or_the_profile(
    endpoint: str, tmp_path: Path, aws_env: pytest.MonkeyPatch
) -> None:
    from tests.integration.conftest import run_cli

    outdir = write_outdir(tmp_path / "build", PLAIN_TEMPLATE, bundle=b"PK\x05\x06" + bytes(18))
    for i, (env, region) in enumerate(_ways(tmp_path)):
        _use(aws_env, env)
        bucket = f"artifacts-{i}"
        s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        argv = ["deploy", outdir, "--stack-name", f"deployed-{i}", "--s3-bucket", bucket]
        assert run_cli(*argv, "--endpoint-url", endpoint) == 0, env
        cfn = boto3.client("cloudformation", region_name=region, endpoint_url=endpoint)
        names = {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}
        assert f"deployed-{i}" in names, (env, names)


def test_deploy_without_a_region_says_what_to_set(endpoint: str, tmp_path: Path) -> None:
    outdir = write_outdir(tmp_path / "build", PLAIN_TEMPLATE, bundle=b"PK\x05\x06" + bytes(18))
    done = _run([str(VENV_BIN / "mlflow-lambda"), "deploy", str(outdir), "--stack-name", "x"],
                endpoint, tmp_path, {})  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: no AWS region: pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), or set "
        "region in your AWS profile (aws configure set region eu-west-1)"
    ]
