"""Prune, compile and zip a real scikit-learn + pandas tree; import and predict from it.

The tree is copied once per session from the repo venv (numpy, scipy, pandas, scikit-learn and
their dependencies, about 360 MB). Every check runs the tree in a fresh ``python -I -S -B``
process with only that tree on ``sys.path`` (``-B``: like Lambda's read-only ``/var/task``, no
bytecode is written). Whether bytecode was used is read from audit events, not timings: when
the import system falls back to source it calls ``compile()``, which raises a ``compile``
audit event (PEP 578) naming the file.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from mlflow_lambda.packager.assemble import build_zip
from mlflow_lambda.packager.bytecode import (
    compile_tree,
    find_interpreter,
    missing_interpreter_message,
)
from mlflow_lambda.packager.prune import PruneReport, prune_tree, strip_tool
from mlflow_lambda.packager.sizes import size_report

pytestmark = pytest.mark.integration

SITE = Path(np.__file__).parent.parent
PACKAGES = [
    "numpy", "numpy.libs", "scipy", "scipy.libs", "pandas", "sklearn", "scikit_learn.libs",
    "joblib", "threadpoolctl.py", "narwhals", "cloudpickle", "dateutil", "six.py",
]  # fmt: skip
DISTS = ["numpy", "scipy", "pandas", "scikit_learn", "joblib", "threadpoolctl", "narwhals"]
DISTS += ["cloudpickle", "python_dateutil", "six"]
X = [[0.1, 2.0, 3.5, 1.0], [5.0, 0.2, 1.1, 4.0], [2.5, 2.5, 2.5, 2.5]]

PROBE = """
import json, pickle, sys
tree = sys.argv[1]
compiled = []
def hook(event, args):
    if event == "compile" and isinstance(args[1], str) and args[1].startswith(tree):
        compiled.append(args[1])
sys.addaudithook(hook)
sys.path.insert(0, tree)
import numpy as np, pandas, sklearn, sklearn.ensemble
with open(tree + "/model/model.pkl", "rb") as f:
    model = pickle.load(f)
print(json.dumps({
    "predictions": model.predict(np.array(json.loads(sys.argv[2]))).tolist(),
    "compiled": len(compiled),
    "sklearn_file": sklearn.__file__[len(tree):],
    "clone_co_filename": sklearn.base.clone.__code__.co_filename,
    "pandas": pandas.__version__,
}))
"""


@pytest.fixture(scope="session")
def python311() -> Path:
    found = find_interpreter(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert found is not None  # at worst sys.executable itself
    return found


@pytest.fixture(scope="session")
def expected() -> list[int]:
    model = _model()
    return [int(y) for y in model.predict(np.array(X))]


def _model() -> RandomForestClassifier:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 4)) * 2 + 2
    labels = (features[:, 0] > features[:, 1]).astype(int) + (features[:, 3] > 3).astype(int)
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(features, labels)


@pytest.fixture(scope="session")
def pruned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PruneReport]:
    root = tmp_path_factory.mktemp("pruned") / "task"
    root.mkdir()
    for name in PACKAGES:
        src = SITE / name
        if src.is_dir():
            shutil.copytree(src, root / name, symlinks=True)
        else:
            shutil.copy2(src, root / name)
    for dist_info in SITE.glob("*.dist-info"):
        if dist_info.name.split("-")[0] in DISTS:
            shutil.copytree(dist_info, root / dist_info.name)
    (root / "model").mkdir()
    (root / "model" / "model.pkl").write_bytes(pickle.dumps(_model(), protocol=5))
    (root / "model" / "tests").mkdir()  # protected: pruning must not look inside model/
    (root / "model" / "tests" / "helper.py").write_text("X = 1\n")
    (root / "mlflow_lambda" / "handler").mkdir(parents=True)
    entry = root / "mlflow_lambda" / "handler" / "lambda_function.py"
    entry.write_text("def handler(event, context):\n    ...\n")
    (root / "model.json").write_text("{}")
    return root, prune_tree(root, arch="x86_64")


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def _probe(python: Path, tree: Path) -> dict[str, Any]:
    out = subprocess.run(
        [str(python), "-I", "-S", "-B", "-c", PROBE, str(tree), json.dumps(X)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _pycs(tree: Path) -> dict[str, str]:
    return {
        p.relative_to(tree).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(tree.rglob("*.pyc"))
    }


def test_pruned_tree_imports_and_predicts_from_source(
    pruned: tuple[Path, PruneReport], python311: Path, expected: list[int]
) -> None:
    root, report = pruned
    assert set(report.bytes_saved) == {"pycache", "tests", "sources", "stubs", "unreferenced"}
    assert report.bytes_saved["tests"] > 50_000_000
    assert not list(root.rglob("__pycache__"))
    assert (root / "model" / "tests" / "helper.py").is_file()
    result = _probe(python311, root)
    assert result["predictions"] == expected
    assert result["compiled"] > 500  # no bytecode at all: every module compiled from source


@pytest.mark.parametrize("mode", ["unchecked-hash", "checked-hash", "pyc-only"])
def test_compiled_tree_uses_its_bytecode(
    mode: str,
    pruned: tuple[Path, PruneReport],
    python311: Path,
    expected: list[int],
    tmp_path: Path,
) -> None:
    tree = _copy(pruned[0], tmp_path / "task")
    result = compile_tree(tree, python311, mode=mode)
    assert (result.failed, result.mode) == ([], mode)
    assert result.compiled == len(list(pruned[0].rglob("*.py"))) - 1  # all but model/tests
    assert not list((tree / "model").rglob("*.pyc"))
    probe = _probe(python311, tree)
    assert probe["predictions"] == expected
    assert probe["compiled"] == 0
    tag = sys.implementation.cache_tag
    if mode == "pyc-only":
        assert result.sources_removed == result.compiled
        assert probe["sklearn_file"] == "/sklearn/__init__.pyc"
        # File names inside the bytecode point at the Lambda task root, not the build dir.
        assert probe["clone_co_filename"] == "/var/task/sklearn/base.py"
    else:
        assert result.sources_removed == 0
        assert probe["sklearn_file"] == "/sklearn/__init__.py"
        header = (tree / "sklearn" / "__pycache__" / f"__init__.{tag}.pyc").read_bytes()[:8]
        # PEP 552 flags: bit 0 hash-based, bit 1 check_source.
        assert (
            int.from_bytes(header[4:8], "little") == {"unchecked-hash": 1, "checked-hash": 3}[mode]
        )


def test_bytecode_is_deterministic_across_build_dirs(
    pruned: tuple[Path, PruneReport], python311: Path, tmp_path: Path
) -> None:
    first = _copy(pruned[0] / "sklearn", tmp_path / "one" / "sklearn").parent
    second = _copy(pruned[0] / "sklearn", tmp_path / "elsewhere" / "b" / "sklearn").parent
    compile_tree(first, python311)
    compile_tree(second, python311)
    hashes = _pycs(first)
    assert len(hashes) > 300
    assert hashes == _pycs(second)


def test_zip_of_compiled_tree_runs_and_reports_sizes(
    pruned: tuple[Path, PruneReport], python311: Path, expected: list[int], tmp_path: Path
) -> None:
    tree = _copy(pruned[0], tmp_path / "task")
    compile_tree(tree, python311)
    sha = build_zip(tree, tmp_path / "bundle.zip")
    assert sha == hashlib.sha256((tmp_path / "bundle.zip").read_bytes()).hexdigest()
    with zipfile.ZipFile(tmp_path / "bundle.zip") as zf:
        zf.extractall(tmp_path / "unzipped")
    probe = _probe(python311, tmp_path / "unzipped")
    assert (probe["predictions"], probe["compiled"]) == (expected, 0)

    report = size_report(tree, tmp_path / "bundle.zip")
    names = [r.name for r in report.rows]
    assert set(names) >= {"numpy", "scipy", "pandas", "scikit-learn", "model", "handler"}
    assert names[-2:] == ["model", "handler"]
    assert report.unzipped == sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    assert sum(r.zipped or 0 for r in report.rows) + 22 == report.zipped


def test_strip_keeps_libs_untouched_and_numpy_importable(
    pruned: tuple[Path, PruneReport], python311: Path, tmp_path: Path
) -> None:
    if strip_tool("x86_64") is None:
        pytest.skip("no strip for x86_64 ELF files on this host")
    tree = tmp_path / "task"
    for name in ("numpy", "numpy.libs"):
        _copy(pruned[0] / name, tree / name)
    libs_before = _hashes(tree / "numpy.libs")
    report = prune_tree(tree, arch="x86_64", strip=True)
    assert _hashes(tree / "numpy.libs") == libs_before
    stripped = report.removed["strip"]
    assert stripped and all(rel.startswith("numpy/") and rel.endswith(".so") for rel in stripped)
    assert report.bytes_saved["strip"] > 0
    code = "import sys; sys.path.insert(0, sys.argv[1]); import numpy; print(numpy.ones(3).sum())"
    out = subprocess.run(
        [str(python311), "-I", "-S", "-B", "-c", code, str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (out.returncode, out.stdout) == (0, "3.0\n"), out.stderr


def _hashes(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir()}


def test_find_interpreter_order_and_missing_warning(tmp_path: Path) -> None:
    fake_root = tmp_path / "pyenv"
    for version in ("3.12.1", "3.12.10", "3.12.9"):
        exe = fake_root / "versions" / version / "bin" / "python3.12"
        exe.parent.mkdir(parents=True)
        exe.write_text(f"#!/bin/sh\nprintf '3.12\\n/opt/{version}/python3.12\\n'\n")
        exe.chmod(0o755)
    found = find_interpreter("3.12", search_path=str(tmp_path / "empty"), pyenv_root=fake_root)
    assert found == Path("/opt/3.12.10/python3.12")  # newest patch release first

    current = Path(sys.executable)
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert find_interpreter(mine, search_path="", pyenv_root=tmp_path, current=current) == Path(
        sys.executable
    )
    assert find_interpreter("3.99", search_path="", pyenv_root=tmp_path) is None
    with pytest.raises(ValueError, match=r"version must look like '3\.12', got 'py3'"):
        find_interpreter("py3")
    message = missing_interpreter_message("3.99")
    assert "no Python 3.99 found" in message and "about 2.8x slower" in message


def test_compiles_for_another_python_version(tmp_path: Path) -> None:
    other = next((v for v in ("3.12", "3.13", "3.10") if find_interpreter(v)), None)
    if other is None:
        pytest.skip("no second Python version on this host")
    interpreter = find_interpreter(other)
    assert interpreter is not None
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("X = {'a', 'b'}\n")
    (tmp_path / "top.py").write_text("Y = 2\n")
    compile_tree(tmp_path, interpreter)
    tag = "cpython-" + other.replace(".", "")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.pyc")) == [
        f"__pycache__/top.{tag}.pyc",
        f"pkg/__pycache__/__init__.{tag}.pyc",
    ]


def test_timestamp_mode_is_refused(tmp_path: Path) -> None:
    # Zips and image contexts reset mtimes, which would make every timestamp pyc stale.
    with pytest.raises(ValueError, match=r"mode must be one of .*, got 'timestamp'"):
        compile_tree(tmp_path, Path(sys.executable), mode="timestamp")
