"""Resolve an MLflow model URI to a local directory that contains an ``MLmodel`` file.

=========================================  ============================================
URI                                        resolved through
=========================================  ============================================
``/path/to/model``, ``file:///path``       the directory itself, used in place
``s3://bucket/prefix``                     boto3 (``MLFLOW_S3_ENDPOINT_URL`` honoured)
``runs:/<run_id>/<path>``                  the run's artifacts, else its logged model
``models:/<name>/<version>``               the registry (``MlflowClient``)
``models:/<name>/latest``                  highest version number
``models:/<name>/<stage>``                 highest version in that stage
``models:/<name>@<alias>``                 the alias's version
``models:/<model_id>``                     an MLflow 3 logged model (``models:/m-...``)
``mlflow-artifacts:/<path>``               the tracking server's artifact proxy
=========================================  ============================================

MLflow URIs are resolved against ``tracking_uri`` (``--tracking-uri``), else MLflow's own
default (``MLFLOW_TRACKING_URI``). Registry URIs are turned into a concrete storage location
with our own ``MlflowClient`` before downloading, because MLflow's ``models:/`` repository
looks names up in the process-global registry and ignores a ``tracking_uri`` argument
(``ModelsArtifactRepository._get_model_uri_infos`` in MLflow 3.17).

Every failure is a one-line ``ModelResolutionError`` naming the URI and what does exist.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from mlflow_lambda.packager import mlflow_uris, registry_memo
from mlflow_lambda.packager.errors import ModelResolutionError
from mlflow_lambda.packager.mlflow_uris import Located, Unresolved, list_names

_log = logging.getLogger(__name__)

SUPPORTED_FORMS = (
    "a local path, file://, s3://, runs:/, models:/ (version, latest, stage, @alias, "
    "model id), mlflow-artifacts:/"
)


@dataclass(frozen=True)
class ResolvedModel:
    """A model URI resolved to a local directory."""

    uri: str  # as given
    local_dir: Path  # a directory containing MLmodel
    run_id: str | None
    model_name: str | None  # registered model name, for models:/<name>...
    version: str | None  # concrete registry version (latest/alias/stage resolved)
    source: str | None  # registry source, else the artifact URI downloaded; None for local
    remembered: bool = False  # the registry's answer to an earlier build (packager.registry_memo)


def resolve_model(
    uri: str,
    dest: Path,
    *,
    tracking_uri: str | None = None,
    s3_client: Any = None,
    memo: Path | None = None,
) -> ResolvedModel:
    """Resolve ``uri`` to a local model directory, downloading into ``dest`` when remote.

    Local paths and ``file://`` URIs are used in place, not copied (``dest`` is left
    untouched): the caller copies the model into the bundle. Remote models are downloaded
    into ``dest``, which must be empty or absent. ``tracking_uri`` (``--tracking-uri``) is
    the MLflow tracking store for ``runs:/``, ``models:/`` and ``mlflow-artifacts:/`` URIs;
    without it MLflow's own default applies (``MLFLOW_TRACKING_URI``). ``s3_client`` is a
    boto3 S3 client for ``s3://`` URIs (default: one built from the environment, with
    ``MLFLOW_S3_ENDPOINT_URL`` as its endpoint when set). ``memo`` is a directory where a
    sqlite registry's answers are kept while its file is unchanged (:mod:`registry_memo`);
    a model found there is used in place, like a local path, and MLflow is not imported.

    Raises:
        ModelResolutionError: one line naming ``uri``, what is missing and what exists.
    """
    try:
        return _resolve(uri, Path(dest), tracking_uri, s3_client, memo)
    except Unresolved as exc:
        raise ModelResolutionError(f"cannot resolve {uri!r}: {exc}") from None
    except Exception as exc:  # the boundary: MLflow, boto and I/O errors become one line
        if not _is_store_error(exc):
            raise
        _log.debug("resolving %r failed", uri, exc_info=True)
        raise ModelResolutionError(f"cannot resolve {uri!r}: {_one_line(exc)}") from exc


def _resolve(
    uri: str, dest: Path, tracking_uri: str | None, s3_client: Any, memo: Path | None
) -> ResolvedModel:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and uri[1:2] == ":"):  # a Windows drive letter
        return _local(uri, Path(uri).expanduser())
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise Unresolved(f"file URIs must name a local path, not host {parts.netloc!r}")
        return _local(uri, Path(url2pathname(parts.path)))
    if scheme not in ("s3", "runs", "models", "mlflow-artifacts"):
        raise Unresolved(f"unsupported scheme {scheme + ':'!r}; supported: {SUPPORTED_FORMS}")
    store = registry_memo.store_uri(tracking_uri) if memo and scheme == "models" else None
    known = registry_memo.recall(uri, store, memo) if memo and store else None
    if known is not None:  # the store is as it was when MLflow answered: used in place
        found, directory = known
        return ResolvedModel(
            uri, directory, found.run_id, found.model_name, found.version, found.source, True
        )
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise Unresolved(f"download directory {str(dest)!r} is not empty; pass an empty one")
    if scheme == "s3":
        return _from_s3(uri, parts.netloc, parts.path.strip("/"), dest, s3_client)
    before = registry_memo.snapshot(store) if store else None
    resolved, found, asked = _from_mlflow(uri, scheme, dest, tracking_uri)
    if memo and store and asked == (store, store):  # the store MLflow answered from
        registry_memo.remember(uri, store, memo, found, before)
    return resolved


def _local(uri: str, path: Path) -> ResolvedModel:
    path = path.absolute()  # recorded by the caller; must not depend on the working directory
    if path.name == "MLmodel" and path.is_file():
        path = path.parent
    if not path.exists():
        raise Unresolved(f"no such file or directory {str(path)!r}")
    if not path.is_dir():
        raise Unresolved(f"{str(path)!r} is a file; pass the directory that holds MLmodel")
    _require_mlmodel(path)
    return ResolvedModel(uri, path, None, None, None, None)


def _require_mlmodel(directory: Path) -> None:
    if (directory / "MLmodel").is_file():
        return
    nested = sorted(str(p.parent) for p in directory.glob("*/MLmodel"))
    hint = f"; did you mean {nested[0]!r}?" if nested else ""
    held = list_names(p.name for p in directory.iterdir())
    raise Unresolved(f"{str(directory)!r} has no MLmodel file (it holds: {held}){hint}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _is_store_error(exc: BaseException) -> bool:
    # Checked by module name so that a failure does not import mlflow or botocore.
    module = type(exc).__module__
    prefixes = ("mlflow.", "botocore.", "boto3.", "s3transfer.", "requests.", "sqlalchemy.")
    return isinstance(exc, (OSError, ImportError)) or module.startswith(prefixes)


# --- s3:// ------------------------------------------------------------------------------


def _from_s3(uri: str, bucket: str, prefix: str, dest: Path, client: Any) -> ResolvedModel:
    from botocore.exceptions import ClientError

    if not bucket:
        raise Unresolved("S3 model URIs look like s3://<bucket>/<prefix of the model directory>")
    if client is None:
        import boto3

        client = boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None)
    base = f"{prefix}/" if prefix else ""
    try:
        keys = [
            obj["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base)
            for obj in page.get("Contents", [])
        ]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise Unresolved(
                f"S3 bucket {bucket!r} does not exist; check the bucket name, "
                "MLFLOW_S3_ENDPOINT_URL and AWS credentials"
            ) from None
        raise
    if not keys:
        parent = base.rstrip("/").rpartition("/")[0]
        parent = f"{parent}/" if parent else ""
        listing = client.list_objects_v2(Bucket=bucket, Prefix=parent, Delimiter="/", MaxKeys=100)
        siblings = [p["Prefix"][len(parent) :] for p in listing.get("CommonPrefixes", [])]
        siblings += [o["Key"][len(parent) :] for o in listing.get("Contents", [])]
        raise Unresolved(
            f"no objects under 's3://{bucket}/{base}'; 's3://{bucket}/{parent}' holds: "
            f"{list_names(siblings)}"
        )
    if f"{base}MLmodel" not in keys:
        top = {k[len(base) :].split("/")[0] for k in keys}
        raise Unresolved(f"'s3://{bucket}/{base}' has no MLmodel (it holds: {list_names(top)})")
    root = dest.resolve()
    for key in keys:
        target = (root / key[len(base) :]).resolve()
        if key.endswith("/"):  # a zero-byte "folder" marker written by some S3 consoles
            continue
        if not target.is_relative_to(root):  # a key like "m/../../x" must not escape dest
            raise Unresolved(f"S3 key {key!r} points outside the download directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(target))
    return ResolvedModel(uri, dest, None, None, None, uri)


def _from_mlflow(
    uri: str, scheme: str, dest: Path, tracking_uri: str | None
) -> tuple[ResolvedModel, Located, tuple[str, str | None]]:
    """The model, where MLflow found it, and the (tracking, registry) URIs it asked."""
    import mlflow
    from mlflow import MlflowClient

    tracking = tracking_uri or mlflow.get_tracking_uri()
    mlflow_uris.check_store(tracking, uri if scheme == "mlflow-artifacts" else None)
    client = MlflowClient(tracking_uri=tracking)
    found: Located
    if scheme == "runs":
        found = mlflow_uris.locate_run(client, tracking, uri)
    elif scheme == "models":
        found = mlflow_uris.locate_registered(client, tracking, uri)
    else:
        mlflow_uris.require_remote_model(uri, tracking)
        found = Located(uri, source=uri)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=found.location, dst_path=str(dest), tracking_uri=tracking
    )
    local_dir = Path(local)
    _require_mlmodel(local_dir)
    resolved = ResolvedModel(
        uri, local_dir, found.run_id, found.model_name, found.version, found.source
    )
    return resolved, found, (tracking, getattr(client, "_registry_uri", None))
