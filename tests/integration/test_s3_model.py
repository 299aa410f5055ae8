"""A model kept on S3, end to end against a moto server.

``packager.modelstore.upload_model`` puts the forest under a prefix; the real entry module
then starts in a fresh interpreter with ``MODEL_S3_URI`` (as Lambda's init phase would),
downloads the files listed in ``model.json``, checks every sha256 and serves. A tampered
object or a missing one must stop the import with a message naming the file.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from mlflow_lambda.handler import ENTRY_POINT
from mlflow_lambda.packager.inspection import hash_model_files, write_model_config
from mlflow_lambda.packager.modelstore import upload_model
from mlflow_lambda.packager.template import TemplateOptions, render_template
from tests.integration.deploy_helpers import FAKE_CREDENTIALS
from tests.mlflow_models import LoggedModel
from tests.moto_server import moto_server
from tests.parity_corpus import IRIS_BODY

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ENTRY_MODULE = ENTRY_POINT.rpartition(".")[0]
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent.parent
BUCKET = "s3-model-tests"  # moto keeps one state per process: a name no other module uses
BODY = IRIS_BODY


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, S3Client]]:
    with moto_server() as endpoint:
        client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client


@pytest.fixture(scope="module")
def model_json(forest: LoggedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("s3-model") / "model.json"
    write_model_config(forest.local_dir, path)
    return path


def _files(model_json: Path) -> dict[str, str]:
    files: dict[str, str] = json.loads(model_json.read_text())["files"]
    return files


def start_handler(
    endpoint: str, model_json: Path, uri: str, model_dir: Path, code: str = ""
) -> subprocess.CompletedProcess[str]:
    """Import the entry module in a fresh interpreter with the model on S3, then run ``code``."""
    return subprocess.run(
        [sys.executable, "-c", f"import json\nimport {ENTRY_MODULE} as lf\n{code}"],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "MODEL_CONFIG": str(model_json),
            "MODEL_S3_URI": uri,
            "MODEL_DIR": str(model_dir),
            "AWS_ENDPOINT_URL": endpoint,
            **FAKE_CREDENTIALS,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _predict(endpoint: str, model_json: Path, uri: str, model_dir: Path) -> Any:
    done = start_handler(
        endpoint, model_json, uri, model_dir, f"print(json.dumps(lf.handler({BODY!r}, None)))"
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_upload_download_verify_predict(
    s3: tuple[str, S3Client], forest: LoggedModel, model_json: Path, tmp_path: Path
) -> None:
    endpoint, client = s3
    files = _files(model_json)
    upload_model(forest.local_dir, f"s3://{BUCKET}/forest/1", files, client)
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix="forest/1/")["Contents"]
    keys = sorted(o["Key"] for o in listing)
    assert keys == sorted(f"forest/1/{rel}" for rel in files)

    model_dir = tmp_path / "model"
    assert _predict(endpoint, model_json, f"s3://{BUCKET}/forest/1", model_dir) == {
        "predictions": [0, 2]
    }
    assert hash_model_files(model_dir) == files  # exactly the listed files, intact

    # A warm start in the same container reuses /tmp: nothing is downloaded again, so it
    # serves even with the objects gone (the hashes are still checked).
    for key in keys:
        client.delete_object(Bucket=BUCKET, Key=key)
    assert _predict(endpoint, model_json, f"s3://{BUCKET}/forest/1", model_dir) == {
        "predictions": [0, 2]
    }


def test_template_grants_read_on_exactly_the_uploaded_keys(model_json: Path) -> None:
    uri = f"s3://{BUCKET}/forest/1"
    function = render_template(TemplateOptions(code_uri="bundle.zip", model_s3_uri=uri))[
        "Resources"
    ]["ModelFunction"]["Properties"]
    assert function["Environment"]["Variables"]["MODEL_S3_URI"] == uri
    assert function["Policies"] == [
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadModelFiles",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/forest/1/*"},
                }
            ],
        }
    ]
    pattern = f"{BUCKET}/forest/1/*"
    assert all(
        fnmatch.fnmatchcase(f"{BUCKET}/forest/1/{rel}", pattern) for rel in _files(model_json)
    )
    assert not fnmatch.fnmatchcase(f"{BUCKET}/forest/10/MLmodel", pattern)


def test_tampered_object_refuses_to_load(
    s3: tuple[str, S3Client], forest: LoggedModel, model_json: Path, tmp_path: Path
) -> None:
    endpoint, client = s3
    upload_model(forest.local_dir, f"s3://{BUCKET}/tampered", _files(model_json), client)
    original = (forest.local_dir / "model.skops").read_bytes()
    client.put_object(Bucket=BUCKET, Key="tampered/model.skops", Body=original + b"\0")
    done = start_handler(endpoint, model_json, f"s3://{BUCKET}/tampered", tmp_path / "model")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "mlflow_lambda.handler.errors.ModelIntegrityError: model file 'model.skops' has"
    )
    assert "expected" in last and "rebuild the bundle" in last


def test_missing_object_is_a_clear_error(
    s3: tuple[str, S3Client], forest: LoggedModel, model_json: Path, tmp_path: Path
) -> None:
    endpoint, client = s3
    upload_model(forest.local_dir, f"s3://{BUCKET}/missing", _files(model_json), client)
    client.delete_object(Bucket=BUCKET, Key="missing/MLmodel")
    done = start_handler(endpoint, model_json, f"s3://{BUCKET}/missing", tmp_path / "model")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "mlflow_lambda.handler.errors.ModelFetchError: "
        f"cannot download s3://{BUCKET}/missing/MLmodel: "
    )
    assert "404" in last
    assert not (tmp_path / "model" / "MLmodel").exists()
    assert not (tmp_path / "model" / "MLmodel.part").exists()
