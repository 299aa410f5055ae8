"""resolve_model against real MLflow stores: sqlite + registry, S3 (moto server), HTTP server.

Three stores, each built once per module:
- the session sqlite store from conftest (``forest`` = MyRandomForest v1) plus a registered
  model "ResolveModel" (v1: the forest's logged model, v2: an MLflow 2 style run artifact;
  alias champion -> 1; v2 in stage Production) and "EmptyModel" with no versions;
- an experiment of that store whose artifact_location is ``s3://`` on a moto server
  (``MLFLOW_S3_ENDPOINT_URL``), holding a forest logged the MLflow 3 way;
- a real ``mlflow server`` subprocess (file store, ``--artifacts-destination``), whose
  artifacts are ``mlflow-artifacts:/`` URIs served over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.packager.errors import ModelResolutionError
from mlflow_lambda.packager.resolve import ResolvedModel, resolve_model
from tests import mlflow_models as mm
from tests.moto_server import moto_server, patched_environ

pytestmark = pytest.mark.integration

FOREST_FILES = {"MLmodel", "model.skops", "requirements.txt", "python_env.yaml", "conda.yaml"}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def model_files(root: Path) -> dict[str, bytes]:
    # MLflow's models:/ download writes registered_model_meta into the directory it returns
    # (for a local store: into the store itself); it is not part of the logged model.
    return {k: v for k, v in tree(root).items() if k != "registered_model_meta"}


def error_of(uri: str, dest: Path, **kwargs: Any) -> str:
    with pytest.raises(ModelResolutionError) as err:
        resolve_model(uri, dest, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the session sqlite store ----------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    store: str
    legacy_run: str  # a run whose model is a plain run artifact "legacy_model" (MLflow 2 style)
    legacy_source: str


@pytest.fixture(scope="module")
def registry(mlflow_store: str, forest: mm.LoggedModel) -> Registry:
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_store)
    run = client.create_run("0")
    client.log_artifacts(run.info.run_id, str(forest.local_dir), "legacy_model")
    client.log_text(run.info.run_id, "hello", "notes/readme.txt")
    client.set_terminated(run.info.run_id)
    legacy_source = f"{run.info.artifact_uri}/legacy_model"
    client.create_registered_model("ResolveModel")
    client.create_model_version("ResolveModel", forest.model_uri, run_id=forest.run_id)
    client.create_model_version("ResolveModel", legacy_source, run_id=run.info.run_id)
    client.set_registered_model_alias("ResolveModel", "champion", "1")
    with warnings.catch_warnings():
        # Stages are deprecated since MLflow 2.9 (FutureWarning) but still work in 3.17 and
        # models:/<name>/<stage> URIs are still in use.
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage("ResolveModel", "2", "Production")
    client.create_registered_model("EmptyModel")
    return Registry(mlflow_store, run.info.run_id, legacy_source)


def test_runs_uri_of_an_mlflow3_logged_model(forest: mm.LoggedModel, tmp_path: Path) -> None:
    uri = f"runs:/{forest.run_id}/forest"
    got = resolve_model(uri, tmp_path)
    assert got == ResolvedModel(
        uri, tmp_path / "artifacts", forest.run_id, None, None, str(forest.local_dir)
    )
    assert tree(got.local_dir) == tree(forest.local_dir)
    assert FOREST_FILES <= set(tree(got.local_dir))


def test_runs_uri_of_a_run_artifact(
    registry: Registry, forest: mm.LoggedModel, tmp_path: Path
) -> None:
    uri = f"runs:/{registry.legacy_run}/legacy_model"
    got = resolve_model(uri, tmp_path)
    assert got == ResolvedModel(
        uri, tmp_path / "legacy_model", registry.legacy_run, None, None, registry.legacy_source
    )
    assert tree(got.local_dir) == tree(forest.local_dir)


def test_models_uri_with_version(forest: mm.LoggedModel, tmp_path: Path) -> None:
    got = resolve_model("models:/MyRandomForest/1", tmp_path)
    assert got == ResolvedModel(
        "models:/MyRandomForest/1",
        tmp_path / "artifacts",
        forest.run_id,
        "MyRandomForest",
        "1",
        forest.model_uri,  # MLflow 3: the registry source is models:/m-<id>
    )
    assert tree(got.local_dir) == tree(forest.local_dir)


@pytest.mark.parametrize(
    ("suffix", "version"),
    [("/latest", "2"), ("/LATEST", "2"), ("@champion", "1"), ("/Production", "2"),
     ("/production", "2"), ("/2", "2")],
)  # fmt: skip
def test_models_uri_resolves_to_a_concrete_version(
    registry: Registry, forest: mm.LoggedModel, tmp_path: Path, suffix: str, version: str
) -> None:
    got = resolve_model(f"models:/ResolveModel{suffix}", tmp_path)
    if version == "1":
        expected = (tmp_path / "artifacts", forest.run_id, forest.model_uri)
    else:
        expected = (tmp_path / "legacy_model", registry.legacy_run, registry.legacy_source)
    assert got == ResolvedModel(
        f"models:/ResolveModel{suffix}", expected[0], expected[1], "ResolveModel", version,
        expected[2],
    )  # fmt: skip


def test_models_uri_with_a_logged_model_id(forest: mm.LoggedModel, tmp_path: Path) -> None:
    got = resolve_model(forest.model_uri, tmp_path)
    assert got == ResolvedModel(
        forest.model_uri, tmp_path / "artifacts", forest.run_id, None, None, str(forest.local_dir)
    )


def test_explicit_tracking_uri_is_used(
    registry: Registry, forest: mm.LoggedModel, tmp_path: Path
) -> None:
    # MLflow's own models:/ repository would consult the global registry; ours must not.
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        got = resolve_model(
            "models:/ResolveModel@champion", tmp_path / "d", tracking_uri=registry.store
        )
    finally:
        mlflow.set_tracking_uri(registry.store)
    assert (got.version, got.run_id) == ("1", forest.run_id)
    assert not (tmp_path / "other.db").exists()


# --- error messages (sqlite store) ---------------------------------------------------------


def test_run_not_found(registry: Registry, tmp_path: Path) -> None:
    assert error_of("runs:/0123abcd/forest", tmp_path) == (
        "cannot resolve 'runs:/0123abcd/forest': run '0123abcd' not found in tracking store "
        f"{registry.store!r}; check the run id and --tracking-uri / MLFLOW_TRACKING_URI"
    )


def test_artifact_path_not_in_run_lists_logged_models(
    forest: mm.LoggedModel, tmp_path: Path
) -> None:
    uri = f"runs:/{forest.run_id}/model"
    assert error_of(uri, tmp_path) == (
        f"cannot resolve {uri!r}: run {forest.run_id!r} has no artifact or logged model "
        "'model'; it has: 'forest' (logged model)"
    )


def test_artifact_path_not_in_run_lists_artifacts(registry: Registry, tmp_path: Path) -> None:
    uri = f"runs:/{registry.legacy_run}/model"
    assert error_of(uri, tmp_path) == (
        f"cannot resolve {uri!r}: run {registry.legacy_run!r} has no artifact or logged model "
        "'model'; it has: 'legacy_model', 'notes'"
    )


def test_run_root_without_artifact_path(registry: Registry, tmp_path: Path) -> None:
    uri = f"runs:/{registry.legacy_run}"
    assert error_of(uri, tmp_path) == (
        f"cannot resolve {uri!r}: run {registry.legacy_run!r} has no MLmodel; it has: "
        f"'legacy_model', 'notes'; write runs:/{registry.legacy_run}/<one of those>"
    )


def test_run_artifact_without_mlmodel(registry: Registry, tmp_path: Path) -> None:
    uri = f"runs:/{registry.legacy_run}/notes"
    assert error_of(uri, tmp_path) == (
        f"cannot resolve {uri!r}: run {registry.legacy_run!r} artifact 'notes' has no MLmodel "
        "(it holds: 'readme.txt')"
    )
    assert list(tmp_path.iterdir()) == []  # checked before downloading anything


@pytest.mark.parametrize(
    ("uri", "detail"),
    [
        ("models:/ResolveModel/9",
         "registered model 'ResolveModel' has no version 9; versions: 1, 2"),
        ("models:/EmptyModel/1",
         "registered model 'EmptyModel' has no version 1; it has no versions"),
        ("models:/EmptyModel/latest", "registered model 'EmptyModel' has no versions"),
        ("models:/ResolveModel@prod",
         "registered model 'ResolveModel' has no alias 'prod'; its aliases: 'champion' -> 1"),
        ("models:/EmptyModel@prod",
         "registered model 'EmptyModel' has no alias 'prod'; it has no aliases"),
        ("models:/ResolveModel/Staging",
         "no version of registered model 'ResolveModel' is in stage 'Staging'; "
         "versions: 1 (None), 2 (Production)"),
        ("models:/ResolveModel/champion",
         "'champion' is not a version, 'latest' or a stage (None, Staging, Production, Archived); "
         "for an alias write 'models:/ResolveModel@champion'"),
        ("models:/ResolveModel",
         "logged model 'ResolveModel' not found in tracking store {store!r}; "
         "for the registered model write 'models:/ResolveModel/latest' or a version"),
        ("models:/m-0000", "logged model 'm-0000' not found in tracking store {store!r}"),
        ("models:/ResolveModle/1",
         "registered model 'ResolveModle' not found in registry {store!r}; "
         "did you mean 'ResolveModel'?"),
        ("models:/a/b/c",
         "models URIs look like models:/<name>/<version|latest|stage>, models:/<name>@<alias> "
         "or models:/<logged model id>"),
        ("models://profile@databricks/a/1",
         "models URIs look like models:/<name>/<version|latest|stage>, models:/<name>@<alias> "
         "or models:/<logged model id>"),
        ("runs:/", "runs URIs look like runs:/<run_id>/<artifact path>"),
    ],
)  # fmt: skip
def test_registry_errors(registry: Registry, tmp_path: Path, uri: str, detail: str) -> None:
    expected = f"cannot resolve {uri!r}: {detail.format(store=registry.store)}"
    assert error_of(uri, tmp_path) == expected


def test_unknown_model_lists_registered_models(registry: Registry, tmp_path: Path) -> None:
    message = error_of("models:/Zebra/1", tmp_path)
    head = "cannot resolve 'models:/Zebra/1': registered model 'Zebra' not found in registry "
    assert message.startswith(f"{head}{registry.store!r}; registered models: ")
    listed = message.split("registered models: ")[1].split(", ")
    assert {"'EmptyModel'", "'MyRandomForest'", "'ResolveModel'"} <= set(listed)


def test_missing_sqlite_store_is_named_and_not_created(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'typo.db'}"
    assert error_of("models:/M/1", tmp_path / "d", tracking_uri=store) == (
        f"cannot resolve 'models:/M/1': MLflow tracking store {store!r} does not exist "
        f"(no file {str(tmp_path / 'typo.db')!r}); check --tracking-uri / MLFLOW_TRACKING_URI"
    )
    assert not (tmp_path / "typo.db").exists()


def test_unreachable_server_fails_fast_and_hides_the_password(tmp_path: Path) -> None:
    port = closed_port()
    message = error_of(
        "runs:/abc/model", tmp_path, tracking_uri=f"http://user:s3cret@127.0.0.1:{port}"
    )
    assert message == (
        f"cannot resolve 'runs:/abc/model': MLflow tracking server 'http://user:***@127.0.0.1:"
        f"{port}' is unreachable ([Errno 111] Connection refused); check --tracking-uri / "
        "MLFLOW_TRACKING_URI and that the server is running"
    )


def test_mlflow_artifacts_needs_an_http_tracking_uri(registry: Registry, tmp_path: Path) -> None:
    assert error_of("mlflow-artifacts:/0/x", tmp_path) == (
        "cannot resolve 'mlflow-artifacts:/0/x': mlflow-artifacts:/ URIs are served by an MLflow "
        f"tracking server, but the tracking URI is {registry.store!r}; set --tracking-uri / "
        "MLFLOW_TRACKING_URI to the server's http(s)://host:port"
    )


def test_other_mlflow_errors_become_one_line(tmp_path: Path) -> None:
    from mlflow.exceptions import MlflowException

    with pytest.raises(ModelResolutionError) as err:
        resolve_model("runs:/abc/model", tmp_path, tracking_uri="bogus://nowhere")
    assert str(err.value).startswith("cannot resolve 'runs:/abc/model': ")
    assert "'bogus://nowhere'" in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value.__cause__, MlflowException)


# --- an S3 artifact store (moto server, MLFLOW_S3_ENDPOINT_URL) ------------------------------


@dataclass(frozen=True)
class S3Store:
    endpoint: str
    model: mm.LoggedModel  # logged into an experiment whose artifacts live on S3
    artifact_location: str


@pytest.fixture(scope="module")
def s3_store(mlflow_store: str) -> Iterator[S3Store]:
    import boto3
    from mlflow import MlflowClient

    with moto_server(extra_env={"MLFLOW_S3_ENDPOINT_URL": None}) as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="mlflow-bucket")
        client = MlflowClient(mlflow_store)
        experiment = client.create_experiment("resolve-s3", "s3://mlflow-bucket/exp")
        # MLFLOW_EXPERIMENT_ID rather than mlflow.set_experiment: no global state left behind.
        with patched_environ({"MLFLOW_EXPERIMENT_ID": experiment}):
            model = mm.log_forest(registered_name="S3Forest", n_estimators=3)
        location = client.get_logged_model(model.model_uri.split("/")[-1]).artifact_location
        yield S3Store(endpoint, model, location)


def test_runs_uri_downloads_from_s3(s3_store: S3Store, tmp_path: Path) -> None:
    uri = f"runs:/{s3_store.model.run_id}/forest"
    got = resolve_model(uri, tmp_path)
    assert s3_store.artifact_location.startswith("s3://mlflow-bucket/exp/models/m-")
    assert got == ResolvedModel(
        uri, tmp_path / "artifacts", s3_store.model.run_id, None, None, s3_store.artifact_location
    )
    assert model_files(got.local_dir) == model_files(s3_store.model.local_dir)


def test_models_uri_downloads_from_s3(s3_store: S3Store, tmp_path: Path) -> None:
    got = resolve_model("models:/S3Forest/latest", tmp_path)
    assert got == ResolvedModel(
        "models:/S3Forest/latest",
        tmp_path / "artifacts",
        s3_store.model.run_id,
        "S3Forest",
        "1",
        s3_store.model.model_uri,
    )
    assert model_files(got.local_dir) == model_files(s3_store.model.local_dir)


def test_s3_uri_with_the_default_client_honours_the_endpoint(
    s3_store: S3Store, tmp_path: Path
) -> None:
    got = resolve_model(s3_store.artifact_location, tmp_path)
    assert got == ResolvedModel(
        s3_store.artifact_location, tmp_path, None, None, None, s3_store.artifact_location
    )
    assert model_files(tmp_path) == model_files(s3_store.model.local_dir)


def test_s3_missing_key_lists_what_is_there(s3_store: S3Store, tmp_path: Path) -> None:
    assert error_of("s3://mlflow-bucket/exp/nope", tmp_path) == (
        "cannot resolve 's3://mlflow-bucket/exp/nope': no objects under "
        "'s3://mlflow-bucket/exp/nope/'; 's3://mlflow-bucket/exp/' holds: 'models/'"
    )


def test_s3_unreachable_endpoint_is_one_line(s3_store: S3Store, tmp_path: Path) -> None:
    import boto3
    from botocore.config import Config

    dead = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    message = error_of("s3://mlflow-bucket/exp", tmp_path, s3_client=dead)
    assert message.startswith(
        "cannot resolve 's3://mlflow-bucket/exp': Could not connect to the endpoint URL: "
        '"http://127.0.0.1:'
    )


# --- an MLflow tracking server with artifact proxying (mlflow-artifacts:/) --------------------


@dataclass(frozen=True)
class Server:
    uri: str
    run_id: str
    artifact_uri: str  # mlflow-artifacts:/<experiment>/<run>/artifacts


def _wait_until_up(proc: subprocess.Popen[bytes], uri: str, log: Path) -> None:
    for _ in range(600):  # bounded: 120 s on a loaded 2-core machine
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"mlflow server did not answer /health: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, forest: mm.LoggedModel) -> Iterator[Server]:
    """``mlflow server`` on 127.0.0.1 with a file store (no sqlite migrations: starts faster)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow-server")
    port = closed_port()
    uri = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # it execs uvicorn
    env.pop("MLFLOW_TRACKING_URI", None)
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--backend-store-uri", (root / "mlruns").as_uri(),
             "--artifacts-destination", str(root / "artifacts")],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_until_up(proc, uri, log)
        client = MlflowClient(uri)
        run = client.create_run(client.create_experiment("served"))
        client.log_artifacts(run.info.run_id, str(forest.local_dir), "model")
        client.create_registered_model("ServedModel")
        client.create_model_version(
            "ServedModel", f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        yield Server(uri, run.info.run_id, run.info.artifact_uri)
    finally:
        # The server runs uvicorn (and may start job consumers) in its own process group,
        # whose id is the pid we started.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def test_mlflow_artifacts_uri(server: Server, forest: mm.LoggedModel, tmp_path: Path) -> None:
    uri = f"{server.artifact_uri}/model"
    assert uri.startswith("mlflow-artifacts:/")
    got = resolve_model(uri, tmp_path, tracking_uri=server.uri)
    assert got == ResolvedModel(uri, tmp_path / "model", None, None, None, uri)
    assert tree(got.local_dir) == tree(forest.local_dir)


def test_runs_and_models_uris_over_http(server: Server, tmp_path: Path) -> None:
    source = f"{server.artifact_uri}/model"
    run_uri = f"runs:/{server.run_id}/model"
    assert resolve_model(run_uri, tmp_path / "r", tracking_uri=server.uri) == ResolvedModel(
        run_uri, tmp_path / "r" / "model", server.run_id, None, None, source
    )
    got = resolve_model("models:/ServedModel/1", tmp_path / "m", tracking_uri=server.uri)
    assert got == ResolvedModel(
        "models:/ServedModel/1", tmp_path / "m" / "model", server.run_id, "ServedModel", "1", source
    )


def test_tracking_uri_from_the_environment(
    server: Server, mlflow_store: str, tmp_path: Path
) -> None:
    import mlflow

    # conftest set a global URI, which outranks the environment. None clears it (MLflow's code
    # handles it: `MLFLOW_TRACKING_URI.unset()`), though its annotation says str | Path.
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    try:
        with patched_environ({"MLFLOW_TRACKING_URI": server.uri}):
            got = resolve_model("models:/ServedModel/1", tmp_path)
    finally:
        mlflow.set_tracking_uri(mlflow_store)
    assert (got.model_name, got.version, got.run_id) == ("ServedModel", "1", server.run_id)


def test_mlflow_artifacts_missing_path(server: Server, tmp_path: Path) -> None:
    uri = f"{server.artifact_uri}/nope"
    assert error_of(uri, tmp_path, tracking_uri=server.uri) == (
        f"cannot resolve {uri!r}: nothing at {uri!r}; {server.artifact_uri!r} holds: 'model'"
    )


def test_mlflow_artifacts_directory_without_mlmodel(server: Server, tmp_path: Path) -> None:
    uri = server.artifact_uri
    assert error_of(uri, tmp_path, tracking_uri=server.uri) == (
        f"cannot resolve {uri!r}: {uri!r} has no MLmodel (it holds: 'model')"
    )
    assert list(tmp_path.iterdir()) == []
