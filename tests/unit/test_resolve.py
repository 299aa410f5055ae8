"""resolve_model on local paths, file:// and s3:// (moto in-process, client passed in)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.packager.errors import ModelResolutionError
from mlflow_lambda.packager.resolve import ResolvedModel, resolve_model

MODEL_FILES = {
    "MLmodel": b"flavors:\n  python_function: {}\n",
    "model.pkl": b"\x80\x04pickle",
    "requirements.txt": b"scikit-learn==1.9.1\n",
    "metadata/extra.json": b"{}",
}


def write_model(root: Path, files: dict[str, bytes] = MODEL_FILES) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model(tmp_path / "model")


# --- local paths and file:// --------------------------------------------------------------


def test_local_path_is_used_in_place(model_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    got = resolve_model(str(model_dir), dest)
    assert got == ResolvedModel(str(model_dir), model_dir, None, None, None, None)
    assert not dest.exists()  # nothing copied: the caller copies into the bundle


def test_path_to_the_mlmodel_file_means_its_directory(model_dir: Path, tmp_path: Path) -> None:
    uri = str(model_dir / "MLmodel")
    assert resolve_model(uri, tmp_path / "d").local_dir == model_dir


def test_home_relative_path(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_model("~/model", tmp_path / "d").local_dir == model_dir


def test_relative_path_becomes_absolute(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_model("model", tmp_path / "d") == ResolvedModel(
        "model", model_dir, None, None, None, None
    )


@pytest.mark.parametrize("form", ["as_uri", "localhost"])
def test_file_uri(model_dir: Path, tmp_path: Path, form: str) -> None:
    uri = model_dir.as_uri() if form == "as_uri" else f"file://localhost{model_dir}"
    assert resolve_model(uri, tmp_path / "d") == ResolvedModel(
        uri, model_dir, None, None, None, None
    )


def test_file_uri_with_a_remote_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("file://fileserver/models/m", tmp_path / "d")
    assert str(err.value) == (
        "cannot resolve 'file://fileserver/models/m': "
        "file URIs must name a local path, not host 'fileserver'"
    )


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ModelResolutionError) as err:
        resolve_model(str(missing), tmp_path / "d")
    assert (
        str(err.value)
        == f"cannot resolve {str(missing)!r}: no such file or directory {str(missing)!r}"
    )


def test_directory_without_mlmodel_lists_it_and_suggests_the_model_below(tmp_path: Path) -> None:
    # The shape of an MLflow 3 logged model: the MLmodel sits one level down, in artifacts/.
    outer = tmp_path / "m-123"
    write_model(outer / "artifacts")
    (outer / "meta.yaml").write_text("x")
    with pytest.raises(ModelResolutionError) as err:
        resolve_model(str(outer), tmp_path / "d")
    assert str(err.value) == (
        f"cannot resolve {str(outer)!r}: {str(outer)!r} has no MLmodel file "
        f"(it holds: 'artifacts', 'meta.yaml'); did you mean {str(outer / 'artifacts')!r}?"
    )


def test_listing_in_errors_is_capped_at_ten_names(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"f{i:02d}").write_text("x")
    with pytest.raises(ModelResolutionError) as err:
        resolve_model(str(tmp_path), tmp_path / "unused")
    held = ", ".join(repr(f"f{i:02d}") for i in range(10))
    assert str(err.value) == (
        f"cannot resolve {str(tmp_path)!r}: {str(tmp_path)!r} has no MLmodel file "
        f"(it holds: {held}, ...)"
    )


def test_a_plain_file_is_not_a_model(tmp_path: Path) -> None:
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(b"x")
    with pytest.raises(ModelResolutionError) as err:
        resolve_model(str(pkl), tmp_path / "d")
    assert str(err.value) == (
        f"cannot resolve {str(pkl)!r}: {str(pkl)!r} is a file; "
        "pass the directory that holds MLmodel"
    )


@pytest.mark.parametrize("uri", ["gs://bucket/model", "hdfs://nn/model", "dbfs:/m"])
def test_unsupported_scheme_lists_the_supported_ones(uri: str, tmp_path: Path) -> None:
    scheme = uri.split(":")[0]
    with pytest.raises(ModelResolutionError) as err:
        resolve_model(uri, tmp_path / "d")
    assert str(err.value) == (
        f"cannot resolve {uri!r}: unsupported scheme '{scheme}:'; supported: a local path, "
        "file://, s3://, runs:/, models:/ (version, latest, stage, @alias, model id), "
        "mlflow-artifacts:/"
    )


def test_download_directory_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "stale.txt").write_text("x")
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("s3://bucket/model", tmp_path)
    assert str(err.value) == (
        f"cannot resolve 's3://bucket/model': download directory {str(tmp_path)!r} "
        "is not empty; pass an empty one"
    )


# --- s3:// with moto in-process --------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """A moto S3 with bucket 'models': models/forest/ is a model, models/notes/ is not."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="models")
        for rel, data in MODEL_FILES.items():
            client.put_object(Bucket="models", Key=f"models/forest/{rel}", Body=data)
        client.put_object(Bucket="models", Key="models/forest/folder/", Body=b"")
        client.put_object(Bucket="models", Key="models/notes/readme.txt", Body=b"hi")
        client.put_object(Bucket="models", Key="models/index.json", Body=b"{}")
        client.create_bucket(Bucket="empty")
        yield client


def test_s3_downloads_every_object_under_the_prefix(s3: Any, tmp_path: Path) -> None:
    dest = tmp_path / "dl"
    got = resolve_model("s3://models/models/forest/", dest, s3_client=s3)
    assert got == ResolvedModel(
        "s3://models/models/forest/", dest, None, None, None, "s3://models/models/forest/"
    )
    assert tree(dest) == MODEL_FILES  # the zero-byte "folder/" marker is not a file


def test_s3_prefix_that_does_not_exist_lists_its_parent(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("s3://models/models/forst", tmp_path, s3_client=s3)
    assert str(err.value) == (
        "cannot resolve 's3://models/models/forst': no objects under 's3://models/models/forst/'; "
        "'s3://models/models/' holds: 'forest/', 'index.json', 'notes/'"
    )


def test_s3_empty_bucket(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("s3://empty/model", tmp_path, s3_client=s3)
    assert str(err.value) == (
        "cannot resolve 's3://empty/model': no objects under 's3://empty/model/'; "
        "'s3://empty/' holds: nothing"
    )


def test_s3_prefix_without_mlmodel(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("s3://models/models", tmp_path, s3_client=s3)
    assert str(err.value) == (
        "cannot resolve 's3://models/models': 's3://models/models/' has no MLmodel "
        "(it holds: 'forest', 'index.json', 'notes')"
    )
    assert list(tmp_path.iterdir()) == []  # nothing downloaded


def test_s3_missing_bucket(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("s3://no-such-bucket/model", tmp_path, s3_client=s3)
    assert str(err.value) == (
        "cannot resolve 's3://no-such-bucket/model': S3 bucket 'no-such-bucket' does not exist; "
        "check the bucket name, MLFLOW_S3_ENDPOINT_URL and AWS credentials"
    )


def test_s3_uri_without_bucket(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("s3:///model", tmp_path, s3_client=s3)
    assert str(err.value) == (
        "cannot resolve 's3:///model': "
        "S3 model URIs look like s3://<bucket>/<prefix of the model directory>"
    )


def test_s3_key_escaping_the_download_directory_is_refused(s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="evil")
    s3.put_object(Bucket="evil", Key="m/MLmodel", Body=b"x")
    s3.put_object(Bucket="evil", Key="m/../../outside.txt", Body=b"x")
    dest = tmp_path / "a" / "dest"
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("s3://evil/m", dest, s3_client=s3)
    assert str(err.value) == (
        "cannot resolve 's3://evil/m': "
        "S3 key 'm/../../outside.txt' points outside the download directory"
    )
    assert not (tmp_path / "outside.txt").exists()
