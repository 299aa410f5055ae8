"""``packager.preload`` on hand-made trees: which models it preloads, and skops leaving with
what only it required."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow_lambda.handler import BUNDLE_PACKAGE
from mlflow_lambda.packager.platforms import host_arch
from mlflow_lambda.packager.preload import (
    _cache_key,
    _cached,
    _keep,
    drop_loader,
    preload_model,
    wanted,
)


def _dist(root: Path, name: str, requires: list[str], files: list[str], requested: bool) -> None:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(meta) + "\n\nA description.\n")
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x = 1\n")
    record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in record))
    if requested:
        (info / "REQUESTED").write_text("")


def test_skops_goes_with_what_only_it_required(tmp_path: Path) -> None:
    requires = ["numpy>=1", "packaging>=17", "prettytable>=3.9", "rich>=12; extra == 'rich'"]
    _dist(tmp_path, "skops", requires, ["skops/__init__.py"], True)
    _dist(tmp_path, "numpy", [], ["numpy/__init__.py"], True)  # asked for by the plan
    _dist(tmp_path, "packaging", [], ["packaging/__init__.py"], False)
    _dist(tmp_path, "narwhals", ["packaging>=21; extra == 'ibis'"], ["narwhals/__init__.py"], False)
    _dist(tmp_path, "prettytable", ["wcwidth"], ["prettytable/__init__.py"], False)
    _dist(tmp_path, "wcwidth", [], ["wcwidth/__init__.py"], False)
    report = drop_loader(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [
        "narwhals", "narwhals-1.0.dist-info", "numpy", "numpy-1.0.dist-info", "packaging",
        "packaging-1.0.dist-info",
    ]  # fmt: skip
    assert report.kept == {
        "numpy-1.0.dist-info/": "requested directly (REQUESTED, PEP 376)",
        "packaging-1.0.dist-info/": "required by narwhals",
    }
    assert sorted(report.removed["unused-dist"]) == [
        "prettytable-1.0.dist-info/", "prettytable/", "skops-1.0.dist-info/", "skops/",
        "wcwidth-1.0.dist-info/", "wcwidth/",
    ]  # fmt: skip
    assert drop_loader(tmp_path).total_saved == 0  # nothing left to drop


def _config(**overrides: Any) -> Any:
    return {"flavor": "sklearn", "serialization_format": "skops", "model_file": "model.skops",
            "files": {"model.skops": "0" * 64}, "skops_trusted_types": [], **overrides}  # fmt: skip


def test_only_skops_sklearn_models_are_preloaded_and_a_skip_says_why(tmp_path: Path) -> None:
    assert wanted(_config())
    assert not wanted(_config(serialization_format="cloudpickle"))
    assert not wanted(_config(flavor="lightgbm"))
    kw: dict[str, Any] = {"roots": (tmp_path, tmp_path), "dest": tmp_path / "out", "python": "3.12"}
    here = host_arch()
    other = "arm64" if here == "x86_64" else "x86_64"
    arm = preload_model(_config(), tmp_path, interpreter=Path("/x"), arch=other, checked=True,
                        **kw)  # fmt: skip
    assert not arm.preloaded and arm.config == _config() and arm.model_dir == tmp_path
    assert arm.message.startswith(
        f"kept skops: the model is not preloaded as a pickle because this {here} host cannot "
        f"run the {other} bundle's Python"
    )
    none = preload_model(_config(), tmp_path, interpreter=None, arch=here, checked=True, **kw)
    assert "there is no Python 3.12 on this host" in none.message
    off = preload_model(_config(), tmp_path, interpreter=None, arch=here, checked=True,
                        enabled=False, **kw)  # fmt: skip
    assert off.message == "kept skops: preloading the model as a pickle was turned off"
    assert not (tmp_path / "out").exists()


def test_the_cached_pickle_is_keyed_by_everything_it_depends_on(tmp_path: Path) -> None:
    loader = tmp_path / BUNDLE_PACKAGE / "handler" / "flavors" / "sklearn.py"
    loader.parent.mkdir(parents=True)
    loader.write_text("def read_estimator(): ...\n")
    python = tmp_path / "python3.12"
    python.write_bytes(b"an interpreter")
    config: Any = {
        "model_file": "model.skops",
        "files": {"model.skops": "a" * 64},
        "skops_trusted_types": ["sklearn.tree._tree.Tree"],
    }
    installed = {"numpy": "2.4.6", "scikit-learn": "1.9.1"}

    def key() -> str:
        return _cache_key(config, tmp_path, python, installed)

    seen = {key()}
    assert key() in seen  # the same inputs, the same key
    config["files"] = {"model.skops": "b" * 64}  # another model file
    seen.add(key())
    config["skops_trusted_types"] = []
    seen.add(key())
    installed["scikit-learn"] = "1.9.2"  # the bundle's own scikit-learn
    seen.add(key())
    loader.write_text("def read_estimator(): return 1\n")  # the runtime's loader
    seen.add(key())
    python.write_bytes(b"another interpreter")  # a reinstalled Python at the same path
    seen.add(key())
    assert len(seen) == 6


def test_the_pickle_cache_round_trips_and_never_fails_a_build(tmp_path: Path) -> None:
    pickled = tmp_path / "model.preloaded.pkl"
    pickled.write_bytes(b"\x80\x05pickle")
    facts: dict[str, object] = {"python_version": "3.12.1", "library_version": "1.9.1"}
    entry = tmp_path / "cache" / "key"
    assert _cached(entry, tmp_path / "copy.pkl") is None  # nothing kept yet
    _keep(entry, pickled, facts)
    assert _cached(entry, tmp_path / "copy.pkl") == facts
    assert (tmp_path / "copy.pkl").read_bytes() == pickled.read_bytes()
    _keep(entry, pickled, facts)  # published already: left as it is
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    _keep(blocked / "key", pickled, facts)  # cannot be written: no error, nothing kept
    assert _cached(blocked / "key", tmp_path / "other.pkl") is None
