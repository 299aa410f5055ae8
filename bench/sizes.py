"""Bundle size: our zip per architecture against a naive ``pip install -t`` of the same packages.

The naive tree is what a hand-made Lambda zip usually is: ``pip install --target`` of exactly
the distributions (and versions) our manifest lists, for the same platform and Python, with
pip's defaults (it also compiles ``.pyc`` with the *host* Python, docs/findings.md), zipped with the
same deflate level 9 as ours. Both are grouped per package by ``packager.sizes.size_report``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from bench.bundles import Bundle
from mlflow_lambda.infra.invoke import unpack_bundle
from mlflow_lambda.packager.cachedirs import default_cache_dir
from mlflow_lambda.packager.install import pip_target_flags
from mlflow_lambda.packager.platforms import Target
from mlflow_lambda.packager.sizes import SizeReport, size_report

MB = 1024 * 1024


def _report(report: SizeReport) -> dict[str, Any]:
    return {
        "unzipped_bytes": report.unzipped,
        "zipped_bytes": report.zipped,
        "packages": {
            row.name: {
                "unzipped_bytes": row.unzipped,
                "zipped_bytes": row.zipped,
                "files": row.files,
            }
            for row in report.rows
        },
    }


def bundle_sizes(bundle: Bundle) -> dict[str, Any]:
    """Per-package sizes of ``bundle``'s zip, unzipped and zipped."""
    zip_path = bundle.outdir / "bundle.zip"
    with tempfile.TemporaryDirectory(prefix="bench-size-") as tmp:
        unpack_bundle(bundle.outdir, Path(tmp))
        return _report(size_report(Path(tmp), zip_path))


def _zip_tree(root: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                zf.write(path, path.relative_to(root).as_posix())


def naive_sizes(bundle: Bundle) -> dict[str, Any]:
    """``pip install -t`` the bundle's distributions for its target; sizes as in ours."""
    python, arch = str(bundle.manifest["python_version"]), bundle.arch
    pins = [f"{name}=={version}" for name, version in bundle.manifest["distributions"].items()]
    wheels = default_cache_dir(python, arch)  # filled by our build: no download needed
    with tempfile.TemporaryDirectory(prefix="bench-naive-") as tmp:
        target = Path(tmp) / "target"
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
                "--no-deps", "--find-links", str(wheels),
                *pip_target_flags(Target(python, arch)), *pins]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"naive pip install failed:\n{done.stderr[-2000:]}")
        zip_path = Path(tmp) / "naive.zip"
        _zip_tree(target, zip_path)
        result = _report(size_report(target, zip_path))
    result["command"] = (
        "pip install --target DIR --no-deps "
        + " ".join(pip_target_flags(Target(python, arch)))
        + " <the bundle's distributions, pinned>"
    )
    return result


def top_rows(sizes: dict[str, Any], n: int = 8) -> list[tuple[str, int, int | None]]:
    """The ``n`` largest packages as (name, unzipped, zipped), then the rest as ``other``."""
    rows = sorted(sizes["packages"].items(), key=lambda item: -int(item[1]["unzipped_bytes"]))
    head = [(name, int(r["unzipped_bytes"]), r["zipped_bytes"]) for name, r in rows[:n]]
    rest = rows[n:]
    if rest:
        zipped = [r["zipped_bytes"] for _, r in rest]
        head.append((
            f"other ({len(rest)})",
            sum(int(r["unzipped_bytes"]) for _, r in rest),
            None if None in zipped else sum(zipped),
        ))  # fmt: skip
    return head
