"""Fetch a model kept on S3 (``--model-location s3://...``) into /tmp at cold start.

Only the files listed in ``model.json`` are downloaded, so the hash check that follows
covers everything the loader can read. boto3 is imported here, lazily: the Lambda
Python runtime provides it, and bundles whose model is inside never import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .config import sha256_file
from .errors import ModelFetchError


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")``."""
    if not uri.startswith("s3://"):
        raise ModelFetchError(f"MODEL_S3_URI must start with s3://, got {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ModelFetchError(f"MODEL_S3_URI has no bucket: {uri!r}")
    return bucket, prefix.strip("/")


def fetch_model(uri: str, files: Mapping[str, str], dest: Path, s3: Any = None) -> Path:
    """Download every file of ``files`` from under ``uri`` into ``dest``; return ``dest``.

    A file already in ``dest`` with the expected sha256 (a container whose /tmp survived,
    or a previous init that failed later) is not downloaded again; any other file there
    is replaced. The caller verifies every hash afterwards either way.
    """
    bucket, prefix = split_s3_uri(uri)
    if s3 is None:
        import boto3  # provided by the Lambda runtime; imported only for S3 models

        s3 = boto3.client("s3")
    for rel in sorted(files):
        target = dest / rel
        if target.is_file() and sha256_file(target) == files[rel]:
            continue
        key = str(PurePosixPath(prefix, rel)) if prefix else rel
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        try:
            s3.download_file(bucket, key, str(partial))
        except Exception as exc:  # botocore's ClientError and friends: report, don't guess
            partial.unlink(missing_ok=True)
            raise ModelFetchError(f"cannot download s3://{bucket}/{key}: {exc}") from exc
        partial.replace(target)
    return dest
