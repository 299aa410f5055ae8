"""A user's own ``handler.py``, ``packager/`` or ``infra/`` cannot leak into, or break, a build.

The Serverless Framework's default file is ``handler.py``; notebooks and ``python -m`` put the
working directory on ``sys.path``. The CLI runs here as a user runs it: the console script, in
a working directory full of the user's files, which ``PYTHONPATH`` names too.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.mlflow_models import LoggedModel

pytestmark = pytest.mark.integration

USER_FILES = {
    "handler.py": "def handler(event, context):\n    return 'the user handler'\n",
    "settings.py": "AWS_SECRET_ACCESS_KEY = 'user-secret-settings'\n",
    "deep/secret_settings.py": "PASSWORD = 'user-secret-settings'\n",
    # a user's packages of the names our folders have: importing them would fail loudly
    "packager/__init__.py": "raise ImportError('the user packager was imported')\n",
    "packager/build.py": "raise ImportError('the user packager.build was imported')\n",
    "infra/__init__.py": "raise ImportError('the user infra was imported')\n",
    "handler/__init__.py": "raise ImportError('the user handler package was imported')\n",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_user_files_on_the_path_change_nothing_in_the_bundle(
    forest_build: Path, forest: LoggedModel, cache_dir: Path, tmp_path: Path
) -> None:
    user = tmp_path / "project"
    for rel, text in USER_FILES.items():
        (user / rel).parent.mkdir(parents=True, exist_ok=True)
        (user / rel).write_text(text)
    # ``handler.py`` and ``handler/`` cannot both be imported; keep the directory in a second
    # path entry so both shadows are tried
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "handler.py").write_text(USER_FILES["handler.py"])
    out = tmp_path / "out"
    script = Path(sys.executable).parent / "mlflow-lambda"
    uri = f"models:/{forest.registered_name}/{forest.version}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(flat), str(user)])}
    done = subprocess.run(
        [str(script), "package", "-m", uri, "-o", str(out), "--cache-dir", str(cache_dir)],
        cwd=user, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert _sha256(out / "bundle.zip") == _sha256(forest_build / "bundle.zip")

    with zipfile.ZipFile(out / "bundle.zip") as zf:
        names = zf.namelist()
        runtime = sorted(n for n in names if n.startswith("mlflow_lambda/"))
        blob = b"".join(zf.read(n) for n in runtime)
    assert b"user-secret-settings" not in blob and b"the user handler" not in blob
    assert not [n for n in names if n.split("/")[0] in {"handler", "handler.py", "deep"}]
    own = [n for n in runtime if not n.startswith("mlflow_lambda/handler/")]
    assert own == [
        "mlflow_lambda/__init__.py",
        "mlflow_lambda/__pycache__/__init__.cpython-312.pyc",
    ]
    sources = {n.rpartition("/")[2] for n in runtime if n.endswith(".py")}
    assert {"lambda_function.py", "app.py", "sklearn.py"} <= sources
    assert not sources & {"handler.py", "settings.py", "secret_settings.py", "build.py"}
