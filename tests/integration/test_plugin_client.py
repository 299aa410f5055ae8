"""The ``lambda`` deployments client with injected seams: a fake deployer and a fake build.

``FakeDeployer`` is a real object that keeps stacks in a dict and records every call; its
``invoke`` runs the real handler on the body the client sends (in a fresh interpreter, as
Lambda would), so ``predict`` is checked end to end against the scoring protocol. The same
client against a moto server and through the ``mlflow deployments`` CLI is in
``test_plugin.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pytest
from mlflow.exceptions import MlflowException

from mlflow_lambda.infra.deploy import DeployResult
from mlflow_lambda.infra.errors import DeployError
from mlflow_lambda.infra.plugin import LambdaDeploymentClient
from mlflow_lambda.packager.build import BuildOptions
from mlflow_lambda.packager.inspection import write_model_config
from tests.mlflow_models import LoggedModel
from tests.parity_corpus import IRIS, R1, R2

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent.parent
COLUMNS, ROWS = IRIS, [R1, R2]


class FakeDeployer:
    """Stacks in a dict; every call recorded; ``invoke`` delegates to ``answer``."""

    def __init__(self, answer: Any = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.stacks_by_name: dict[str, dict[str, Any]] = {}
        self.answer = answer

    def add_stack(
        self, name: str, tags: Mapping[str, str], status: str = "CREATE_COMPLETE"
    ) -> None:
        self.stacks_by_name[name] = {
            "StackName": name,
            "StackId": f"id/{name}",
            "StackStatus": status,
            "CreationTime": datetime(2025, 1, 1, tzinfo=timezone.utc),
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            "Outputs": [
                {"OutputKey": "FunctionName", "OutputValue": f"{name}-fn"},
                {"OutputKey": "InvocationsUrl", "OutputValue": f"https://{name}/invocations"},
            ],
        }

    def deploy(
        self, outdir: Path, stack_name: str, s3_bucket: str | None, tags: Mapping[str, str]
    ) -> DeployResult:
        manifest = json.loads((outdir / "manifest.json").read_text())
        self.calls.append(("deploy", stack_name, s3_bucket, dict(tags), manifest))
        existed = stack_name in self.stacks_by_name
        self.add_stack(stack_name, {"mlflow-lambda:model-uri": manifest["uri"], **tags})
        return DeployResult(
            stack_name,
            f"id/{stack_name}",
            "updated" if existed else "created",
            {"FunctionName": f"{stack_name}-fn"},
            f"https://{stack_name}/invocations",
            "s3://bkt/key.zip",
        )

    def destroy(self, stack_name: str) -> str:
        self.calls.append(("destroy", stack_name))
        return "deleted" if self.stacks_by_name.pop(stack_name, None) else "absent"

    def find(self, stack_name: str) -> dict[str, Any] | None:
        self.calls.append(("find", stack_name))
        return self.stacks_by_name.get(stack_name)

    def stacks(self) -> list[dict[str, Any]]:
        self.calls.append(("stacks",))
        return list(self.stacks_by_name.values())

    def invoke(self, function_name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(("invoke", function_name, dict(body)))
        result: dict[str, Any] = self.answer(body)
        return result


class FakeBuild:
    """Records the BuildOptions and writes the manifest a build would."""

    def __init__(self) -> None:
        self.options: list[BuildOptions] = []

    def __call__(self, opts: BuildOptions) -> None:
        self.options.append(opts)
        opts.outdir.mkdir(parents=True, exist_ok=True)
        (opts.outdir / "manifest.json").write_text(json.dumps({"uri": opts.model_uri}))


def test_create_builds_then_deploys_with_the_config() -> None:
    deployer, build = FakeDeployer(), FakeBuild()
    client = LambdaDeploymentClient("lambda:/eu-west-1", deployer=deployer, build=build)
    config = {
        "s3_bucket": "bkt",
        "arch": "arm64",
        "python": "3.12",
        "model_location": "s3://models/churn/3",
        "tracking_uri": "http://mlflow:5000",
    }
    created = client.create_deployment("churn", "models:/churn/3", config=config)
    assert created == {
        "name": "churn",
        "flavor": "python_function",
        "model_uri": "models:/churn/3",
        "status": "created",
        "stack_id": "id/churn",
        "endpoint_url": "https://churn/invocations",
        "outputs": {"FunctionName": "churn-fn"},
    }
    (opts,) = build.options
    assert opts == BuildOptions(
        model_uri="models:/churn/3",
        outdir=opts.outdir,
        target="zip",
        arch="arm64",
        python="3.12",
        tracking_uri="http://mlflow:5000",
        model_location="s3://models/churn/3",
    )
    assert opts.outdir.name == "build" and not opts.outdir.exists()  # temporary, cleaned up
    assert deployer.calls == [
        ("find", "churn"),
        (
            "deploy",
            "churn",
            "bkt",
            {},
            {"uri": "models:/churn/3"},
        ),
    ]


def test_create_refuses_existing_and_foreign_stacks() -> None:
    deployer, build = FakeDeployer(), FakeBuild()
    deployer.add_stack("churn", {"mlflow-lambda:model-uri": "models:/churn/2"})
    deployer.add_stack("billing", {"team": "finance"})
    client = LambdaDeploymentClient("lambda", deployer=deployer, build=build)
    with pytest.raises(MlflowException, match="'churn' already exists; use") as info:
        client.create_deployment("churn", "models:/churn/3")
    assert info.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException, match="not deployed by mlflow-lambda"):
        client.create_deployment("billing", "models:/churn/3")
    assert build.options == []


@pytest.mark.parametrize(
    ("flavor", "config", "message"),
    [
        ("pytorch", {}, "flavor 'pytorch' is not supported by the lambda target"),
        (None, {"memroy": "2048"}, "unknown config option(s) 'memroy' for the lambda target"),
    ],
)
def test_create_refuses_bad_arguments(
    flavor: str | None, config: dict[str, str], message: str
) -> None:
    client = LambdaDeploymentClient("lambda", deployer=FakeDeployer(), build=FakeBuild())
    with pytest.raises(MlflowException) as info:
        client.create_deployment("churn", "models:/churn/3", flavor=flavor, config=config)
    assert message in info.value.message
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_update_reuses_the_deployed_model_uri_and_keeps_the_build(tmp_path: Path) -> None:
    deployer, build = FakeDeployer(), FakeBuild()
    deployer.add_stack("churn", {"mlflow-lambda:model-uri": "models:/churn/3"})
    client = LambdaDeploymentClient("lambda", deployer=deployer, build=build)
    updated = client.update_deployment("churn", config={"outdir": str(tmp_path / "out")})
    assert (updated["status"], updated["model_uri"]) == ("updated", "models:/churn/3")
    assert [o.model_uri for o in build.options] == ["models:/churn/3"]
    assert (tmp_path / "out" / "manifest.json").is_file()
    client.update_deployment("churn", model_uri="models:/churn/4")
    assert client.get_deployment("churn")["model_uri"] == "models:/churn/4"
    with pytest.raises(MlflowException, match="no lambda deployment named 'gone'") as info:
        client.update_deployment("gone")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_get_list_delete() -> None:
    deployer = FakeDeployer()
    deployer.add_stack("churn", {"mlflow-lambda:model-uri": "models:/churn/3"})
    deployer.add_stack("billing", {"team": "finance"})
    deployer.add_stack("half", {"mlflow-lambda:model-uri": "m"}, status="REVIEW_IN_PROGRESS")
    client = LambdaDeploymentClient("lambda", deployer=deployer, build=FakeBuild())
    described = {
        "name": "churn",
        "flavor": "python_function",
        "model_uri": "models:/churn/3",
        "status": "CREATE_COMPLETE",
        "stack_id": "id/churn",
        "endpoint_url": "https://churn/invocations",
        "outputs": {
            "FunctionName": "churn-fn",
            "InvocationsUrl": "https://churn/invocations",
        },
    }
    assert client.get_deployment("churn") == described
    assert client.list_deployments() == [described]
    with pytest.raises(MlflowException, match="refusing to delete it"):
        client.delete_deployment("billing")
    client.delete_deployment("churn")
    client.delete_deployment("churn")  # idempotent: MLflow's contract
    assert [c for c in deployer.calls if c[0] == "destroy"] == [("destroy", "churn")]
    assert client.list_deployments() == []


def _run_handler(config: Path, model_dir: Path, body: Mapping[str, Any]) -> dict[str, Any]:
    """What the real handler answers to a direct invoke with ``body``."""
    script = (
        "import json, sys\nimport mlflow_lambda.handler.lambda_function as lf\n"
        "print(json.dumps(lf.handler(json.loads(sys.argv[1]), None)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(body)],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "MODEL_CONFIG": str(config),
            "MODEL_DIR": str(model_dir),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_predict_sends_a_body_the_real_handler_scores(forest: LoggedModel, tmp_path: Path) -> None:
    write_model_config(forest.local_dir, tmp_path / "model.json")
    deployer = FakeDeployer(
        lambda body: _run_handler(tmp_path / "model.json", forest.local_dir, body)
    )
    deployer.add_stack("churn", {"mlflow-lambda:model-uri": forest.model_uri})
    client = LambdaDeploymentClient("lambda", deployer=deployer, build=FakeBuild())
    answer = client.predict("churn", pd.DataFrame(ROWS, columns=COLUMNS))
    assert dict(answer) == {"predictions": [0, 2]}
    assert answer.get_predictions().to_dict("list") == {0: [0, 2]}  # type: ignore[no-untyped-call]
    sent = [c for c in deployer.calls if c[0] == "invoke"]
    assert sent == [("invoke", "churn-fn", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}})]


def test_predict_turns_an_error_answer_into_an_mlflow_exception() -> None:
    answer = {"error_code": "INVALID_PARAMETER_VALUE", "message": "missing column 'x'"}
    deployer = FakeDeployer(lambda body: answer)
    deployer.add_stack("churn", {"mlflow-lambda:model-uri": "m"})
    client = LambdaDeploymentClient("lambda", deployer=deployer, build=FakeBuild())
    with pytest.raises(MlflowException) as info:
        client.predict("churn", {"inputs": [[1.0]]})
    assert info.value.message == "'churn' answered INVALID_PARAMETER_VALUE: missing column 'x'"


def test_predict_wraps_deployer_errors() -> None:
    def fail(body: Mapping[str, Any]) -> dict[str, Any]:
        raise DeployError("cannot invoke 'churn-fn': AccessDenied")

    deployer = FakeDeployer(fail)
    deployer.add_stack("churn", {"mlflow-lambda:model-uri": "m"})
    client = LambdaDeploymentClient("lambda", deployer=deployer, build=FakeBuild())
    with pytest.raises(MlflowException, match="cannot invoke 'churn-fn': AccessDenied"):
        client.predict("churn", [[1.0, 2.0]])
