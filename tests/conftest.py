"""Shared fixtures: a real MLflow sqlite store with real logged models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import mlflow_models as mm

# make test hands whole files to xdist workers in collection order (--dist loadfile), so a slow
# file collected last finishes last while the other workers idle. The slowest files go first:
# modelled on the durations of 2026-12-02 (--durations=0, 3 workers), the last worker ends
# 868 s in alphabetical order and 809 s in this one (the longest-first bound: 808 s). Any file
# not named here keeps its place after them; a stale list only costs that minute back.
SLOWEST_FIRST = (  # in tests/integration/
    "test_template_surface", "test_bytecode", "test_native_flavors", "test_package",
    "test_seed_model", "test_trim", "test_plugin", "test_generic", "test_parity",
    "test_s3_faults", "test_preload", "test_install", "test_pandas_free", "test_template",
    "test_serve_bundle",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}

    def place(item: pytest.Item) -> int:
        heavy = item.path.parent.name == "integration"
        return rank.get(item.path.stem, len(rank)) if heavy else len(rank)

    items.sort(key=place)  # stable: the rest keep their order


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
