"""Shared fixtures: a real MLflow sqlite store with real logged models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import mlflow_models as mm


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A sqlite tracking store + registry in a temp dir; MLFLOW_TRACKING_URI points at it."""
    import os

    old = os.environ.get("MLFLOW_TRACKING_URI")
    root = tmp_path_factory.mktemp("mlflow")
    old_cwd = Path.cwd()
    os.chdir(root)  # the default artifact root is relative to the working directory
    try:
        yield mm.use_tracking_store(root)
    finally:
        os.chdir(old_cwd)
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture(scope="session")
def forest(mlflow_store: str) -> mm.LoggedModel:
    return mm.log_forest()


@pytest.fixture(scope="session")
def regressor(mlflow_store: str) -> mm.LoggedModel:
    return mm.log_regressor()


@pytest.fixture(scope="session")
def pipeline(mlflow_store: str) -> mm.LoggedModel:
    return mm.log_pipeline()


@pytest.fixture(scope="session")
def array_model(mlflow_store: str) -> mm.LoggedModel:
    return mm.log_array_model()


@pytest.fixture(scope="session")
def seed_model(mlflow_store: str) -> mm.LoggedModel:
    """The user story's model: fitted on arrays, no signature, no input example."""
    return mm.log_seed_model()


@pytest.fixture(scope="session", autouse=True)
def one_worker_prepares_each_cache_entry() -> Iterator[None]:
    """Under pytest-xdist, one worker at a time prepares a given dependency tree.

    Workers share the wheel and prepared-deps caches (``MLFLOW_LAMBDA_TEST_CACHE``). Without a
    lock, two workers building the same pins would both download, install and compile, and
    one could replace the entry the other is linking from; with it, the second one waits and
    then reuses the first one's tree. A file lock per cache key, so different pins still
    prepare side by side.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    from filelock import FileLock

    from mlflow_lambda.packager import build, deps, trim

    real = deps.prepare_dependencies

    def locked(plan: Any, dest: Path, opts: deps.DepsOptions, **kwargs: Any) -> dict[str, str]:
        root = opts.cache_root or deps.cache_root()
        key = deps.cache_key(plan, opts, kwargs.get("interpreter"))
        (root / "deps").mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / "deps" / f".{key}.lock")):
            return real(plan, dest, opts, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(build, "prepare_dependencies", locked)
    patch.setattr(trim, "prepare_dependencies", locked)
    yield
    patch.undo()
