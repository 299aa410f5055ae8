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

from mlflow_lambda.infra.plugin import LambdaDeploymentClient
from mlflow_lambda.packager.build import BuildOptions
from tests.integration.deploy_helpers import (
    FAKE_CREDENTIALS,
    PLAIN_TEMPLATE,
    moto_api,
    write_outdir,
)
from tests.moto_server import moto_server

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent.parent
VENV_BIN = REPO / ".venv" / "bin"
REGION = "us-east-1"
BUCKET = "artifacts"
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


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
