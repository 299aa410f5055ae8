"""packager.registry_memo: a sqlite registry's answer, kept while the store's file is unchanged.

The store here is a plain sqlite file (the memo reads only its stat); the same memo against a
real MLflow registry, and a build that then never imports MLflow, are in
tests/integration/test_registry_memo.py.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import pytest

from mlflow_lambda.packager import registry_memo as rm
from mlflow_lambda.packager.mlflow_uris import Located

URI = "models:/Forest/latest"
SETTLED_S = 0.05


def write(db: Path, value: int = 1) -> None:
    """A write as MLflow makes one: a row into a page that has room (the size stays)."""
    with sqlite3.connect(db) as con:
        con.execute("create table if not exists t (x)")
        con.execute("insert into t values (?)", (value,))
    con.close()


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rm, "SETTLED_NS", int(SETTLED_S * 1e9))


@pytest.fixture
def store(tmp_path: Path, settled: None) -> str:
    write(tmp_path / "mlflow.db")
    time.sleep(SETTLED_S * 1.2)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def found(tmp_path: Path) -> Located:
    model = tmp_path / "artifacts" / "m-1" / "artifacts"
    model.mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    return Located(str(model), "run1", "Forest", "3", "models:/m-1")


def db_of(store: str) -> Path:
    return Path(store.removeprefix("sqlite:///"))


@pytest.mark.parametrize(
    ("flag", "env", "registry", "expected"),
    [
        (None, None, None, None),  # MLflow's own default: left to MLflow
        ("sqlite:///a.db", None, None, "sqlite:///a.db"),
        (None, "sqlite:///b.db", None, "sqlite:///b.db"),
        ("sqlite:///a.db", "sqlite:///b.db", None, "sqlite:///a.db"),
        ("sqlite:///a.db", None, "sqlite:///a.db", "sqlite:///a.db"),
        ("sqlite:///a.db", None, "sqlite:///other.db", None),  # a registry elsewhere
        ("http://127.0.0.1:5000", None, None, None),
        ("postgresql://u@h/db", None, None, None),
        ("file:///tmp/mlruns", None, None, None),
    ],
)
def test_which_stores_are_remembered(
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    env: str | None,
    registry: str | None,
    expected: str | None,
) -> None:
    """A process that has not imported MLflow: the flag and the environment decide."""
    monkeypatch.delitem(sys.modules, "mlflow", raising=False)
    for name, value in (("MLFLOW_TRACKING_URI", env), ("MLFLOW_REGISTRY_URI", registry)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert rm.store_uri(flag) == expected


def test_where_mlflow_is_imported_its_own_uris_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployments plugin runs inside MLflow's process, where mlflow.set_tracking_uri and
    set_registry_uri override the environment: the memo follows what MLflow would ask."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", "sqlite:///set.db")
    assert mlflow.get_tracking_uri() == "sqlite:///set.db"
    assert rm.store_uri(None) == "sqlite:///set.db"
    assert rm.store_uri("sqlite:///flag.db") == "sqlite:///flag.db"
    monkeypatch.setattr(registry_utils, "_registry_uri", "sqlite:///registry.db")
    assert rm.store_uri(None) is None
    assert rm.store_uri("sqlite:///registry.db") == "sqlite:///registry.db"


def test_an_answer_is_recalled_while_the_store_is_unchanged(
    store: str, found: Located, tmp_path: Path
) -> None:
    cache = tmp_path / "resolved"
    assert rm.recall(URI, store, cache) is None
    assert rm.remember(URI, store, cache, found, rm.snapshot(store))
    assert rm.recall(URI, store, cache) == (found, Path(found.location))
    assert rm.recall("models:/Forest/2", store, cache) is None  # another URI: not answered
    assert rm.recall(URI, f"{store}x", cache) is None  # another store


@pytest.mark.parametrize("sidecar", ["", "-journal", "-wal"])
def test_a_write_to_the_store_or_its_journal_forgets_the_answer(
    store: str, found: Located, tmp_path: Path, sidecar: str
) -> None:
    cache = tmp_path / "resolved"
    size = db_of(store).stat().st_size
    assert rm.remember(URI, store, cache, found, rm.snapshot(store))
    if sidecar:
        Path(f"{db_of(store)}{sidecar}").write_bytes(b"")
    else:
        write(db_of(store), 2)
        assert db_of(store).stat().st_size == size  # only the times show the write
    assert rm.recall(URI, store, cache) is None


def test_a_store_written_while_mlflow_answered_is_not_remembered(
    store: str, found: Located, tmp_path: Path
) -> None:
    cache = tmp_path / "resolved"
    before = rm.snapshot(store)
    write(db_of(store), 2)
    assert not rm.remember(URI, store, cache, found, before)
    assert rm.recall(URI, store, cache) is None


def test_a_write_in_the_tick_of_the_last_one_is_caught_by_the_contents(
    store: str, found: Located, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written just before MLflow answered (a build right after register_model) is
    remembered with its contents' sha256: a second write in the same clock tick leaves the
    stat as it was (simulated: the stat is frozen), and the contents tell."""
    cache = tmp_path / "resolved"
    assert rm.snapshot(store).contents is None  # type: ignore[union-attr]  # settled: stat only
    monkeypatch.setattr(rm, "SETTLED_NS", 10**15)  # every write is "just before"
    write(db_of(store), 2)
    before = rm.snapshot(store)
    assert before is not None and before.contents is not None
    assert rm.remember(URI, store, cache, found, before)
    assert rm.recall(URI, store, cache) == (found, Path(found.location))
    frozen = rm.fingerprint(store)
    monkeypatch.setattr(rm, "fingerprint", lambda tracking: frozen)
    write(db_of(store), 3)
    assert rm.recall(URI, store, cache) is None


@pytest.mark.parametrize(
    ("uri", "location", "source"),
    [
        ("runs:/run1/model", None, None),  # a run's artifacts are listed, not in the database
        (URI, None, "runs:/run1/model"),
        (URI, "s3://bucket/models/m-1/artifacts", None),
        (URI, "mlflow-artifacts:/1/models/m-1/artifacts", None),
        (URI, "relative/artifacts", None),
    ],
)
def test_answers_the_database_alone_does_not_give_are_not_remembered(
    store: str,
    found: Located,
    tmp_path: Path,
    uri: str,
    location: str | None,
    source: str | None,
) -> None:
    other = found._replace(location=location or found.location, source=source or found.source)
    assert not rm.remember(uri, store, tmp_path / "resolved", other, rm.snapshot(store))
    assert not (tmp_path / "resolved").exists()


def test_a_file_uri_location_is_local(store: str, found: Located, tmp_path: Path) -> None:
    as_uri = found._replace(location=Path(found.location).as_uri())
    assert rm.remember(URI, store, tmp_path / "resolved", as_uri, rm.snapshot(store))
    assert rm.recall(URI, store, tmp_path / "resolved") == (as_uri, Path(found.location))


def test_a_model_directory_without_mlmodel_is_not_recalled(
    store: str, found: Located, tmp_path: Path
) -> None:
    cache = tmp_path / "resolved"
    assert rm.remember(URI, store, cache, found, rm.snapshot(store))
    (Path(found.location) / "MLmodel").unlink()
    assert rm.recall(URI, store, cache) is None


def test_a_new_answer_replaces_the_old_one(store: str, found: Located, tmp_path: Path) -> None:
    cache = tmp_path / "resolved"
    assert rm.remember(URI, store, cache, found, rm.snapshot(store))
    write(db_of(store), 2)
    time.sleep(SETTLED_S * 1.2)
    newer = found._replace(version="4")
    assert rm.remember(URI, store, cache, newer, rm.snapshot(store))
    assert rm.recall(URI, store, cache) == (newer, Path(found.location))
    assert [p.suffix for p in cache.iterdir()] == [".json"]


def test_a_corrupt_or_unwritable_cache_costs_only_the_memo(
    store: str, found: Located, tmp_path: Path
) -> None:
    cache = tmp_path / "resolved"
    assert rm.remember(URI, store, cache, found, rm.snapshot(store))
    (entry,) = cache.iterdir()
    entry.write_text("{not json")
    assert rm.recall(URI, store, cache) is None
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert not rm.remember(URI, store, blocked / "resolved", found, rm.snapshot(store))


def test_a_relative_sqlite_path_is_the_working_directorys(
    tmp_path: Path, found: Located, settled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write(tmp_path / name / "mlflow.db")
    time.sleep(SETTLED_S * 1.2)
    store, cache = "sqlite:///mlflow.db", tmp_path / "resolved"
    monkeypatch.chdir(tmp_path / "a")
    assert rm.remember(URI, store, cache, found, rm.snapshot(store))
    assert rm.recall(URI, store, cache) is not None
    monkeypatch.chdir(tmp_path / "b")
    assert rm.recall(URI, store, cache) is None


@pytest.mark.parametrize("store", ["sqlite://", "sqlite:///:memory:", "sqlite:///no/such.db"])
def test_a_store_without_a_file_is_never_remembered(
    store: str, found: Located, tmp_path: Path
) -> None:
    assert rm.snapshot(store) is None
    assert not rm.remember(URI, store, tmp_path / "resolved", found, rm.snapshot(store))
    assert rm.recall(URI, store, tmp_path / "resolved") is None
