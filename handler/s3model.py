"""Fetch a model kept on S3 (``--model-location s3://...``) into /tmp at cold start.

Only the files listed in ``model.json`` are downloaded, so the hash check that follows
covers everything the loader can read. boto3 is imported here, lazily: the Lambda
Python runtime provides it, and bundles whose model is inside never import it.

Faults: requests are retried in botocore's ``standard`` retry mode (botocore docs, "Retries":
throttling such as 503 SlowDown, transient 500/502/503/504 and connection errors, with
exponential backoff and jitter), and a body cut short is fetched again by s3transfer (its
``num_download_attempts``). Errors a retry cannot help (404, 403) fail at once. Every file is
written to ``<name>.part`` and its sha256 checked before it takes its real name, so neither a
partial download nor an object other than the one packaged is ever used; either way the init
fails with one error naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .config import sha256_file
from .errors import ModelFetchError, ModelIntegrityError

# Attempts per request, first one included (botocore's standard mode defaults to 3). Throttling
# backs off rand(0, 1) * 2**i seconds: at most 1 + 2 + 4 = 7 s for 4 attempts, inside Lambda's
# 10 s init phase.
MAX_ATTEMPTS = 4
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
_NOT_RETRIED = {
    "404": "the object does not exist: upload the model again (`mlflow-lambda package "
    "--model-location`) or correct MODEL_S3_URI",
    "NoSuchKey": "the object does not exist: upload the model again (`mlflow-lambda package "
    "--model-location`) or correct MODEL_S3_URI",
    "NoSuchBucket": "the bucket does not exist: correct MODEL_S3_URI",
    "403": "access denied: the function's role needs s3:GetObject on the key",
    "AccessDenied": "access denied: the function's role needs s3:GetObject on the key",
}


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")``."""
    if not uri.startswith("s3://"):
        raise ModelFetchError(f"MODEL_S3_URI must start with s3://, got {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ModelFetchError(f"MODEL_S3_URI has no bucket: {uri!r}")
    return bucket, prefix.strip("/")


def s3_client() -> Any:
    """An S3 client retrying in botocore's standard mode, with bounded timeouts."""
    import boto3  # provided by the Lambda runtime; imported only for S3 models
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )
    return boto3.client("s3", config=config)


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(num_download_attempts=MAX_ATTEMPTS)


def _advice(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        attempts = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1
        if code in _NOT_RETRIED:
            return _NOT_RETRIED[code]
        return f"gave up after {attempts} attempts; try again later"
    return f"gave up after up to {MAX_ATTEMPTS} attempts; try again later"


def _download(s3: Any, bucket: str, key: str, partial: Path) -> None:
    try:
        s3.download_file(bucket, key, str(partial), Config=_transfer_config())
    except Exception as exc:  # botocore's ClientError and friends: report, don't guess
        partial.unlink(missing_ok=True)
        raise ModelFetchError(
            f"cannot download s3://{bucket}/{key}: {exc} ({_advice(exc)})"
        ) from exc


def fetch_model(uri: str, files: Mapping[str, str], dest: Path, s3: Any = None) -> Path:
    """Download every file of ``files`` from under ``uri`` into ``dest``; return ``dest``.

    A file already in ``dest`` with the expected sha256 (a container whose /tmp survived,
    or a previous init that failed later) is not downloaded again; any other file there
    is replaced. The caller verifies every hash afterwards either way.
    """
    bucket, prefix = split_s3_uri(uri)
    if s3 is None:
        s3 = s3_client()
    for rel in sorted(files):
        target = dest / rel
        if target.is_file() and sha256_file(target) == files[rel]:
            continue
        key = str(PurePosixPath(prefix, rel)) if prefix else rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # a stale or altered copy is never left for the loader
        partial = target.with_name(target.name + ".part")
        _download(s3, bucket, key, partial)
        actual = sha256_file(partial)
        if actual != files[rel]:
            partial.unlink()
            raise ModelIntegrityError(
                f"model file {rel!r} has sha256 {actual!r}, expected {files[rel]!r}: "
                f"s3://{bucket}/{key} is not the object packaged; the model changed after "
                "packaging, rebuild the bundle (or upload the model again)"
            )
        partial.replace(target)
    return dest
