"""The ``lambda`` deployments plugin against a moto server: in-process and through the CLI.

How far moto goes, and where these tests stop:
- ``create``/``update`` through the client run the real ``infra.deploy`` against moto with a
  stand-in build that writes a plain-CloudFormation template: moto has no SAM transform, and
  a real build installs wheels from PyPI (``test_deploy_sam.py`` covers the SAM calls).
- moto does not fill Outputs after a change set runs, so the stack the CLI predicts against is
  made with ``CreateStack`` (which does); its Lambda uses moto's Docker-free backend, which
  answers an invoke with a queued result, or echoes the payload when none is queued.
- ``mlflow deployments create`` through the CLI runs the real build, up to resolving the model.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from mlflow.exceptions import MlflowException

from mlflow_lambda.infra.deploy import DeployResult
from mlflow_lambda.infra.plugin import LambdaDeploymentClient
from mlflow_lambda.infra.stack import load_template
from mlflow_lambda.packager.build import BuildOptions
from mlflow_lambda.packager.surface import SURFACE_KEYS
from mlflow_lambda.packager.template import TemplateOptions, write_template
from tests.integration.deploy_helpers import (
    FAKE_CREDENTIALS,
    PLAIN_TEMPLATE,
    moto_api,
    write_outdir,
)
from tests.moto_server import moto_server
from tests.parity_corpus import IRIS, R1, R2

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent.parent
VENV_BIN = REPO / ".venv" / "bin"
REGION = "us-east-1"
BUCKET = "artifacts"
COLUMNS, ROWS = IRIS, [R1, R2]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        # moto's Lambda without Docker: invokes answer a queued result or echo the payload
        moto_api(url, "config", {"lambda": {"use_docker": False}})
        boto3.client("s3", region_name=REGION, endpoint_url=url).create_bucket(Bucket=BUCKET)
        yield url
        # moto's config is process-wide: give the next module the default back
        moto_api(url, "config", {"lambda": {"use_docker": True}})


@pytest.fixture(scope="module")
def cli_stack(endpoint: str) -> str:
    """A deployed-looking stack ``cli-churn`` (with Outputs) and a foreign stack ``billing``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler/__init__.py", "")
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    s3.put_object(Bucket=BUCKET, Key="cli/bundle.zip", Body=buf.getvalue())
    template = json.loads(json.dumps(PLAIN_TEMPLATE))
    props = template["Resources"]["ModelFunction"]["Properties"]
    props["Code"] = {"S3Bucket": BUCKET, "S3Key": "cli/bundle.zip"}
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=endpoint)
    cfn.create_stack(
        StackName="cli-churn",
        TemplateBody=json.dumps(template),
        Tags=[{"Key": "mlflow-lambda:model-uri", "Value": "models:/churn/3"}],
    )
    cfn.create_stack(StackName="billing", TemplateBody=json.dumps(template))
    return "cli-churn"


def mlflow_cli(endpoint: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``mlflow deployments ARGS`` in a fresh process that can reach only the moto server."""
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": endpoint,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        **FAKE_CREDENTIALS,
    }
    return subprocess.run(
        [str(VENV_BIN / "mlflow"), "deployments", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_cli_help_list_get(endpoint: str, cli_stack: str, tmp_path: Path) -> None:
    done = mlflow_cli(endpoint, tmp_path, "help", "-t", "lambda")
    assert done.returncode == 0, done.stderr
    assert "Target URI: 'lambda' (region from the AWS configuration)" in done.stdout
    listed = [line.split(":")[0].strip() for line in done.stdout.splitlines() if ": " in line]
    assert set(SURFACE_KEYS) <= set(listed), sorted(set(SURFACE_KEYS) - set(listed))
    assert "    rollout: how a new version replaces the alias's: all-at-once|canary-10-5m" in (
        done.stdout
    )

    done = mlflow_cli(endpoint, tmp_path, "list", "-t", "lambda")
    assert done.returncode == 0, done.stderr
    header, listing = done.stdout.strip().split("\n", 1)
    assert header == "List of all deployments:"
    names = [d["name"] for d in ast.literal_eval(listing)]
    assert "cli-churn" in names
    assert "billing" not in names  # not deployed by mlflow-lambda

    done = mlflow_cli(endpoint, tmp_path, "get", "-t", "lambda:/us-east-1", "--name", cli_stack)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    function = ast.literal_eval(fields["outputs"])["FunctionName"]
    assert fields == {
        "name": "cli-churn",
        "flavor": "python_function",
        "model_uri": "models:/churn/3",
        "status": "CREATE_COMPLETE",
        "stack_id": fields["stack_id"],
        "endpoint_url": f"https://{function}.example.invalid/invocations",
        "outputs": fields["outputs"],
    }
    assert fields["stack_id"].startswith("arn:aws:cloudformation:us-east-1:123456789012:stack/")


def test_cli_predict_invokes_the_function(endpoint: str, cli_stack: str, tmp_path: Path) -> None:
    # The CLI reads the file with pandas.read_json: a list of records is a DataFrame.
    records = [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]
    (tmp_path / "input.json").write_text(json.dumps(records))
    predict = ("predict", "-t", "lambda", "--name", cli_stack, "-I", "input.json")
    # Nothing queued: moto echoes the payload, which shows the exact body we invoked with.
    done = mlflow_cli(endpoint, tmp_path, *predict)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}
    # A queued answer plays the handler's: the CLI prints it as the predictions.
    moto_api(endpoint, "static/lambda-simple/response", {"results": ['{"predictions": [0, 2]}']})
    done = mlflow_cli(endpoint, tmp_path, *predict)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"predictions": [0, 2]}


def test_cli_delete(endpoint: str, cli_stack: str, tmp_path: Path) -> None:
    done = mlflow_cli(endpoint, tmp_path, "delete", "-t", "lambda", "--name", "billing")
    assert done.returncode != 0
    assert "stack 'billing' was not deployed by mlflow-lambda" in done.stderr
    done = mlflow_cli(endpoint, tmp_path, "delete", "-t", "lambda", "--name", cli_stack)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Deployment {cli_stack} is deleted"
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=endpoint)
    live = {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]
            if s["StackStatus"] != "DELETE_COMPLETE"}  # fmt: skip
    assert cli_stack not in live and "billing" in live


def test_cli_create_runs_the_real_build(endpoint: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    done = mlflow_cli(
        endpoint, tmp_path, "create", "-t", "lambda", "--name", "churn", "-m", str(missing)
    )
    assert done.returncode != 0
    assert "deployment 'churn' failed:" in done.stderr
    assert str(missing) in done.stderr


class PlainBuild:
    """Stands in for ``packager.build.build``: a plain template moto can create."""

    def __init__(self) -> None:
        self.uris: list[str] = []

    def __call__(self, opts: BuildOptions) -> None:
        self.uris.append(opts.model_uri)
        bundle = f"bundle of {opts.model_uri}".encode()
        write_outdir(opts.outdir, PLAIN_TEMPLATE, bundle=bundle, model_uri=opts.model_uri)


def test_client_create_update_delete_on_moto(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    build = PlainBuild()
    client = LambdaDeploymentClient("lambda:/us-east-1", build=build)
    config = {"s3_bucket": BUCKET}
    created = client.create_deployment("inproc", "models:/churn/3", config=config)
    assert (created["name"], created["status"], created["model_uri"]) == (
        "inproc",
        "created",
        "models:/churn/3",
    )
    got: dict[str, Any] = client.get_deployment("inproc")
    assert (got["status"], got["model_uri"], got["stack_id"]) == (
        "CREATE_COMPLETE",
        "models:/churn/3",
        created["stack_id"],
    )
    assert "inproc" in [d["name"] for d in client.list_deployments()]
    with pytest.raises(MlflowException, match="already exists"):
        client.create_deployment("inproc", "models:/churn/3", config=config)

    same = client.update_deployment("inproc", config=config)  # same model, same bundle
    assert same["status"] == "no-change"
    newer = client.update_deployment("inproc", model_uri="models:/churn/4", config=config)
    assert newer["status"] == "updated"
    assert build.uris == ["models:/churn/3", "models:/churn/3", "models:/churn/4"]

    client.delete_deployment("inproc")
    assert "inproc" not in [d["name"] for d in client.list_deployments()]
    with pytest.raises(MlflowException, match="no lambda deployment named 'inproc'"):
        client.get_deployment("inproc")


def test_cli_refuses_an_impossible_surface_before_building(endpoint: str, tmp_path: Path) -> None:
    """A bad -C value is one line from the plugin, before any build or AWS call."""
    create = ("create", "-t", "lambda", "--name", "churn", "-m", str(tmp_path / "no-model"))
    done = mlflow_cli(endpoint, tmp_path, *create, "-C", "rollout=canary-10-5m")
    assert done.returncode != 0
    assert (
        "rollout 'canary-10-5m' moves traffic between versions behind an alias: give --alias "
        "NAME, or package a models:/<name>@<alias> URI"
    ) in done.stderr
    assert "deployment 'churn' failed" not in done.stderr  # refused before the build ran


class TemplateBuild:
    """Stands in for ``packager.build.build``: writes the template the real build would for
    ``opts.surface`` (the render step, without installing wheels)."""

    def __call__(self, opts: BuildOptions) -> None:
        write_outdir(opts.outdir, PLAIN_TEMPLATE, bundle=b"zip", model_uri=opts.model_uri)
        write_template(
            opts.outdir, opts.surface.template_options(TemplateOptions(), opts.model_uri)
        )


class RecordingDeployer:
    """Stands in for AWS: keeps the template each deploy would send, answers like a stack."""

    def __init__(self) -> None:
        self.templates: list[dict[str, Any]] = []
        self.stack: dict[str, Any] | None = None

    def deploy(
        self, outdir: Path, stack_name: str, s3_bucket: str | None, tags: Any
    ) -> DeployResult:
        self.templates.append(load_template(outdir / "template.yaml"))
        uri = json.loads((outdir / "manifest.json").read_text())["model"]["uri"]
        self.stack = {
            "StackName": stack_name, "StackStatus": "UPDATE_COMPLETE",
            "Tags": [{"Key": "mlflow-lambda:model-uri", "Value": uri}],
        }  # fmt: skip
        return DeployResult(stack_name, "arn:stack", "created")

    def destroy(self, stack_name: str) -> str:
        return "deleted"

    def find(self, stack_name: str) -> dict[str, Any] | None:
        return self.stack

    def stacks(self) -> list[dict[str, Any]]:
        return [self.stack] if self.stack else []

    def invoke(self, function_name: str, body: Any) -> dict[str, Any]:
        return {}


def test_config_keys_reach_the_template_on_create_and_update() -> None:
    deployer = RecordingDeployer()
    client = LambdaDeploymentClient("lambda", deployer=deployer, build=TemplateBuild())
    config = {
        "endpoint": "rest-api",
        "auth": "iam",
        "throttle": "5,10",
        "reserved_concurrency": "8",
        "memory": "2048",
        "env": "LOG_LEVEL=debug",
        "tags": "team=ml",
        "log_retention": "14",
        "rollout": "canary-10-5m",
    }
    client.create_deployment("churn", "models:/churn@champion", config=config)
    resources = deployer.templates[0]["Resources"]
    function = resources["ModelFunction"]["Properties"]
    assert (function["AutoPublishAlias"], function["DeploymentPreference"]["Type"]) == (
        "champion",  # the MLflow alias of the URI
        "Canary10Percent5Minutes",
    )
    assert (function["ReservedConcurrentExecutions"], function["Tags"]) == (8, {"team": "ml"})
    assert function["Environment"] == {"Variables": {"LOG_LEVEL": "debug"}}
    assert deployer.templates[0]["Parameters"]["MemorySize"]["Default"] == 2048
    api = resources["ModelRestApi"]["Properties"]
    assert api["Auth"] == {"DefaultAuthorizer": "AWS_IAM", "InvokeRole": "NONE"}
    assert api["MethodSettings"][0]["ThrottlingRateLimit"] == 5
    assert resources["ModelLogGroup"]["Properties"]["RetentionInDays"] == 14

    # the MLflow alias moved: update rebuilds the stack's own URI, rolled out the new way
    client.update_deployment("churn", config={"rollout": "linear-10-1m", "throttle": "off"})
    resources = deployer.templates[1]["Resources"]
    function = resources["ModelFunction"]["Properties"]
    assert (function["AutoPublishAlias"], function["DeploymentPreference"]["Type"]) == (
        "champion",
        "Linear10PercentEvery1Minute",
    )
    assert "DefaultRouteSettings" not in resources["ModelHttpApi"]["Properties"]
    with pytest.raises(MlflowException, match="throttle 'fast' must be RATE,BURST"):
        client.update_deployment("churn", config={"throttle": "fast"})
    assert len(deployer.templates) == 2
