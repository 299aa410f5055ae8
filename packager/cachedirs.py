"""Where builds keep what they learn: the cache root, wheel caches, remembered runtimes.

``~/.cache/mlflow-lambda`` (or ``$XDG_CACHE_HOME/mlflow-lambda``) holds ``wheels/<py>-<arch>``
(downloaded wheels), ``deps/`` (prepared dependency trees, :mod:`packager.deps`), ``deflated/``
(compressed zip entries, :mod:`packager.assemble`), ``preloaded/`` (pickles of skops models,
:mod:`packager.preload`), ``resolved/`` (a sqlite registry's answers,
:mod:`packager.registry_memo`), ``serve/`` (bundles ``serve -m`` builds) and ``runtimes/``: for
a set of pins that needs a newer Lambda runtime than the training Python's, which one
(:func:`remembered_runtime`), so the next build does not ask pip again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mlflow_lambda.packager.plan import BundlePlan


def cache_root() -> Path:
    """``~/.cache/mlflow-lambda`` (``$XDG_CACHE_HOME`` if set): wheels/, deps/, serve/."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlflow-lambda"


def default_cache_dir(python_version: str, arch: str) -> Path:
    """``<cache_root>/wheels/<py>-<arch>``."""
    return cache_root() / "wheels" / f"{python_version}-{arch}"


def _runtime_memo(plan: BundlePlan, root: Path) -> Path:
    facts = [plan.python_version, plan.arch, sorted(plan.requirements)]
    key = hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:24]
    return root / "runtimes" / f"{key}.json"


def remembered_runtime(plan: BundlePlan, root: Path | None = None) -> tuple[str, str] | None:
    """``(python, why)`` if an earlier build found ``plan``'s pins need that newer runtime.

    Finding out costs a failed offline install, a failed download and a ``pip index`` call
    (~4 s, and the network), the same answer every time for the same pins on the same target.
    """
    try:
        memo = json.loads(_runtime_memo(plan, root or cache_root()).read_text())
        return str(memo["python"]), str(memo["why"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` aside, then rename it into place: builds running at once
    (pytest-xdist, two terminals) never read half a cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(data)
    os.replace(partial, path)


def remember_runtime(plan: BundlePlan, python: str, why: str, root: Path | None = None) -> None:
    """Record that ``plan``'s pins need ``python`` (see :func:`remembered_runtime`)."""
    memo = _runtime_memo(plan, root or cache_root())
    write_whole(memo, json.dumps({"python": python, "why": why}).encode())
