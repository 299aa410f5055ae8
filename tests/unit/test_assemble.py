"""build_zip is byte-for-byte reproducible; build_image_context lays out a Docker context."""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.packager.assemble import build_image_context, build_zip
from mlflow_lambda.packager.errors import BundleCheckError

FILES: dict[str, tuple[bytes, int]] = {
    "numpy/__init__.py": (b"from numpy._core import *\n" * 50, 0o644),
    "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so": (bytes(range(256)) * 8, 0o755),
    "numpy/__pycache__/__init__.cpython-312.pyc": (b"\xcb\r\r\n" + bytes(60), 0o644),
    "numpy-2.4.6.dist-info/RECORD": (b"numpy/__init__.py,,\n", 0o644),
    "bin/tool": (b"#!/bin/sh\necho hi\n", 0o700),
    "handler/lambda_function.py": (b"handler = None\n", 0o600),
    "model/model.pkl": (b"\x80\x05" + bytes(100), 0o664),
    "model.json": (b'{"flavor": "sklearn"}', 0o444),
}
EXPECTED_MODES = {
    "numpy/__init__.py": 0o644,
    "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so": 0o755,
    "numpy/__pycache__/__init__.cpython-312.pyc": 0o644,
    "numpy-2.4.6.dist-info/RECORD": 0o644,
    "bin/tool": 0o755,
    "handler/lambda_function.py": 0o644,
    "model/model.pkl": 0o644,
    "model.json": 0o644,
}


def _make_tree(root: Path, *, mtime: int, order: list[str]) -> Path:
    for rel in order:
        data, mode = FILES[rel]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    return root


@pytest.fixture
def restrictive_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def test_same_files_give_the_same_sha256(tmp_path: Path, restrictive_umask: None) -> None:
    first = _make_tree(tmp_path / "a", mtime=1_600_000_000, order=sorted(FILES))
    # A copy written in another order, with other mtimes, under a restrictive umask
    # (directories 0700) and with group/other bits dropped from every file.
    second = _make_tree(tmp_path / "b", mtime=1_700_000_123, order=sorted(FILES, reverse=True))
    for path in second.rglob("*"):
        if path.is_file():
            path.chmod(path.stat().st_mode & 0o700)
    sha_a1 = build_zip(first, tmp_path / "out" / "a1.zip")
    sha_a2 = build_zip(first, tmp_path / "out" / "a2.zip")
    sha_b = build_zip(second, tmp_path / "out" / "b.zip")
    assert sha_a1 == sha_a2 == sha_b
    assert (tmp_path / "out" / "a1.zip").read_bytes() == (tmp_path / "out" / "b.zip").read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a1.zip", "a2.zip", "b.zip"]


def test_zip_entries_are_sorted_files_with_fixed_time_and_modes(tmp_path: Path) -> None:
    root = _make_tree(tmp_path / "t", mtime=1_650_000_000, order=list(FILES))
    build_zip(root, tmp_path / "bundle.zip")
    with zipfile.ZipFile(tmp_path / "bundle.zip") as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(FILES)
        assert {i.filename: i.external_attr >> 16 for i in infos} == {
            rel: 0o100000 | mode for rel, mode in EXPECTED_MODES.items()
        }
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {(i.compress_type, i.create_system, i.extra, i.comment) for i in infos} == {
            (zipfile.ZIP_DEFLATED, 3, b"", b"")
        }
        assert zf.comment == b""
        assert {i.filename: zf.read(i) for i in infos} == {k: v[0] for k, v in FILES.items()}


def test_source_date_epoch_and_epoch_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _make_tree(tmp_path / "t", mtime=1_650_000_000, order=list(FILES))
    default = build_zip(root, tmp_path / "default.zip")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14T22:13:20Z
    from_env = build_zip(root, tmp_path / "env.zip")
    from_arg = build_zip(root, tmp_path / "arg.zip", epoch=1_700_000_000)
    assert from_env == from_arg != default
    with zipfile.ZipFile(tmp_path / "env.zip") as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}
    # Before 1980 cannot be written in a zip: clamped, so identical to the default.
    assert build_zip(root, tmp_path / "old.zip", epoch=0) == default
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH must be an integer, got 'yesterday'"):
        build_zip(root, tmp_path / "bad.zip")


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_mode & 0o777, int(p.stat().st_mtime))
        for p in sorted(root.rglob("*"))
    }


APP_ENTRIES = ("handler", "model", "model.json")  # what packager.build stages as the app


def image_context_from_staging(staging: Path, dest: Path, **kwargs: Any) -> None:
    """Split one staging tree the way the build does, then build the image context."""
    parts = staging.parent / f"{staging.name}-parts"
    shutil.rmtree(parts, ignore_errors=True)
    for entry in sorted(staging.iterdir()) if staging.is_dir() else []:
        side = parts / ("app" if entry.name in APP_ENTRIES else "deps")
        side.mkdir(parents=True, exist_ok=True)
        if entry.is_dir():
            shutil.copytree(entry, side / entry.name)
        else:
            shutil.copy2(entry, side / entry.name)
    for side in ("app", "deps"):
        (parts / side).mkdir(parents=True, exist_ok=True)
    build_image_context(parts / "deps", parts / "app", dest, **kwargs)


def test_image_context_layout_dockerfile_and_normalised_files(tmp_path: Path) -> None:
    staging = _make_tree(tmp_path / "staging", mtime=1_650_000_000, order=list(FILES))
    dest = tmp_path / "image"
    image_context_from_staging(staging, dest, python="3.12", arch="arm64")
    assert (dest / "Dockerfile").read_text() == (
        "# Generated by mlflow-lambda (packager/assemble.py documents this layout).\n"
        "# Build: docker build --platform linux/arm64 -t <name> .\n"
        "FROM --platform=linux/arm64 public.ecr.aws/lambda/python:3.12\n"
        "\n"
        "# Dependencies first: a model-only change rebuilds only the layer below this one.\n"
        "COPY deps/ ${LAMBDA_TASK_ROOT}/\n"
        "COPY app/ ${LAMBDA_TASK_ROOT}/\n"
        "\n"
        'CMD ["mlflow_lambda.handler.lambda_function.handler"]\n'
    )
    app = {"handler", "model", "model.json"}
    expected = {
        ("app/" if rel.split("/")[0] in app else "deps/") + rel: (mode, 315532800)
        for rel, mode in EXPECTED_MODES.items()
    }
    dirs = {"app", "deps", "app/handler", "app/model", "deps/bin", "deps/numpy"}
    dirs |= {"deps/numpy/_core", "deps/numpy/__pycache__", "deps/numpy-2.4.6.dist-info"}
    expected |= {d: (0o755, 315532800) for d in dirs}
    expected["Dockerfile"] = (0o644, 315532800)
    assert _listing(dest) == expected
    for rel in FILES:
        side = "app" if rel.split("/")[0] in app else "deps"
        assert (dest / side / rel).read_bytes() == FILES[rel][0]

    # Rebuilding into the same directory replaces deps/ and app/ and keeps the user's files.
    (dest / "notes.txt").write_text("mine")
    (staging / "model" / "model.pkl").unlink()
    image_context_from_staging(staging, dest, python="3.12", arch="arm64", epoch=1_700_000_000)
    assert not (dest / "app" / "model" / "model.pkl").exists()
    assert (dest / "notes.txt").read_text() == "mine"
    assert (dest / "app" / "model.json").stat().st_mtime == 1_700_000_000


def test_image_context_from_separate_dirs_and_x86_platform(tmp_path: Path) -> None:
    staging = _make_tree(tmp_path / "staging", mtime=1_650_000_000, order=list(FILES))
    deps, app = tmp_path / "deps", tmp_path / "app"
    shutil.copytree(staging / "numpy", deps / "numpy")
    shutil.copytree(staging / "handler", app / "handler")
    build_image_context(deps, app, tmp_path / "image", python="3.11", arch="x86_64")
    text = (tmp_path / "image" / "Dockerfile").read_text()
    assert "FROM --platform=linux/amd64 public.ecr.aws/lambda/python:3.11\n" in text
    assert sorted(p.name for p in (tmp_path / "image").iterdir()) == ["Dockerfile", "app", "deps"]
    assert sorted(p.name for p in (tmp_path / "image" / "deps").iterdir()) == ["numpy"]
    assert sorted(p.name for p in (tmp_path / "image" / "app").iterdir()) == ["handler"]


def test_image_context_refuses_overlap_and_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "deps" / "handler").mkdir(parents=True)
    (tmp_path / "app" / "handler").mkdir(parents=True)
    with pytest.raises(BundleCheckError, match=r"both have \['handler'\] at the task root"):
        build_image_context(
            tmp_path / "deps", tmp_path / "app", tmp_path / "i", python="3.12", arch="arm64"
        )
    with pytest.raises(
        ValueError, match="arch must be one of \\['arm64', 'x86_64'\\], got 'amd64'"
    ):
        image_context_from_staging(tmp_path / "app", tmp_path / "i", python="3.12", arch="amd64")
    with pytest.raises(ValueError, match=r"python must be one of .*, got '3\.9'"):
        image_context_from_staging(tmp_path / "app", tmp_path / "i", python="3.9", arch="arm64")
    assert not (tmp_path / "i").exists()
