"""The entry module on a real logged model: every event shape, and cold-start hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.packager.inspection import write_model_config
from tests.mlflow_models import LoggedModel
from tests.parity_corpus import IRIS_BODY

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"
REPO = Path(__file__).resolve().parent.parent.parent

# The forest's answer for the two iris rows in every fixture (setosa, virginica).
EXPECTED = {"predictions": [0, 2]}

# What the entry module must never import: build-time code and what Lambda's own runtime
# provides only for S3 models. (The exact allow-list of third-party modules is checked in a
# built bundle, where only run-time packages exist; the dev venv holds many more.)
FORBIDDEN = {"mlflow", "click", "yaml", "packager", "infra", "boto3", "botocore", "fastapi"}


@pytest.fixture(scope="module")
def bundle_env(forest: LoggedModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("forest-config")
    write_model_config(forest.local_dir, root / "model.json")
    return {"MODEL_CONFIG": str(root / "model.json"), "MODEL_DIR": str(forest.local_dir)}


def run_entry(env: dict[str, str], code: str) -> Any:
    """Import the entry module in a fresh interpreter and run ``code``; return its JSON."""
    script = "import json, sys\nimport mlflow_lambda.handler.lambda_function as lf\n"
    script += textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_loads_only_runtime_modules(bundle_env: dict[str, str]) -> None:
    loaded = run_entry(
        bundle_env,
        """
        names = {m.split(".")[0] for m in sys.modules}
        print(json.dumps(sorted(names - set(sys.stdlib_module_names) - {"__main__"})))
        """,
    )
    assert FORBIDDEN.isdisjoint(loaded), sorted(FORBIDDEN.intersection(loaded))
    assert {"mlflow_lambda", "mangum", "starlette", "sklearn", "skops"} <= set(loaded)


def test_init_puts_what_it_made_out_of_the_collectors_reach(bundle_env: dict[str, str]) -> None:
    """Init ends with gc.freeze(): a request's collections never walk the model or libraries."""
    frozen, model_tracked = run_entry(
        bundle_env,
        """
        import gc
        model = lf.predictor.model
        print(json.dumps([gc.get_freeze_count(), any(o is model for o in gc.get_objects())]))
        """,
    )
    assert frozen > 10_000 and not model_tracked


def test_every_event_shape(bundle_env: dict[str, str]) -> None:
    events = {p.stem: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}
    events["direct"] = IRIS_BODY
    events["direct-bad"] = {"dataframe_split": {"data": [[1.0, 2.0]]}}
    events["sqs"] = {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}
    answers = run_entry(
        bundle_env,
        f"""
        events = json.loads({json.dumps(json.dumps(events))})
        print(json.dumps({{k: lf.handler(e, None) for k, e in events.items()}}))
        """,
    )
    for name in ("apigw-v1", "apigw-v2", "function-url", "alb"):
        response = answers[name]
        assert response["statusCode"] == 200, (name, response)
        assert response["headers"]["content-type"] == "application/json"
        assert json.loads(response["body"]) == EXPECTED, name
        assert response["isBase64Encoded"] is False
    assert answers["direct"] == EXPECTED
    assert answers["direct-bad"]["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "stack_trace" not in answers["direct-bad"]
    assert answers["sqs"]["error_code"] == "BAD_REQUEST"
    assert "Unsupported event" in answers["sqs"]["message"]


def test_tampered_model_file_refuses_to_load(
    bundle_env: dict[str, str], forest: LoggedModel, tmp_path: Path
) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(forest.local_dir, model)
    with (model / "model.skops").open("ab") as f:
        f.write(b"\0")
    done = subprocess.run(
        [sys.executable, "-c", "import mlflow_lambda.handler.lambda_function"],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            **bundle_env,
            "MODEL_DIR": str(model),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "model.skops" in done.stderr
    assert "sha256" in done.stderr
