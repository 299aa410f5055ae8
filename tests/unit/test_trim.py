"""packager.trim (file -> module, what a trace keeps) and the handler's import guard."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlflow_lambda.handler.trimmed import TrimmedModules, install
from mlflow_lambda.packager.errors import BundleCheckError
from mlflow_lambda.packager.events import scoring_body
from mlflow_lambda.packager.importcheck import ModelFacts
from mlflow_lambda.packager.trim import (
    Trace,
    TrimReport,
    module_of,
    probe_events,
    trim_tree,
    write_trimmed,
)

SO = ".cpython-312-x86_64-linux-gnu.so"


@pytest.mark.parametrize(
    ("rel", "module"),
    [
        ("a/b.py", "a.b"),
        ("a/b.pyc", "a.b"),
        ("a/__init__.py", "a"),
        ("a/__init__.pyc", "a"),
        ("a/__pycache__/b.cpython-312.pyc", "a.b"),
        ("a/__pycache__/__init__.cpython-312.pyc", "a"),
        (f"a/_core{SO}", "a._core"),
        ("a/_core.cpython-312-aarch64-linux-gnu.so", "a._core"),
        ("a/_speedups.abi3.so", "a._speedups"),
        ("a/_plain.so", "a._plain"),
        ("six.py", "six"),
        ("a/libgomp.so", None),  # a shared library, loaded by another object
        ("a/libfoo.so.1", None),
        ("a/data.json", None),
        ("a/__pycache__/notes.txt", None),
        ("a/my-script.py", None),  # not importable by that name
        ("__init__.py", None),
    ],
)
def test_module_of(rel: str, module: str | None) -> None:
    assert module_of(rel) == module


def _tree(root: Path, files: list[str]) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * 10)
    return root


FILES = [
    "pkg/__init__.pyc",
    "pkg/used.pyc",
    "pkg/unused.pyc",
    f"pkg/_used_ext{SO}",
    f"pkg/_unused_ext{SO}",
    f"pkg/_ctypes_loaded{SO}",  # loaded by path, never imported by name
    "pkg/table.csv",  # data of an imported package
    "pkg/assets/style.css",  # a plain directory inside an imported package
    "pkg/sub/__init__.pyc",
    "pkg/sub/mod.pyc",
    "pkg/sub/data.bin",  # data of a package never imported
    "pkg/libhelper.so",  # a shared library: data of pkg
    "gone/__init__.py",
    "gone/__pycache__/__init__.cpython-312.pyc",
    "gone/x.py",
    "gone/__pycache__/x.cpython-312.pyc",
    "lonely.py",
    "kept_top.py",
    "top-level-notes.txt",
    "pkg.libs/libopenblas-1234.so",
    "pkg-1.0.dist-info/RECORD",
    "mlflow_lambda/handler/__init__.py",
    "model/model.skops",
    "model.json",
]


def test_trim_tree_keeps_what_the_trace_used_and_nothing_else(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root", FILES)
    trace = Trace(
        modules=frozenset({"pkg", "pkg.used", "pkg._used_ext", "kept_top", "json"}),
        libraries=frozenset({str((root / f"pkg/_ctypes_loaded{SO}").resolve())}),
    )
    report = trim_tree(root, trace)
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert left == sorted(
        [
            "pkg/__init__.pyc",
            "pkg/used.pyc",
            f"pkg/_used_ext{SO}",
            f"pkg/_ctypes_loaded{SO}",
            "pkg/table.csv",
            "pkg/assets/style.css",
            "pkg/libhelper.so",
            "kept_top.py",
            "top-level-notes.txt",
            "pkg.libs/libopenblas-1234.so",
            "pkg-1.0.dist-info/RECORD",
            "mlflow_lambda/handler/__init__.py",
            "model/model.skops",
            "model.json",
        ]
    )
    assert report.removed_modules == [
        "gone", "gone.x", "lonely", "pkg._unused_ext", "pkg.sub", "pkg.sub.mod", "pkg.unused",
    ]  # fmt: skip
    assert report.bytes_saved == 10 * (len(FILES) - len(left))
    assert not (root / "gone").exists() and not (root / "pkg" / "sub").exists()


def test_a_trace_of_a_twin_tree_keeps_its_loaded_extensions_by_module_name(tmp_path: Path) -> None:
    """An arm64 bundle trimmed with the trace of its x86_64 twin: names, not paths, match."""
    twin = _tree(tmp_path / "twin", ["pkg/__init__.pyc", f"pkg/_loaded{SO}"])
    arm = "cpython-312-aarch64-linux-gnu.so"
    root = _tree(tmp_path / "root", ["pkg/__init__.pyc", f"pkg/_loaded.{arm}", f"pkg/_other.{arm}"])
    trace = Trace(frozenset({"pkg"}), frozenset({str((twin / f"pkg/_loaded{SO}").resolve())}))
    report = trim_tree(root, trace, traced_root=twin)
    assert report.removed_modules == ["pkg._other"]
    assert (root / f"pkg/_loaded.{arm}").is_file()


def test_probe_events_cover_every_format_and_the_error_paths() -> None:
    example = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, None]]}}
    events = probe_events(example)
    bodies = [e.get("body") for e in events if "requestContext" in e]
    assert json.loads(bodies[0]) == example
    assert json.loads(bodies[1]) == {"dataframe_records": [{"a": 1, "b": 2.5}, {"a": 3, "b": None}]}
    assert bodies[4] == "a,b\n1,2.5\n3,\n"
    paths = [e.get("rawPath") or e.get("path") for e in events if "requestContext" in e]
    assert {"/ping", "/health", "/version", "/nowhere"} <= set(paths)
    assert events[6] == example  # a direct invocation: the body itself


def test_probe_events_need_a_request() -> None:
    with pytest.raises(BundleCheckError, match="needs a request to trace") as info:
        probe_events(None)
    assert "no input example, no signature and no fitted width" in str(info.value)


def test_probe_events_from_a_fitted_width_cover_every_format() -> None:
    # the user story's model: no example, no signature, n_features_in_ = 4
    body = scoring_body({"input_example": None, "signature": {"inputs": None}}, ModelFacts(4))
    events = probe_events(body)
    bodies = [e.get("body") for e in events if "requestContext" in e]
    assert json.loads(bodies[0]) == {"dataframe_split": {"columns": [0, 1, 2, 3],
                                                         "data": [[0.0] * 4]}}  # fmt: skip
    assert json.loads(bodies[1]) == {"dataframe_records": [{"0": 0.0, "1": 0.0, "2": 0.0,
                                                            "3": 0.0}]}  # fmt: skip
    assert json.loads(bodies[3]) == {"inputs": [[0.0, 0.0, 0.0, 0.0]]}
    assert bodies[4] == "0,1,2,3\n0.0,0.0,0.0,0.0\n"


def test_the_guard_names_a_trimmed_module_and_passes_over_others(tmp_path: Path) -> None:
    record = tmp_path / "trimmed.json"
    assert install(record) is False  # an untrimmed bundle: no guard
    write_trimmed(tmp_path, TrimReport(removed_modules=["mlflow_lambda_gone", "json.gone"]))
    assert install(record) is True
    guard = sys.meta_path[-1]
    try:
        assert isinstance(guard, TrimmedModules)
        with pytest.raises(ModuleNotFoundError, match=r"'mlflow_lambda_gone': .* --trim") as err:
            __import__("mlflow_lambda_gone")
        assert err.value.name == "mlflow_lambda_gone"
        with pytest.raises(ModuleNotFoundError, match=r"'json.gone': .* without --trim"):
            __import__("json.gone")
        with pytest.raises(ModuleNotFoundError, match=r"^No module named 'mlflow_lambda_other'$"):
            __import__("mlflow_lambda_other")
    finally:
        sys.meta_path.remove(guard)
