"""Dependencies for a bundle: installed, pruned and compiled once, then reused.

Installing wheels, pruning them and compiling their bytecode is most of a build's time
and depends only on the plan (requirements, Python, architecture) and a few options, not
on the model. The finished tree is kept under ``~/.cache/mlflow-lambda/deps/<key>/`` and
hard-linked into the next build that has the same key, so a rebuild of the same model (or
another model with the same pins) skips straight to assembling.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlflow_lambda import handler
from mlflow_lambda.packager import bytecode
from mlflow_lambda.packager.cachedirs import cache_root
from mlflow_lambda.packager.install import install_requirements, installed_distributions
from mlflow_lambda.packager.plan import BundlePlan
from mlflow_lambda.packager.prune import prune_tree

Progress = Callable[[str], None]
MB = 1024 * 1024
_DONE = ".mlflow-lambda-deps.json"


@dataclass(frozen=True)
class DepsOptions:
    strip: bool = False
    bytecode_mode: str = bytecode.DEFAULT_MODE
    cache_root: Path | None = None  # default: ~/.cache/mlflow-lambda ($XDG_CACHE_HOME)


# The modules that decide what a prepared tree holds: a change to any of them (a new prune
# rule, say) must not reuse trees prepared by the old code, whatever the version number says.
_SHAPING_MODULES = ("install.py", "platforms.py", "prune.py", "prune_unused.py", "bytecode.py")


def _code_fingerprint() -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _SHAPING_MODULES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_key(plan: BundlePlan, opts: DepsOptions, interpreter: Path | None) -> str:
    """What the finished tree depends on; any change gives another cache entry."""
    facts = [
        handler.__version__,
        _code_fingerprint(),
        plan.python_version,
        plan.arch,
        sorted(plan.requirements),
        opts.strip,
        opts.bytecode_mode if interpreter else "no-bytecode",
    ]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:24]


def link_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` with hard links where the file system allows, else copies."""

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link, symlinks=True, dirs_exist_ok=True)


def held_distributions(root: Path) -> dict[str, str]:
    """Canonical name -> version of every distribution whose ``*.dist-info`` ``root`` holds.

    Read from the tree itself, after pruning, so the manifest lists exactly what the bundle
    holds (``unused-dist`` removes whole distributions, prettytable and wcwidth say).
    """
    return {name: dist.version for name, dist in sorted(installed_distributions(root).items())}


def prepare_dependencies(
    plan: BundlePlan,
    dest: Path,
    opts: DepsOptions,
    *,
    interpreter: Path | None,
    progress: Progress,
) -> dict[str, str]:
    """Fill ``dest`` with the plan's installed, pruned, compiled packages; return name->version.

    ``interpreter`` is a Python of the plan's version used for bytecode (None: sources only).
    """
    root = opts.cache_root or cache_root()
    entry = root / "deps" / cache_key(plan, opts, interpreter)
    entry.parent.mkdir(parents=True, exist_ok=True)
    # Two builds of the same pins at once (two terminals, CI jobs, test workers) prepare the
    # tree once: the second waits here, then links the first one's finished entry.
    with _exclusive(entry.parent / f".{entry.name}.lock"):
        return _prepare(plan, dest, opts, interpreter, root, entry, progress)


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock`` (released by the kernel if the process dies)."""
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare(
    plan: BundlePlan,
    dest: Path,
    opts: DepsOptions,
    interpreter: Path | None,
    root: Path,
    entry: Path,
    progress: Progress,
) -> dict[str, str]:
    marker = entry / _DONE
    if marker.is_file():
        progress(f"reusing prepared dependencies from {entry}")
        link_tree(entry, dest)
        (dest / _DONE).unlink()
        return held_distributions(dest)

    wheels = root / "wheels" / f"{plan.python_version}-{plan.arch}"
    install_requirements(plan, dest, cache_dir=wheels, progress=progress)
    report = prune_tree(dest, strip=opts.strip, arch=plan.arch)
    rules = ", ".join(sorted(report.bytes_saved))
    progress(f"pruned {report.total_saved / MB:.1f} MB ({rules or 'nothing to prune'})")
    if interpreter is not None:
        progress(f"compiling bytecode for Python {plan.python_version}")
        bytecode.compile_tree(dest, interpreter, mode=opts.bytecode_mode)

    installed = held_distributions(dest)  # after pruning: what the bundle really holds
    partial = entry.parent / f".{entry.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    link_tree(dest, partial)
    (partial / _DONE).write_text(json.dumps(installed, indent=1, sort_keys=True))
    shutil.rmtree(entry, ignore_errors=True)
    partial.rename(entry)  # published whole, or not at all
    return installed
