"""Shared fixtures: a real MLflow sqlite store with real logged models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import mlflow_models as mm


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A sqlite tracking store + registry in a temp dir; MLFLOW_TRACKING_URI points at it."""

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
