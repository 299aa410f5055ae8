"""build_zip reuses deflate streams by content and still writes the bytes zipfile would."""

from __future__ import annotations

import hashlib
import os
import stat
import time
import zipfile
from pathlib import Path

import pytest

from mlflow_lambda.packager import assemble
from mlflow_lambda.packager.assemble import build_zip
from mlflow_lambda.packager.cachedirs import remember_runtime, remembered_runtime
from mlflow_lambda.packager.plan import BundlePlan

FILES = {
    "numpy/__init__.py": (b"from numpy._core import *\n" * 500, 0o644),
    "numpy/core.so": (os.urandom(40_000) + bytes(40_000), 0o755),
    "skops/café.py": (b"# a name that is not ASCII\n", 0o644),
    "model/model.pkl": (b"\x80\x05" + bytes(5000), 0o644),
    "model.json": (b'{"flavor": "sklearn"}', 0o644),
}


def _tree(root: Path) -> Path:
    for rel, (data, mode) in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    return root


def _with_zipfile(root: Path, dest: Path) -> str:
    """The zip as the standard library writes it (build_zip before it had its own writer)."""
    date_time = time.gmtime(assemble.ZIP_EPOCH_MIN)[:6]
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(FILES):
            path = root / rel
            info = zipfile.ZipInfo(rel, date_time)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | assemble.normal_mode(path.stat().st_mode)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as out:
                out.write(path.read_bytes())
    return hashlib.sha256(dest.read_bytes()).hexdigest()


def test_the_writer_gives_zipfiles_bytes(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    ours = build_zip(root, tmp_path / "ours.zip")
    assert ours == _with_zipfile(root, tmp_path / "stdlib.zip")
    with zipfile.ZipFile(tmp_path / "ours.zip") as zf:
        assert zf.testzip() is None
        assert {i.filename: zf.read(i) for i in zf.infolist()} == {
            k: v[0] for k, v in FILES.items()
        }


def test_a_warm_rebuild_copies_cached_streams_and_keeps_the_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = _tree(tmp_path / "tree"), tmp_path / "deflated"
    cold = build_zip(root, tmp_path / "cold.zip", cache=cache, uncached={"model", "model.json"})
    kept = sorted(p.name for p in cache.rglob("*") if p.is_file())
    wanted = sorted(hashlib.sha256(FILES[r][0]).hexdigest() for r in FILES if "/" in r)
    wanted.remove(hashlib.sha256(FILES["model/model.pkl"][0]).hexdigest())
    assert kept == wanted  # dependencies are kept, the model is not

    compressed: list[int] = []
    real = assemble._deflate
    monkeypatch.setattr(
        assemble, "_deflate", lambda data: compressed.append(len(data)) or real(data)
    )
    warm = build_zip(root, tmp_path / "warm.zip", cache=cache, uncached={"model", "model.json"})
    model_sizes = sorted(len(FILES[r][0]) for r in ("model/model.pkl", "model.json"))
    assert sorted(compressed) == model_sizes  # only the model was deflated again
    assert warm == cold == build_zip(root, tmp_path / "plain.zip")


def test_the_runtime_a_set_of_pins_needs_is_remembered(tmp_path: Path) -> None:
    plan = BundlePlan("3.11", "x86_64", ["numpy==2.4.6", "scikit-learn==1.9.1"])
    assert remembered_runtime(plan, tmp_path) is None
    remember_runtime(plan, "3.12", "no wheel for numpy==2.4.6 on manylinux_2_26", tmp_path)
    assert remembered_runtime(plan, tmp_path) == (
        "3.12",
        "no wheel for numpy==2.4.6 on manylinux_2_26",
    )
    for other in (
        BundlePlan("3.11", "arm64", plan.requirements),
        BundlePlan("3.11", "x86_64", ["numpy==2.2.6", "scikit-learn==1.9.1"]),
    ):
        assert remembered_runtime(other, tmp_path) is None
