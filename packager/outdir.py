"""OUTDIR: what a build may replace, and the swap that puts a finished build there.

A build is staged next to OUTDIR and moved in only when every step passed, so a failed build
never leaves a bundle that looks good; a directory that holds something other than a previous
build is refused rather than overwritten.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlflow_lambda.packager.errors import PackagingError

# What a build writes into OUTDIR; a rebuild replaces these and keeps everything else.
BUILD_OUTPUTS = frozenset(
    {"bundle.zip", "image", "manifest.json", "model.json", "template.yaml", "events"}
)


def prepare_outdir(outdir: Path) -> None:
    """Refuse to replace a directory that is not a previous build's output."""
    if not outdir.exists():
        return
    if not outdir.is_dir():
        raise PackagingError(f"output {str(outdir)!r} exists and is not a directory")
    if any(outdir.iterdir()) and not (outdir / "manifest.json").is_file():
        raise PackagingError(
            f"output directory {str(outdir)!r} is not empty and holds no previous build "
            f"(no manifest.json); choose another -o or empty it"
        )


def publish(staged: Path, outdir: Path) -> None:
    """Swap the finished build into ``outdir`` (renames on the same file system).

    What the previous build wrote is replaced; anything else in ``outdir`` is kept, such
    as the ``samconfig.toml`` and ``.aws-sam/`` that ``sam deploy --guided`` leaves there.
    """
    old = None
    if outdir.exists():
        old = outdir.with_name(f".{outdir.name}.old-{staged.name}")
        outdir.rename(old)
        produced = {p.name for p in staged.iterdir()}
        for entry in sorted(old.iterdir()):
            if entry.name not in produced and entry.name not in BUILD_OUTPUTS:
                entry.rename(staged / entry.name)
    staged.rename(outdir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
