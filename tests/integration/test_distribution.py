"""What installing mlflow-lambda puts into site-packages: one import package of our own."""

from __future__ import annotations

import configparser
import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mlflow_lambda import handler
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCES = (".git", ".venv", "build", ".demo", "*.egg-info", "__pycache__", ".*_cache")


def test_the_wheel_holds_one_top_level_import_package(tmp_path: Path) -> None:
    # setuptools writes build/ into the source tree it builds: build a copy, so the checkout's
    # own build/ (where `make demo` packages) is never touched
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("mlflow_lambda-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(zf.read(f"{dist_info}/entry_points.txt").decode())
    assert {n.split("/")[0] for n in names} == {"mlflow_lambda", dist_info}
    assert {n.split("/")[1] for n in names if n.startswith("mlflow_lambda/")} == {
        "handler",
        "packager",
        "infra",
    }
    # the runtime ships its typing marker; nothing of the repository besides the three folders
    assert "mlflow_lambda/handler/py.typed" in names
    assert not [n for n in names if n.startswith("mlflow_lambda/") and "/tests/" in n]
    assert dict(entry_points["console_scripts"]) == {
        "mlflow-lambda": "mlflow_lambda.infra.cli:console_main"
    }
    assert dict(entry_points["mlflow.deployments"]) == {"lambda": "mlflow_lambda.infra.plugin"}


def test_version_is_the_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--version") == 0
    version = importlib.metadata.version("mlflow-lambda")
    assert capsys.readouterr().out == f"mlflow-lambda, version {version}\n"
    assert version == handler.__version__  # pyproject.toml reads it from the runtime
