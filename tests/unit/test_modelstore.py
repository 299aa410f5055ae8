"""packager.modelstore against in-process moto S3: upload, skip unchanged, check, refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from mlflow_lambda.packager.errors import ModelUploadError
from mlflow_lambda.packager.inspection import hash_model_files
from mlflow_lambda.packager.modelstore import check_uploaded, object_key, parse_s3_uri, upload_model

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "models"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.pkl").write_bytes(b"\x80\x04weights")
    (root / "sub" / "extra.txt").write_text("x")
    return root


def _objects(s3: S3Client) -> dict[str, tuple[bytes, dict[str, str]]]:
    listing = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    found = {}
    for obj in listing:
        key = obj["Key"]
        got = s3.get_object(Bucket=BUCKET, Key=key)
        found[key] = (got["Body"].read(), got["Metadata"])
    return found


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://b/p", ("b", "p")),
        ("s3://b/models/churn-3/", ("b", "models/churn-3")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://b/p", "must be an s3:// URI"),
        ("s3:///p", "has no bucket"),
        ("s3://b", "has no prefix"),
        ("s3://b/", "has no prefix"),
        ("s3://b/a/../c", "'..'"),
        ("s3://b/a//c", "empty"),
    ],
)
def test_parse_s3_uri_refuses(uri: str, message: str) -> None:
    with pytest.raises(ModelUploadError, match=message) as info:
        parse_s3_uri(uri)
    assert repr(uri) in str(info.value)


def test_object_key_matches_handler_rule() -> None:
    assert object_key("models/churn", "sub/extra.txt") == "models/churn/sub/extra.txt"


def test_upload_puts_listed_files_with_sha256(s3: S3Client, model_dir: Path) -> None:
    files = hash_model_files(model_dir)
    upload_model(model_dir, "s3://models/churn/3/", files, s3)
    assert _objects(s3) == {
        "churn/3/MLmodel": (b"flavors: {}\n", {"sha256": files["MLmodel"]}),
        "churn/3/model.pkl": (b"\x80\x04weights", {"sha256": files["model.pkl"]}),
        "churn/3/sub/extra.txt": (b"x", {"sha256": files["sub/extra.txt"]}),
    }
    assert check_uploaded("s3://models/churn/3", files, s3) == {}


def test_upload_only_listed_files(s3: S3Client, model_dir: Path) -> None:
    files = hash_model_files(model_dir)
    upload_model(model_dir, "s3://models/m", {"MLmodel": files["MLmodel"]}, s3)
    assert sorted(_objects(s3)) == ["m/MLmodel"]


def test_second_upload_skips_unchanged_objects(s3: S3Client, model_dir: Path) -> None:
    files = hash_model_files(model_dir)
    upload_model(model_dir, "s3://models/m", files, s3)
    # Overwrite one object behind the tool's back, keeping its sha256 metadata: a re-upload
    # that trusted nothing would restore the bytes; ours trusts the recorded sha256.
    s3.put_object(
        Bucket=BUCKET, Key="m/MLmodel", Body=b"other", Metadata={"sha256": files["MLmodel"]}
    )
    # A changed recorded sha256 is re-uploaded.
    s3.put_object(Bucket=BUCKET, Key="m/model.pkl", Body=b"old", Metadata={"sha256": "0" * 64})
    upload_model(model_dir, "s3://models/m", files, s3)
    objects = _objects(s3)
    assert objects["m/MLmodel"][0] == b"other"
    assert objects["m/model.pkl"] == (b"\x80\x04weights", {"sha256": files["model.pkl"]})


def test_upload_refuses_a_file_that_changed_since_inspection(s3: S3Client, model_dir: Path) -> None:
    files = hash_model_files(model_dir)
    (model_dir / "model.pkl").write_bytes(b"tampered")
    with pytest.raises(ModelUploadError, match=r"model\.json says") as info:
        upload_model(model_dir, "s3://models/m", files, s3)
    assert "model.pkl" in str(info.value)
    assert "package it again" in str(info.value)


def test_upload_refuses_a_missing_file(s3: S3Client, model_dir: Path) -> None:
    files = hash_model_files(model_dir) | {"gone.bin": "0" * 64}
    with pytest.raises(ModelUploadError, match=r"'gone\.bin' listed in model\.json is missing"):
        upload_model(model_dir, "s3://models/m", files, s3)


def test_upload_to_missing_bucket_is_a_deploy_error(s3: S3Client, model_dir: Path) -> None:
    with pytest.raises(ModelUploadError, match="s3://nope/m/MLmodel"):
        upload_model(model_dir, "s3://nope/m", hash_model_files(model_dir), s3)


def test_check_uploaded_names_missing_and_mismatched(s3: S3Client, model_dir: Path) -> None:
    files = hash_model_files(model_dir)
    upload_model(model_dir, "s3://models/m", files, s3)
    s3.delete_object(Bucket=BUCKET, Key="m/sub/extra.txt")
    s3.put_object(Bucket=BUCKET, Key="m/model.pkl", Body=b"x")
    assert check_uploaded("s3://models/m", files, s3) == {
        "model.pkl": f"sha256 not recorded, expected {files['model.pkl']}",
        "sub/extra.txt": "missing",
    }
