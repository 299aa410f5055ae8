"""Keep a model on S3 instead of inside the bundle (``--model-location s3://bucket/prefix``).

The bundle then carries only ``model.json``; the handler downloads the files it lists
to /tmp at cold start and checks each sha256 against it (``handler/s3model.py``).
Every object is uploaded with its sha256 in the user metadata (``x-amz-meta-sha256``),
so a second upload of the same model skips unchanged files and ``deploy`` can check,
without downloading, that the bucket holds the model the bundle expects.

A prefix is required: the function is granted ``s3:GetObject`` on ``prefix/*`` only,
and an empty prefix would mean the whole bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from mlflow_lambda.handler.config import sha256_file
from mlflow_lambda.packager.errors import ModelUploadError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SHA256_METADATA = "sha256"  # stored as x-amz-meta-sha256


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")``; a prefix is required."""
    if not uri.startswith("s3://"):
        raise ModelUploadError(f"model location must be an s3:// URI, got {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if not bucket:
        raise ModelUploadError(f"model location {uri!r} has no bucket; use s3://BUCKET/PREFIX")
    if not prefix:
        raise ModelUploadError(
            f"model location {uri!r} has no prefix; the function would be allowed to read the "
            f"whole bucket. Use a prefix, e.g. s3://{bucket}/models/<name>-<version>"
        )
    if any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ModelUploadError(f"model location {uri!r} has an empty, '.' or '..' path segment")
    return bucket, prefix


def object_key(prefix: str, rel: str) -> str:
    """The S3 key of the model file ``rel`` (POSIX, relative) under ``prefix``.

    The same rule as ``handler.s3model.fetch_model`` uses to download it.
    """
    return str(PurePosixPath(prefix, rel))


def _remote_sha256(s3: S3Client, bucket: str, key: str) -> str | None:
    """The sha256 recorded on an object, or ``None`` when the object does not exist."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise ModelUploadError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
    return head.get("Metadata", {}).get(SHA256_METADATA, "")


def upload_model(model_dir: Path, s3_uri: str, files: Mapping[str, str], s3: S3Client) -> None:
    """Upload every file of ``files`` (relative path -> sha256) from ``model_dir`` to ``s3_uri``.

    Each local file is hashed first and must match ``files`` (the hashes written into
    ``model.json``), so what lands in the bucket is what the handler will accept.
    Objects that already carry the same sha256 are left alone, which makes a second
    upload of the same model a no-op.
    """
    bucket, prefix = parse_s3_uri(s3_uri)
    for rel in sorted(files):
        path = model_dir / rel
        if not path.is_file():
            raise ModelUploadError(
                f"model file {rel!r} listed in model.json is missing from {str(model_dir)!r}"
            )
        digest = sha256_file(path)
        if digest != files[rel]:
            raise ModelUploadError(
                f"model file {str(path)!r} has sha256 {digest}, but model.json says "
                f"{files[rel]}; the model changed after it was inspected: package it again"
            )
        key = object_key(prefix, rel)
        if _remote_sha256(s3, bucket, key) == digest:
            continue
        try:
            s3.upload_file(
                str(path), bucket, key, ExtraArgs={"Metadata": {SHA256_METADATA: digest}}
            )
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise ModelUploadError(
                f"cannot upload {str(path)!r} to s3://{bucket}/{key}: {exc}"
            ) from exc


def check_uploaded(s3_uri: str, files: Mapping[str, str], s3: S3Client) -> dict[str, str]:
    """What is wrong with the model at ``s3_uri``: ``{relative path: problem}``, empty if nothing.

    Reads only object metadata (one HEAD per file); the handler still checks the bytes.
    """
    bucket, prefix = parse_s3_uri(s3_uri)
    problems: dict[str, str] = {}
    for rel in sorted(files):
        remote = _remote_sha256(s3, bucket, object_key(prefix, rel))
        if remote is None:
            problems[rel] = "missing"
        elif remote != files[rel]:
            problems[rel] = f"sha256 {remote or 'not recorded'}, expected {files[rel]}"
    return problems
