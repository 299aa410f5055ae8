"""Faults at the S3 model fetch, through the real entry module, against moto behind a proxy.

The proxy (``tests.fault_proxy``) sits between the handler's boto3 client and a moto server on
127.0.0.1 and injects what S3 and networks do: throttling (503 SlowDown), 500s, connection
resets, bodies cut short. Those are retried (botocore's standard retry mode; s3transfer for a
body cut short) and the model then serves; when they persist, or for a missing key or an
object whose sha256 differs, the init fails with one error naming the key, and nothing of a
partial download is left where the loader would read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from mlflow_lambda.handler.s3model import MAX_ATTEMPTS
from mlflow_lambda.packager.inspection import write_model_config
from mlflow_lambda.packager.modelstore import upload_model
from tests.fault_proxy import FaultProxy
from tests.integration.test_s3_model import BODY, start_handler
from tests.mlflow_models import LoggedModel
from tests.moto_server import moto_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

BUCKET = "s3-fault-tests"  # moto keeps one state per process: a name no other module uses
PREFIX = "forest/1"
MODEL_FILE = "model.skops"
KEY = f"/{BUCKET}/{PREFIX}/{MODEL_FILE}"
URI = f"s3://{BUCKET}/{PREFIX}"


@pytest.fixture(scope="module")
def model_json(forest: LoggedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("s3-faults") / "model.json"
    write_model_config(forest.local_dir, path)
    return path


@pytest.fixture(scope="module")
def uploaded(forest: LoggedModel, model_json: Path) -> Iterator[tuple[str, S3Client]]:
    with moto_server() as endpoint:
        client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        files = json.loads(model_json.read_text())["files"]
        upload_model(forest.local_dir, URI, files, client)
        yield endpoint, client


@pytest.fixture
def proxy(uploaded: tuple[str, S3Client]) -> Iterator[FaultProxy]:
    with FaultProxy(uploaded[0]) as p:
        yield p


def _run(proxy: FaultProxy, model_json: Path, model_dir: Path) -> tuple[int, str, str]:
    done = start_handler(
        proxy.url, model_json, URI, model_dir, f"print(json.dumps(lf.handler({BODY!r}, None)))"
    )
    return done.returncode, done.stdout, done.stderr


def _leftovers(model_dir: Path) -> list[str]:
    return sorted(
        p.name for p in model_dir.rglob("*") if ".part" in p.name or "model.skops" in p.name
    )


def _serves(result: tuple[int, str, str]) -> None:
    code, out, err = result
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"predictions": [0, 2]}


@pytest.mark.parametrize(
    ("method", "faults"),
    [
        ("HEAD", ["slowdown", "slowdown"]),  # s3transfer's HeadObject, throttled twice
        ("GET", ["slowdown", "slowdown"]),
        ("GET", ["error500", "error500"]),
        ("GET", ["reset", "reset"]),
        ("GET", ["truncate", "truncate"]),
        ("GET", ["slowdown", "reset", "truncate"]),
    ],
    ids=["head-throttled", "throttled", "500s", "resets", "truncated", "mixed"],
)
def test_transient_faults_are_retried_then_the_model_serves(
    proxy: FaultProxy, model_json: Path, tmp_path: Path, method: str, faults: list[str]
) -> None:
    proxy.inject(KEY, method, faults)
    _serves(_run(proxy, model_json, tmp_path / "model"))
    assert proxy.count(KEY, method) == len(faults) + 1  # every fault cost one attempt more


@pytest.mark.parametrize("fault", ["slowdown", "error500", "reset", "truncate"])
def test_persistent_fault_is_one_clear_error_naming_the_key(
    proxy: FaultProxy, model_json: Path, tmp_path: Path, fault: str
) -> None:
    proxy.inject(KEY, "GET", [fault] * (4 * MAX_ATTEMPTS))
    model_dir = tmp_path / "model"
    code, _, err = _run(proxy, model_json, model_dir)
    assert code != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"mlflow_lambda.handler.errors.ModelFetchError: cannot download s3://{BUCKET}/{PREFIX}/"
        f"{MODEL_FILE}: "
    ), last
    assert "attempts" in last
    assert proxy.count(KEY, "GET") >= MAX_ATTEMPTS  # retried, and bounded:
    assert proxy.count(KEY, "GET") <= MAX_ATTEMPTS * MAX_ATTEMPTS
    assert _leftovers(model_dir) == []  # no partial download where the loader would look


def test_missing_key_is_not_retried(
    uploaded: tuple[str, S3Client], proxy: FaultProxy, model_json: Path, tmp_path: Path
) -> None:
    _, client = uploaded
    original = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{MODEL_FILE}")["Body"].read()
    client.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/{MODEL_FILE}")
    try:
        code, _, err = _run(proxy, model_json, tmp_path / "model")
    finally:
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{MODEL_FILE}", Body=original)
    assert code != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"mlflow_lambda.handler.errors.ModelFetchError: cannot download s3://{BUCKET}/{PREFIX}/"
        f"{MODEL_FILE}: "
    ), last
    assert "404" in last and "does not exist" in last and "MODEL_S3_URI" in last
    assert proxy.count(KEY, "HEAD") == 1  # a retry cannot help: none
    assert proxy.count(KEY, "GET") == 0
    assert _leftovers(tmp_path / "model") == []


def test_object_with_another_sha256_is_refused_and_removed(
    uploaded: tuple[str, S3Client], proxy: FaultProxy, model_json: Path, tmp_path: Path
) -> None:
    _, client = uploaded
    key = f"{PREFIX}/{MODEL_FILE}"
    original = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    altered = bytes([original[0] ^ 1]) + original[1:]  # same size, one bit differs
    client.put_object(Bucket=BUCKET, Key=key, Body=altered)
    model_dir = tmp_path / "model"
    try:
        code, _, err = _run(proxy, model_json, model_dir)
    finally:
        client.put_object(Bucket=BUCKET, Key=key, Body=original)
    assert code != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"mlflow_lambda.handler.errors.ModelIntegrityError: model file {MODEL_FILE!r} has sha256"
    ), last
    assert f"s3://{BUCKET}/{key} is not the object packaged" in last
    assert _leftovers(model_dir) == []
    # The next cold start fetches the right object and serves.
    _serves(_run(proxy, model_json, model_dir))
