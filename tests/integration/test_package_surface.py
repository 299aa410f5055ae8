"""``mlflow-lambda package`` with the deploy-surface options: a real build of the README forest
through an MLflow alias, its template and what the build prints; impossible mixes refused in
one line before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.integration.conftest import run_cli
from tests.mlflow_models import LoggedModel

pytestmark = pytest.mark.integration


def test_options_reach_the_template_and_the_build_says_who_can_call(
    forest: LoggedModel, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert forest.registered_name is not None
    MlflowClient().set_registered_model_alias(forest.registered_name, "champion", forest.version)
    out = tmp_path / "out"
    args = [
        "package", "-m", f"models:/{forest.registered_name}@champion", "-o", out,
        "--cache-dir", cache_dir, "--endpoint", "function-url", "--auth", "iam",
        "--rollout", "canary-10-5m", "--reserved-concurrency", "5", "--memory", "2048",
        "--timeout", "60", "--env", "LOG_LEVEL=debug", "--tag", "team=ml", "--tag", "cost=ds",
        "--log-retention", "7",
    ]  # fmt: skip
    assert run_cli(*args) == 0
    err = capsys.readouterr().err
    assert "endpoint: Lambda Function URL, private: callers sign requests with AWS IAM" in err
    assert "rollout: canary-10-5m behind alias 'champion', rolled back on alarm" in err
    template = yaml.safe_load((out / "template.yaml").read_text())
    function = template["Resources"]["ModelFunction"]["Properties"]
    assert function["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"}
    assert function["AutoPublishAlias"] == "champion"  # the MLflow alias of the URI
    assert function["DeploymentPreference"]["Type"] == "Canary10Percent5Minutes"
    assert function["ReservedConcurrentExecutions"] == 5
    assert function["Environment"] == {"Variables": {"LOG_LEVEL": "debug"}}
    assert function["Tags"] == {"team": "ml", "cost": "ds"}
    params = template["Parameters"]
    assert (params["MemorySize"]["Default"], params["Timeout"]["Default"]) == (2048, 60)
    assert template["Resources"]["ModelLogGroup"]["Properties"]["RetentionInDays"] == 7
    assert "ModelHttpApi" not in template["Resources"]


def test_the_default_build_is_throttled(forest_build: Path) -> None:
    template = yaml.safe_load((forest_build / "template.yaml").read_text())
    assert template["Resources"]["ModelHttpApi"]["Properties"]["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": 100,
        "ThrottlingRateLimit": 50,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--rollout", "canary-10-5m"], "rollout 'canary-10-5m' moves traffic between versions"),
        (["--snapstart", "--python", "3.11"], "SnapStart needs python3.12 or later"),
        (["--endpoint", "rest-api", "--auth", "jwt"], "auth 'jwt' is an HTTP API authorizer"),
        (["--endpoint", "function-url", "--throttle", "5,5"], "throttling is an API Gateway"),
        (["--throttle", "fast"], "throttle 'fast' must be RATE,BURST"),
        (["--env", "NOEQUALS"], "--env 'NOEQUALS' must look like KEY=VALUE"),
        (["--log-retention", "10"], "log retention 10 days is not one CloudWatch Logs accepts"),
    ],
)
def test_impossible_options_fail_in_one_line_before_building(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    missing = tmp_path / "no-such-model"  # never resolved: the options are refused first
    assert run_cli("package", "-m", missing, "-o", tmp_path / "out", *options) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and message in err and "\n" not in err, err
    assert str(missing) not in err
    assert not (tmp_path / "out").exists()
