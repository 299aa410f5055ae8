"""prune_tree on small hand-made trees: which rule removes what, what stays and why."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mlflow_lambda.packager.elfcheck import describe_object
from mlflow_lambda.packager.prune import KEEP, prune_tree, strip_tool


def _write(root: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _elf(machine: int, size: int = 64) -> bytes:
    header = b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little")
    return header + bytes(size - len(header))


TREE: dict[str, bytes | str] = {
    "pkg/__init__.py": "from pkg import core\n",
    "pkg/core.py": "X = 1\n",
    "pkg/core.pyi": "X: int\n",
    "pkg/_fast.pyx": "cdef int x\n",
    "pkg/_fast.pxd": "cdef int x\n",
    "pkg/_tree.pxi.tp": "{{py: x = 1}}\n",  # Tempita template, expanded at build time only
    "pkg/include/pkg.h": "#define PKG 1\n",
    "pkg/__pycache__/core.cpython-311.pyc": b"\x00" * 100,
    "pkg/tests/__init__.py": "",
    "pkg/tests/test_core.py": "def test(): pass\n",
    "pkg/sub/test/test_sub.py": "def test(): pass\n",
    "pkg/docs/index.rst": "docs\n" * 10,
    "pkg/examples/sample.csv": "a,b\n",  # examples/ may hold data read at run time: stays
    "pkg/datasets/descr/iris.rst": "read at run time\n",
    "pkg-1.0.dist-info/RECORD": "pkg/core.py,,\n",
    "pkg-1.0.dist-info/licenses/LICENSE.h": "licence text\n",  # dist-info is never pruned
    "top.py": "import pkg\n",
    "mlflow_lambda/handler/tests/test_handler.py": "",
    "mlflow_lambda/handler/lambda_function.py": "",
    "model/tests/weights.c": "model data\n",
    "model.json": "{}",
}


def test_rules_remove_exactly_the_unused_files(tmp_path: Path) -> None:
    _write(tmp_path, TREE)
    (tmp_path / "pkg" / "namespace").mkdir()  # empty before pruning: not ours to remove
    report = prune_tree(tmp_path, arch="x86_64")
    assert report.to_dict() == {
        "bytes_saved": {
            "docs": 50,
            "pycache": 100,
            "sources": 14 + 11 + 11 + 14,
            "stubs": 7,
            "tests": 17 + 17,
        },
        "removed": {
            "docs": ["pkg/docs/"],
            "pycache": ["pkg/__pycache__/"],
            "sources": [
                "pkg/_fast.pxd",
                "pkg/_fast.pyx",
                "pkg/_tree.pxi.tp",
                "pkg/include/pkg.h",
            ],
            "stubs": ["pkg/core.pyi"],
            "tests": ["pkg/sub/test/", "pkg/tests/"],
        },
        "kept": {},
        "notes": [],
    }
    assert _files(tmp_path) == {
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/examples/sample.csv",
        "pkg/datasets/descr/iris.rst",
        "pkg-1.0.dist-info/RECORD",
        "pkg-1.0.dist-info/licenses/LICENSE.h",
        "top.py",
        "mlflow_lambda/handler/tests/test_handler.py",
        "mlflow_lambda/handler/lambda_function.py",
        "model/tests/weights.c",
        "model.json",
    }
    assert report.total_saved == 50 + 100 + 50 + 7 + 34
    # pkg/include/ held only a header: emptied by pruning, so it goes too.
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir() if p.is_dir()) == [
        "datasets",
        "examples",
        "namespace",
    ]


def test_test_module_imported_by_runtime_code_is_kept(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "lib/__init__.py": "",
            # numpy 2.2's pattern: the public testing module imports from a tests package.
            "lib/testing/utils.py": "from lib._core.tests._natype import pd_NA\n",
            "lib/_core/__init__.py": "",
            "lib/_core/tests/_natype.py": "pd_NA = None\n",
            "lib/_core/tests/test_other.py": "def test(): pass\n",
            "lib/_core/tests/data/big.csv": "1,2\n",
            # relative import inside a function still counts
            "lib/io/reader.py": "def f():\n    from .tests import helpers\n",
            "lib/io/__init__.py": "",
            "lib/io/tests/__init__.py": "",
            "lib/io/tests/helpers.py": "H = 1\n",
            "lib/io/tests/test_reader.py": "def test(): pass\n",
        },
    )
    report = prune_tree(tmp_path, arch="arm64")
    scan = "imported by run-time code (static import scan)"
    assert report.kept == {
        "lib/_core/tests/_natype.py": scan,
        "lib/io/tests/__init__.py": scan,
        "lib/io/tests/helpers.py": scan,
    }
    assert report.removed == {
        "tests": [
            "lib/_core/tests/data/big.csv",
            "lib/_core/tests/test_other.py",
            "lib/io/tests/test_reader.py",
        ]
    }
    assert _files(tmp_path) == {
        "lib/__init__.py",
        "lib/testing/utils.py",
        "lib/_core/__init__.py",
        "lib/_core/tests/_natype.py",
        "lib/io/reader.py",
        "lib/io/__init__.py",
        "lib/io/tests/__init__.py",
        "lib/io/tests/helpers.py",
    }


def test_explicit_keep_list_holds_without_a_visible_import(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "numpy/__init__.py": "",
            "numpy/_core/tests/_natype.py": "pd_NA = None\n",
            "numpy/_core/tests/test_umath.py": "def test(): pass\n",
        },
    )
    report = prune_tree(tmp_path, arch="x86_64")
    assert report.kept == {"numpy/_core/tests/_natype.py": KEEP["numpy/_core/tests/_natype.py"]}
    assert _files(tmp_path) == {"numpy/__init__.py", "numpy/_core/tests/_natype.py"}


def test_unknown_arch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"arch must be one of \['arm64', 'x86_64'\], got 'amd'"):
        prune_tree(tmp_path, arch="amd")


def test_elf_machine_reads_the_header(tmp_path: Path) -> None:
    (tmp_path / "x.so").write_bytes(_elf(62))
    (tmp_path / "a.so").write_bytes(_elf(183))
    (tmp_path / "t.so").write_bytes(b"not an elf file at all")
    machines = [describe_object(tmp_path / n).machine for n in ("x.so", "a.so", "t.so")]
    assert machines == [62, 183, None]


def test_strip_tool_never_uses_host_strip_for_a_foreign_arch() -> None:
    def which(available: set[str]) -> Callable[[str], str | None]:
        return lambda name: f"/usr/bin/{name}" if name in available else None

    everything = {"strip", "aarch64-linux-gnu-strip", "llvm-strip"}
    assert strip_tool("x86_64", machine="x86_64", which=which(everything)) == "/usr/bin/strip"
    assert strip_tool("arm64", machine="x86_64", which=which({"strip"})) is None
    assert (
        strip_tool("arm64", machine="x86_64", which=which(everything))
        == "/usr/bin/aarch64-linux-gnu-strip"
    )
    assert strip_tool("arm64", machine="aarch64", which=which({"strip"})) == "/usr/bin/strip"
    assert strip_tool("x86_64", machine="arm64", which=which({"strip", "llvm-strip"})) == (
        "/usr/bin/llvm-strip"
    )


def test_strip_skips_libs_dirs_and_foreign_elf_files(tmp_path: Path) -> None:
    if strip_tool("x86_64") is None:
        pytest.skip("no strip for x86_64 on this host")
    _write(
        tmp_path,
        {
            "pkg/_ext.cpython-312-x86_64-linux-gnu.so": _elf(62),
            "pkg/_arm.cpython-312-aarch64-linux-gnu.so": _elf(183),
            "pkg/data.so": b"text, not ELF",
            "pkg.libs/libopenblas-abc.so": _elf(62),
            "pkg/vendored.libs/libx.so": _elf(62),
            "_top.cpython-312-x86_64-linux-gnu.so": _elf(62),
            "mlflow_lambda/handler/_h.so": _elf(62),
        },
    )
    calls: list[list[str]] = []

    def run(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    report = prune_tree(tmp_path, arch="x86_64", strip=True, run=run)
    assert [Path(c[-1]).relative_to(tmp_path).as_posix() for c in calls] == [
        "_top.cpython-312-x86_64-linux-gnu.so",
        "pkg/_ext.cpython-312-x86_64-linux-gnu.so",
    ]
    assert {c[1] for c in calls} == {"--strip-unneeded"}
    assert report.bytes_saved == {"strip": 0}


def test_every_build_strips_the_handlers_own_extension_only(tmp_path: Path) -> None:
    if strip_tool("x86_64") is None:
        pytest.skip("no strip for x86_64 on this host")
    _write(
        tmp_path,
        {
            "csimdjson.abi3.so": _elf(62),
            "simdjson/__init__.py": b"from csimdjson import Parser\n",
            "_top.cpython-312-x86_64-linux-gnu.so": _elf(62),
            "top/__init__.py": b"import _top\n",
            "pkg/_ext.cpython-312-x86_64-linux-gnu.so": _elf(62),
            "pkg/__init__.py": b"from . import _ext\n",
        },
    )
    calls: list[list[str]] = []

    def run(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    report = prune_tree(tmp_path, arch="x86_64", run=run)
    assert [(c[1], Path(c[-1]).name) for c in calls] == [("--strip-unneeded", "csimdjson.abi3.so")]
    assert report.removed == {"strip-runtime": ["csimdjson.abi3.so"]}
    calls.clear()
    prune_tree(tmp_path, arch="x86_64", strip=True, run=run)  # --strip: every extension, once
    assert sorted(Path(c[-1]).name for c in calls) == [
        "_ext.cpython-312-x86_64-linux-gnu.so",
        "_top.cpython-312-x86_64-linux-gnu.so",
        "csimdjson.abi3.so",
    ]


def test_without_a_strip_the_runtime_extension_stays_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow_lambda.packager import prune

    monkeypatch.setattr(prune, "strip_tool", lambda arch: None)
    files = {"csimdjson.abi3.so": _elf(183), "simdjson/__init__.py": b"import csimdjson\n"}
    _write(tmp_path, files)
    report = prune_tree(tmp_path, arch="arm64")
    assert (tmp_path / "csimdjson.abi3.so").read_bytes() == _elf(183)
    assert report.removed == {}
    assert report.notes == [
        "strip of csimdjson.abi3.so skipped: no strip for 'arm64' ELF files on this host "
        "(install binutils-aarch64-linux-gnu or llvm)"
    ]
