"""Build the bundles the benchmarks run, and lay one out as a Lambda task root.

Bundles are built with the real pipeline (``packager.build.build``), the default options
first (or the opt-in size flags the caller asks for: ``--trim``, ``--strip``). When that does
not fit Lambda's 250 MB zip limit, the build is repeated with ``pyc-only`` bytecode (sources
removed, 35 MB smaller), and the results say so.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_lambda.infra.invoke import read_function_config, unpack_bundle
from mlflow_lambda.packager import bytecode
from mlflow_lambda.packager.build import BuildOptions, build
from mlflow_lambda.packager.errors import BundleTooLargeError


@dataclass(frozen=True)
class Bundle:
    """A finished build and how it was made."""

    outdir: Path
    arch: str
    bytecode_mode: str
    note: str | None  # why the default options were not used, if they were not
    manifest: dict[str, Any]
    build_s: float
    trim: bool = False
    strip: bool = False

    @property
    def flags(self) -> str:
        """The CLI's size flags this bundle was built with, or ``default``."""
        return " ".join(f for f, on in (("--trim", self.trim), ("--strip", self.strip)) if on) or (
            "default"
        )

    @property
    def memory_mb(self) -> int:
        """The ``MemorySize`` the build wrote into template.yaml."""
        return read_function_config(self.outdir).memory_mb


def build_bundle(
    model_uri: str,
    outdir: Path,
    *,
    arch: str = "x86_64",
    trim: bool = False,
    strip: bool = False,
    preload: bool = True,
) -> Bundle:
    """Package ``model_uri`` for ``arch`` into ``outdir`` (replacing a previous build).

    ``trim`` and ``strip`` are ``mlflow-lambda package``'s ``--trim`` and ``--strip``;
    ``preload=False`` keeps a skops model as skops (``BuildOptions.preload``), to compare.
    """
    import time

    def quiet(message: str) -> None:
        pass

    note = None
    mode = bytecode.DEFAULT_MODE
    started = time.perf_counter()
    try:
        result = build(
            BuildOptions(model_uri, outdir, arch=arch, trim=trim, strip=strip, preload=preload),
            progress=quiet,
            warn=quiet,
        )
    except BundleTooLargeError as exc:
        note = f"the default build failed: {str(exc).splitlines()[0]}"
        mode = "pyc-only"
        started = time.perf_counter()
        result = build(
            BuildOptions(
                model_uri,
                outdir,
                arch=arch,
                trim=trim,
                strip=strip,
                bytecode_mode=mode,
                preload=preload,
            ),
            progress=quiet,
            warn=quiet,
        )
    elapsed = time.perf_counter() - started
    return Bundle(result.outdir, arch, mode, note, result.manifest, elapsed, trim, strip)


def task_root(bundle: Bundle, dest: Path) -> Path:
    """Unpack ``bundle`` into ``dest`` as Lambda's read-only ``/var/task``; return ``dest``."""
    dest.mkdir(parents=True)
    unpack_bundle(bundle.outdir, dest)
    # Lambda mounts /var/task read-only; the runtime also runs with -B, so no .pyc is written.
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return dest


def remove_task_root(root: Path) -> None:
    """Give directories their write bit back and delete the tree."""
    import shutil

    if root.exists():
        for path in [root, *root.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(root, ignore_errors=True)
