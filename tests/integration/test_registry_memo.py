"""A rebuild from a sqlite registry uses the registry's earlier answer while the store is
unchanged, without importing MLflow, and sees every write: a new version, a moved alias.

A store of its own (a real MLflow sqlite registry in a temp dir), so that no other test's
writes interleave; its versions point at small model directories (resolving reads only
``MLmodel``'s presence). The bundle built from a remembered answer is byte-identical to the
one built through MLflow (the README forest, registered in this store too).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.packager import registry_memo
from mlflow_lambda.packager.build import BuildOptions, build
from mlflow_lambda.packager.resolve import ResolvedModel, resolve_model
from tests.mlflow_models import LoggedModel

pytestmark = pytest.mark.integration

SETTLED_S = 0.05


@dataclass
class Registry:
    store: str
    client: Any
    root: Path

    def add_version(self) -> str:
        """A new version of "Memo" (its MLmodel names it); its number."""
        number = 1 + len(self.client.search_model_versions("name = 'Memo'"))
        model = self.root / f"model-{number}"
        model.mkdir()
        (model / "MLmodel").write_text(f"flavors: {{}}\nversion: {number}\n")
        return str(self.client.create_model_version("Memo", str(model)).version)

    def resolve(self, uri: str, dest: Path) -> ResolvedModel:
        time.sleep(SETTLED_S * 1.2)  # past the tick of the last write (registry_memo)
        return resolve_model(uri, dest, tracking_uri=self.store, memo=self.root / "resolved")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    from mlflow import MlflowClient

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry_memo, "SETTLED_NS", int(SETTLED_S * 1e9))
        root = tmp_path_factory.mktemp("memo")
        store = f"sqlite:///{root / 'mlflow.db'}"
        client = MlflowClient(store)
        client.create_registered_model("Memo")
        reg = Registry(store, client, root)
        reg.add_version()
        yield reg


def resolve_in_a_fresh_process(reg: Registry, uri: str, dest: Path) -> dict[str, Any]:
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from mlflow_lambda.packager.resolve import resolve_model\n"
        "r = resolve_model(sys.argv[1], Path(sys.argv[2]), tracking_uri=sys.argv[3],\n"
        "                  memo=Path(sys.argv[4]))\n"
        "print(json.dumps({'version': r.version, 'remembered': r.remembered,\n"
        "                  'dir': str(r.local_dir), 'mlflow': 'mlflow' in sys.modules}))\n"
    )
    argv = [sys.executable, "-c", script, uri, str(dest), reg.store, str(reg.root / "resolved")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_a_second_resolve_never_imports_mlflow(registry: Registry, tmp_path: Path) -> None:
    first = registry.resolve("models:/Memo/1", tmp_path / "a")
    assert (first.version, first.remembered) == ("1", False)
    again = resolve_in_a_fresh_process(registry, "models:/Memo/1", tmp_path / "b")
    assert again == {
        "version": "1",
        "remembered": True,
        "dir": str(registry.root / "model-1"),  # used in place, like a local path
        "mlflow": False,
    }
    assert not (tmp_path / "b").exists()  # nothing downloaded


def test_a_new_version_is_seen(registry: Registry, tmp_path: Path) -> None:
    registry.resolve("models:/Memo/latest", tmp_path / "a")
    assert registry.resolve("models:/Memo/latest", tmp_path / "b").remembered
    newest = registry.add_version()
    after = registry.resolve("models:/Memo/latest", tmp_path / "c")
    assert (after.version, after.remembered) == (newest, False)
    assert (after.local_dir / "MLmodel").read_text().endswith(f"version: {after.version}\n")
    repeat = registry.resolve("models:/Memo/latest", tmp_path / "d")
    assert (repeat.version, repeat.remembered) == (after.version, True)


def test_a_moved_alias_is_seen(registry: Registry, tmp_path: Path) -> None:
    registry.client.set_registered_model_alias("Memo", "champion", "1")
    assert registry.resolve("models:/Memo@champion", tmp_path / "a").version == "1"
    assert registry.resolve("models:/Memo@champion", tmp_path / "b").remembered
    target = registry.add_version()
    registry.client.set_registered_model_alias("Memo", "champion", target)
    moved = registry.resolve("models:/Memo@champion", tmp_path / "c")
    assert (moved.version, moved.remembered) == (target, False)


def test_a_bundle_from_a_remembered_answer_is_the_same_bundle(
    registry: Registry, forest: LoggedModel, cache_dir: Path, tmp_path: Path
) -> None:
    """Built once through MLflow, once from the memo (model files used in place, not copied)."""
    version = registry.client.create_model_version("Memo", str(forest.local_dir)).version
    time.sleep(SETTLED_S * 1.2)
    shas, logs = [], []
    for name in ("through-mlflow", "remembered"):
        lines: list[str] = []
        opts = BuildOptions(
            model_uri=f"models:/Memo/{version}",
            outdir=tmp_path / name,
            cache_dir=cache_dir,
            tracking_uri=registry.store,
            check_import=False,
        )
        result = build(opts, progress=lines.append, warn=lines.append)
        shas.append(result.manifest["artifact_sha256"])
        logs.append("\n".join(lines))
    earlier = f"Memo version {version} (the registry's answer to an earlier build"
    assert earlier not in logs[0]
    assert earlier in logs[1], logs[1]
    assert shas[0] == shas[1]
