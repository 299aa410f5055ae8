"""The whole-bundle prune rules on hand-made trees: ``unreferenced`` and ``unused-dist``."""

from __future__ import annotations

from pathlib import Path

from mlflow_lambda.packager.prune import prune_tree
from mlflow_lambda.packager.prune_unused import UNUSED_DISTS, UnusedDist

TAG = "cpython-312-x86_64-linux-gnu"


def _write(root: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _ext(leaf: str, *strings: str) -> bytes:
    """An ELF extension module: header, then a NUL-separated string table."""
    header = b"\x7fELF\x02\x01\x01" + bytes(11) + (62).to_bytes(2, "little")
    table = b"\0".join(s.encode() for s in (f"PyInit_{leaf}", *strings))
    return header + bytes(44) + b"\0" + table + b"\0"


EXTENSIONS: dict[str, bytes | str] = {
    "pkg/__init__.py": "from pkg import _used\n__all__ = ['_listed']\n",
    "pkg/util.py": "not_orphan = 1  # _orphanage, x_orphan: other identifiers, not the name\n",
    f"pkg/_used.{TAG}.so": _ext("_used", "pkg._used", "pkg._cimported"),
    "pkg/_listed.abi3.so": _ext("_listed"),  # named only by a string in __all__
    f"pkg/_cimported.{TAG}.so": _ext("_cimported"),  # named in _used's string table
    # Named only by itself and by _chained... which only _orphan names: both go.
    f"pkg/_orphan.{TAG}.so": _ext("_orphan", "pkg._orphan", "pkg._chained"),
    "pkg/_chained.so": _ext("_chained", "pkg._chained"),
    f"pkg/_in_stub.{TAG}.so": _ext("_in_stub"),
    "pkg/_in_stub.pyi": "def f() -> None: ...\n# _in_stub\n",  # stubs go first
    f"pkg/_in_test.{TAG}.so": _ext("_in_test"),
    "pkg/tests/test_x.py": "from pkg import _in_test\n",  # tests go first
    f"pkg/_in_record.{TAG}.so": _ext("_in_record"),
    "pkg-1.0.dist-info/RECORD": f"pkg/_in_record.{TAG}.so,,\n",  # a file list, not an import
    # sourceless bytecode: marshal runs the name into the next type byte (`z`)
    f"pkg/_in_pyc.{TAG}.so": _ext("_in_pyc"),
    "pkg/loader.pyc": b"\xe3\x00\x00\xda\x07_in_pycz\x03abc",
    # each names itself, and so the other: both stay
    f"pkg/a/_twin.{TAG}.so": _ext("_twin", "pkg.a._twin"),
    f"pkg/b/_twin.{TAG}.so": _ext("_twin", "pkg.b._twin"),
    "pkg/liborphan.so": _ext("other"),  # no PyInit_liborphan: a plain shared library
    "pkg/_notelf.so": "PyInit__notelf, text",  # not an ELF file
    f"pkg/_kept.{TAG}.so": _ext("_kept"),  # in `keep`
    f"pkg.libs/_vendored.{TAG}.so": _ext("_vendored"),  # vendored libraries stay
    f"pkg/sub.libs/_vendored2.{TAG}.so": _ext("_vendored2"),
    f"_top.{TAG}.so": _ext("_top"),  # top-level module: not in a package
    f"pkg/_by_handler.{TAG}.so": _ext("_by_handler"),
    # protected files still name modules
    "mlflow_lambda/handler/app.py": "import pkg._by_handler\n",
    f"mlflow_lambda/handler/_h.{TAG}.so": _ext("_h"),  # protected: never removed
}


def test_unreferenced_extension_modules_go_and_named_ones_stay(tmp_path: Path) -> None:
    _write(tmp_path, EXTENSIONS)
    report = prune_tree(tmp_path, arch="x86_64", keep={"pkg/_kept": "a test says so"})
    gone = [
        "pkg/_chained.so",
        f"pkg/_in_record.{TAG}.so",
        f"pkg/_in_stub.{TAG}.so",
        f"pkg/_in_test.{TAG}.so",
        f"pkg/_orphan.{TAG}.so",
    ]
    assert report.to_dict()["removed"] == {
        "stubs": ["pkg/_in_stub.pyi"],
        "tests": ["pkg/tests/"],
        "unreferenced": gone,
    }
    assert report.bytes_saved["unreferenced"] == sum(len(EXTENSIONS[rel]) for rel in gone)
    expected = set(EXTENSIONS) - set(gone) - {"pkg/_in_stub.pyi", "pkg/tests/test_x.py"}
    assert _files(tmp_path) == expected
    # _chained goes only in the second round, once _orphan (the only file naming it) is gone.
    assert report.removed["unreferenced"][-1] == "pkg/_chained.so"


def test_a_string_in_any_python_file_is_a_reference(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "lib/__init__.py": "",
            "lib/lazy.py": 'import importlib\nmod = importlib.import_module("lib._dyn")\n',
            f"lib/_dyn.{TAG}.so": _ext("_dyn"),
            f"lib/_gone.{TAG}.so": _ext("_gone"),
            "lib/data.json": '{"module": "lib._named_in_data"}',
            f"lib/_named_in_data.{TAG}.so": _ext("_named_in_data"),
        },
    )
    report = prune_tree(tmp_path, arch="arm64")
    assert report.removed == {"unreferenced": [f"lib/_gone.{TAG}.so"]}


def _dist(
    name: str,
    version: str,
    files: dict[str, bytes | str],
    requires: tuple[str, ...] = (),
    *,
    requested: bool = False,
    record: tuple[str, ...] | None = None,
) -> dict[str, bytes | str]:
    """An installed distribution: its files, METADATA, RECORD (and REQUESTED)."""
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    headers = [f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n"]
    headers += [f"Requires-Dist: {r}\n" for r in requires]
    # The description follows the headers; a line in it is not a requirement.
    meta = "".join(headers) + "\nRequires-Dist: wcwidth (not a header: description text)\n"
    listed = record if record is not None else (*files, f"{info}/METADATA", f"{info}/RECORD")
    out: dict[str, bytes | str] = {**files, f"{info}/METADATA": meta}
    out[f"{info}/RECORD"] = "".join(f"{rel},sha256=x,1\n" for rel in listed)
    if requested:
        out[f"{info}/REQUESTED"] = ""
    return out


def _bundle(**extra: dict[str, bytes | str]) -> dict[str, bytes | str]:
    files = {
        **_dist("numpy", "2.4.6", {"numpy/__init__.py": ""}, requested=True),
        **_dist(
            "skops",
            "0.16.0",
            {
                "skops/__init__.py": "",
                "skops/io/__init__.py": "",
                "skops/card/_model_card.py": "from prettytable import PrettyTable\n",
            },
            ("numpy>=1.25.0", "prettytable>=3.9"),
            requested=True,
        ),
    }
    for more in extra.values():
        files.update(more)
    return files


PRETTYTABLE = _dist(
    "prettytable",
    "3.18.0",
    {"prettytable/__init__.py": "import wcwidth\n", "prettytable/colortable.py": "X = 1\n"},
    ("wcwidth>=0.3.5",),
)
WCWIDTH = _dist(
    "wcwidth",
    "0.9.4",
    {"wcwidth/__init__.py": "W = 2\n", "wcwidth/_wcwidth_c.abi3.so": b"\x7fELF" + bytes(60)},
    record=(
        "wcwidth/__init__.py",
        "wcwidth/_wcwidth_c.abi3.so",
        "../../bin/wcwidth",  # a script pip put outside the target: never touched
        "wcwidth-0.9.4.dist-info/METADATA",
        "wcwidth-0.9.4.dist-info/RECORD",
    ),
)


def test_unused_distributions_go_with_what_only_they_require(tmp_path: Path) -> None:
    root = tmp_path / "task"
    _write(root, _bundle(pt=PRETTYTABLE, wc=WCWIDTH))
    _write(root, {"prettytable/notes.txt": "not in RECORD, but prettytable/ is only its own"})
    _write(tmp_path, {"bin/wcwidth": "#!/bin/sh\n"})
    before = _files(root)
    sizes = {rel: (root / rel).stat().st_size for rel in before}
    report = prune_tree(root, arch="x86_64")
    gone = {rel for rel in before if rel.startswith(("prettytable", "wcwidth"))}
    assert report.removed == {
        "unused-dist": [
            "prettytable/",
            "prettytable-3.18.0.dist-info/",
            "wcwidth/",
            "wcwidth-0.9.4.dist-info/",
        ]
    }
    assert report.bytes_saved == {"unused-dist": sum(sizes[rel] for rel in gone)}
    assert report.kept == {}
    assert _files(root) == before - gone
    assert (tmp_path / "bin" / "wcwidth").is_file()


def test_a_staying_requirer_keeps_the_distribution(tmp_path: Path) -> None:
    # An extra's requirement counts too: `rich[wide]` could be what the model uses.
    rich = _dist("rich", "14.0.0", {"rich/__init__.py": ""}, ('wcwidth; extra == "wide"',))
    _write(tmp_path, _bundle(pt=PRETTYTABLE, wc=WCWIDTH, rich=rich))
    report = prune_tree(tmp_path, arch="x86_64")
    assert report.removed == {"unused-dist": ["prettytable/", "prettytable-3.18.0.dist-info/"]}
    assert report.kept == {"wcwidth-0.9.4.dist-info/": "required by rich"}
    assert {"wcwidth/__init__.py", "wcwidth-0.9.4.dist-info/RECORD"} <= _files(tmp_path)


def test_a_requested_distribution_stays_and_so_do_its_requirements(tmp_path: Path) -> None:
    requested = {**PRETTYTABLE, "prettytable-3.18.0.dist-info/REQUESTED": ""}
    _write(tmp_path, _bundle(pt=requested, wc=WCWIDTH))
    before = _files(tmp_path)
    report = prune_tree(tmp_path, arch="x86_64")
    assert report.removed == {}
    assert report.kept == {
        "prettytable-3.18.0.dist-info/": "requested directly (REQUESTED, PEP 376)",
        "wcwidth-0.9.4.dist-info/": "required by prettytable",
    }
    assert _files(tmp_path) == before


def test_shared_directories_lose_only_the_recorded_files(tmp_path: Path) -> None:
    table = {"wcwidth": UnusedDist((), "a test"), "norecord": UnusedDist((), "a test")}
    shared = _dist("other", "1.0", {"shared/__init__.py": "", "shared/other.py": ""})
    mine = _dist(
        "wcwidth",
        "0.9.4",
        {"shared/wc.py": "", "wc_top.py": "", "mlflow_lambda/handler/from_dist.py": ""},
    )
    # norecord stays (no RECORD), and so does what it requires, though the table names it too.
    norecord = {"norecord-1.0.dist-info/METADATA": "Name: norecord\nRequires-Dist: needed\n"}
    needed = _dist("needed", "1.0", {"needed.py": ""})
    table["needed"] = UnusedDist((), "a test")
    _write(tmp_path, {**shared, **mine, **norecord, **needed})
    report = prune_tree(tmp_path, arch="x86_64", unused_dists=table)
    assert report.removed == {
        "unused-dist": ["shared/wc.py", "wc_top.py", "wcwidth-0.9.4.dist-info/"]
    }
    assert report.notes == [
        "unused-dist: kept 'norecord-1.0.dist-info': no RECORD to find its files"
    ]
    assert _files(tmp_path) == {
        "shared/__init__.py",
        "shared/other.py",
        "other-1.0.dist-info/METADATA",
        "other-1.0.dist-info/RECORD",
        "mlflow_lambda/handler/from_dist.py",  # protected, whoever installed it
        "norecord-1.0.dist-info/METADATA",
        "needed.py",
        "needed-1.0.dist-info/METADATA",
        "needed-1.0.dist-info/RECORD",
    }
    assert report.kept == {"needed-1.0.dist-info/": "required by norecord"}


def test_an_empty_table_keeps_every_distribution(tmp_path: Path) -> None:
    _write(tmp_path, _bundle(pt=PRETTYTABLE, wc=WCWIDTH))
    before = _files(tmp_path)
    assert prune_tree(tmp_path, arch="x86_64", unused_dists={}).removed == {}
    assert _files(tmp_path) == before
    assert sorted(UNUSED_DISTS) == [
        "cffi", "contourpy", "cryptography", "cycler", "fonttools", "gitdb", "gitpython",
        "google-auth", "graphviz", "h11", "kiwisolver", "matplotlib", "pillow",
        "plotly", "prettytable", "pyasn1", "pyasn1-modules", "pycparser", "pyparsing",
        "python-dotenv", "smmap", "uvicorn", "wcwidth",
    ]  # fmt: skip
