"""Fixtures for integration tests that need a real built bundle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlflow_lambda.infra.cli import main
from tests.mlflow_models import LoggedModel


def run_cli(*args: str | Path) -> int:
    """Run the ``mlflow-lambda`` CLI in-process; return its exit status."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """Shared with test_install's wheel cache, so a warm machine reuses its downloads."""
    root = os.environ.get("MLFLOW_LAMBDA_TEST_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "mlflow-lambda-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def forest_build(
    forest: LoggedModel, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The README forest packaged as a zip by the CLI, from the registry."""
    out = tmp_path_factory.mktemp("forest") / "out"
    uri = f"models:/{forest.registered_name}/{forest.version}"
    assert run_cli("package", "-m", uri, "-o", out, "--cache-dir", cache_dir) == 0
    return out
