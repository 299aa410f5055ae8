"""Remember a sqlite registry's answer to a ``models:/`` URI while the store's file is unchanged.

Resolving ``models:/MyRandomForest/latest`` costs a warm rebuild most of its time: importing
MLflow and its SQLAlchemy store (5.6 s of the README example's 10.4 s rebuild, measured on
2026-12-02), for an answer (which version, where its files are) that only the store's rows
decide. A sqlite store is one file, plus the ``-journal`` or ``-wal`` file SQLite writes beside
it, and MLflow only reads them to resolve (checked: the file's stat is the same after a
resolve). So while the stat of all three (inode, size, modification and change times) is what
it was when MLflow answered, the answer is the same: the build uses it and never imports MLflow.
Registering a version, moving an alias or changing a stage writes the file, and the next build
asks MLflow again.

Only where that holds is anything remembered: a ``models:/`` URI, a ``sqlite:`` tracking URI
named by ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` with no other registry URI, and a model
version whose files MLflow found from the database alone, at a local absolute path. The model's
files are read afresh by every build (the bundle hashes them), only the registry's answer is
reused. Entries live in ``<cache root>/resolved/``, one per URI and store, each replaced by
the next answer; writing one is best effort.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit
from urllib.request import url2pathname

from mlflow_lambda.packager.cachedirs import write_whole
from mlflow_lambda.packager.mlflow_uris import Located, sqlite_path

_FORMAT = 2
_SIDECARS = ("", "-journal", "-wal")  # the database and what SQLite writes beside it
# File times come from the kernel's coarse clock (a tick, up to 10 ms), so a second write in
# the tick of the last one leaves the stat as it was. For a store written less than this long
# before MLflow was asked, the stat alone is not trusted: its contents' sha256 is kept too, and
# checked at each recall (a build right after `mlflow.register_model`, as in `make demo`).
SETTLED_NS = 2_000_000_000


class Snapshot(NamedTuple):
    """The store's :func:`fingerprint` and, for a store written just before
    (:data:`SETTLED_NS`), the sha256 of its files' contents."""

    facts: list[object]
    contents: str | None = None


def store_uri(tracking_uri: str | None) -> str | None:
    """The sqlite store an ``MlflowClient(tracking_uri)`` of this process would use for both
    tracking and registry, or None (then nothing is remembered or recalled).

    In a process that has not imported MLflow, that is ``tracking_uri`` or
    ``MLFLOW_TRACKING_URI``, with no other ``MLFLOW_REGISTRY_URI``; MLflow's own default (neither
    set) is left to MLflow. Where MLflow is imported (the deployments plugin, a notebook),
    ``mlflow.set_tracking_uri`` and ``set_registry_uri`` may have changed both, so MLflow's own
    resolution answers.
    """
    if "mlflow" in sys.modules:
        try:
            from mlflow.tracking._model_registry.utils import _resolve_registry_uri
            from mlflow.tracking._tracking_service.utils import _resolve_tracking_uri

            tracking = _resolve_tracking_uri(tracking_uri)  # type: ignore[no-untyped-call]
            registry = _resolve_registry_uri(None, tracking)
        except Exception:  # another MLflow than the one this was written against: no memo
            return None
    else:
        tracking = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        registry = os.environ.get("MLFLOW_REGISTRY_URI") or tracking
    if not tracking or urlsplit(tracking).scheme.lower() != "sqlite":
        return None
    return tracking if registry == tracking else None


def _database(tracking: str) -> Path | None:
    db = sqlite_path(tracking)
    if not db or db == ":memory:":
        return None
    return Path(db).absolute()  # a relative sqlite path is relative to the working directory


def fingerprint(tracking: str) -> list[object] | None:
    """The stat of the store's database and its journal files, or None if there is none."""
    db = _database(tracking)
    if db is None:
        return None
    facts: list[object] = [str(db)]
    for suffix in _SIDECARS:
        try:
            st = os.stat(f"{db}{suffix}")
        except FileNotFoundError:
            facts.append(None)
            continue
        except OSError:
            return None
        facts.append([st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return facts if facts[1] is not None else None


def snapshot(tracking: str) -> Snapshot | None:
    """:func:`fingerprint` now, to take before MLflow is asked (see :func:`remember`); None
    when there is no store, or it was written just before and cannot be read."""
    taken_ns = time.time_ns()
    facts = fingerprint(tracking)
    if facts is None:
        return None
    stats = [f for f in facts[1:] if isinstance(f, list)]
    if taken_ns - max(max(int(st[3]), int(st[4])) for st in stats) >= SETTLED_NS:
        return Snapshot(facts)
    contents = _contents(tracking)
    return None if contents is None else Snapshot(facts, contents)


def _contents(tracking: str) -> str | None:
    """sha256 of the database and its journal files, as they are now (None: unreadable)."""
    db = _database(tracking)
    digest = hashlib.sha256()
    try:
        for suffix in _SIDECARS:
            try:
                with open(f"{db}{suffix}", "rb") as f:
                    digest.update(f"{suffix}:{os.fstat(f.fileno()).st_size}:".encode())
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
            except FileNotFoundError:
                digest.update(f"{suffix}:absent:".encode())
    except OSError:
        return None
    return digest.hexdigest()


def _sources_sha() -> str:
    """This module's and the resolvers' sources: a changed resolver forgets old answers."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("registry_memo.py", "mlflow_uris.py", "resolve.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def _entry(cache: Path, uri: str, tracking: str) -> Path:
    """One file per URI and store: a new answer replaces the old one."""
    try:
        mlflow_version = metadata.version("mlflow")
    except metadata.PackageNotFoundError:
        mlflow_version = None
    parts = [_FORMAT, uri, tracking, mlflow_version, sys.version, _sources_sha()]
    return cache / f"{hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]}.json"


def local_path(location: str) -> Path | None:
    """``location`` as an absolute local directory, or None when it is anywhere else."""
    parts = urlsplit(location)
    if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
        path = Path(url2pathname(parts.path))
    elif parts.scheme == "" or (len(parts.scheme) == 1 and location[1:2] == ":"):
        path = Path(location)
    else:
        return None
    return path if path.is_absolute() else None


def recall(uri: str, tracking: str, cache: Path) -> tuple[Located, Path] | None:
    """The answer remembered for ``uri`` from this very state of the store, if any, with the
    model's local directory (which must still hold an ``MLmodel``)."""
    facts = fingerprint(tracking)
    if facts is None:
        return None
    try:
        entry = json.loads(_entry(cache, uri, tracking).read_text())
        if entry["store"] != json.loads(json.dumps(facts)):
            return None  # the store has been written since
        if entry["contents"] is not None and entry["contents"] != _contents(tracking):
            return None  # written in the same clock tick as the write before MLflow answered
        found = Located(**entry["found"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    path = local_path(found.location)
    return (found, path) if path is not None and (path / "MLmodel").is_file() else None


def remember(uri: str, tracking: str, cache: Path, found: Located, before: Snapshot | None) -> bool:
    """Keep ``found`` for ``uri`` if the store was the same before and after MLflow answered.

    ``before`` is :func:`snapshot` taken before MLflow was asked. Nothing is remembered of a
    store written while MLflow answered (the answer may predate the write); for one written
    just before, its contents' sha256 from ``before`` goes with the answer (:data:`SETTLED_NS`).
    Best effort: a cache that cannot be written costs the next build MLflow's import, never
    this build.
    """
    if before is None or fingerprint(tracking) != before.facts:
        return False
    if urlsplit(uri).scheme.lower() != "models" or (found.source or "").startswith("runs:/"):
        return False  # a run's artifacts are listed from the artifact store, not the database
    if local_path(found.location) is None:
        return False
    entry = {"store": before.facts, "contents": before.contents, "found": found._asdict()}
    try:
        write_whole(_entry(cache, uri, tracking), json.dumps(entry).encode())
    except OSError:
        return False
    return True
