"""Prune a staging tree of installed wheels down to what runs on Lambda.

Only files that are provably unused at run time go, each by a named rule, and every removal
is recorded with the bytes it saved (``PruneReport``):

- ``pycache``: ``__pycache__/`` directories. ``pip install --target`` writes bytecode for the
  *host* Python (docs/findings.md, "Bytecode": cpython-311 files in a 3.12 bundle);
  ``packager.bytecode`` compiles for the target afterwards.
- ``tests``: package directories named ``tests`` or ``test`` below a top-level package. A test
  module that non-test code imports stays (see ``KEEP`` and ``_imported_test_modules``).
- ``stubs``: ``*.pyi`` type stubs, read only by type checkers.
- ``sources``: Cython sources (``*.pyx``, ``*.pxd``, ``*.pxi``), Tempita templates that generate
  them at build time (``*.tp``: ``sklearn/neighbors/_binary_tree.pxi.tp``) and C/C++/Fortran
  sources and headers, used only when building extensions against the package.
- ``docs``: ``doc/`` and ``docs/`` directories below a top-level package holding no Python
  module or extension. Loose ``*.rst``/``*.md`` files stay: scikit-learn reads
  ``sklearn/datasets/descr/*.rst`` at run time; ``examples/`` stay too (some hold data).
- ``unused-dist``: distributions installed only for a feature the bundle never uses
  (``packager.prune_unused.UNUSED_DISTS``, each with its reason), when nothing that stays
  requires them. Runs first, so their files count as references for nothing below.
- ``unreferenced``: extension modules whose name no other kept file mentions, so that nothing
  in the bundle can import them (``packager.prune_unused``). Runs after the rules above, on
  what they kept.
- ``strip-runtime`` (always): ``strip --strip-unneeded`` on the extension modules of the handler's
  own native dependencies (``RUNTIME_STRIPPED``), which are published with their debug symbols.
  pysimdjson's is 7.2 MB as built and 0.6 MB stripped; the build's import check loads it.
- ``strip`` (opt-in): ``strip --strip-unneeded`` on extension modules of the target architecture.
  Never inside ``*.libs/``: stripping the auditwheel-vendored OpenBLAS there breaks import (ELF
  load command not page-aligned, docs/findings.md). Skipped with a note when no strip for the target
  architecture is available (the host ``strip`` cannot read aarch64 files).

``*.dist-info/`` is never touched (licences, ``importlib.metadata``) except with its whole
distribution (``unused-dist``), nor are the protected
top-level entries (``handler/``, ``model/``, ``model.json`` by default).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow_lambda.handler import BUNDLE_PACKAGE
from mlflow_lambda.packager.elfcheck import EXPECTED_MACHINE, describe_object
from mlflow_lambda.packager.platforms import host_arch
from mlflow_lambda.packager.prune_unused import (
    UNUSED_DISTS,
    UnusedDist,
    remove_unreferenced_extensions,
    remove_unused_dists,
)

PROTECTED = (BUNDLE_PACKAGE, "model", "model.json")

# Test modules imported by run-time code, as paths relative to the staging root, with why.
# The static import scan finds these too; the list states the known cases explicitly so they
# survive even if the import becomes dynamic.
KEEP: dict[str, str] = {
    "numpy/_core/tests/_natype.py": (
        "numpy 2.2.x: numpy.testing imports numpy._core.tests._natype (pd_NA), and scipy "
        "imports numpy.testing at run time (docs/findings.md)"
    ),
    "numpy/_core/tests/__init__.py": "package of numpy/_core/tests/_natype.py",
}

TEST_DIRS = frozenset({"tests", "test"})
DOC_DIRS = frozenset({"doc", "docs"})
SOURCE_SUFFIXES = frozenset(
    {".pyx", ".pxd", ".pxi", ".tp", ".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".f", ".f90"}
)
CODE_SUFFIXES = (".py", ".so", ".pyd")

# Top-level extension modules (by the name before their first dot) of the handler's own
# dependencies (packager.plan.RUNTIME_REQUIREMENTS), stripped by every build: their symbols
# only serve a debugger, and they are in every bundle.
RUNTIME_STRIPPED: dict[str, str] = {
    "csimdjson": "pysimdjson's extension (handler.numeric): 7.2 MB as published, 0.6 MB stripped",
}

# Strip tools that can rewrite a foreign-architecture ELF file, tried after the host's own.
CROSS_STRIP = {"x86_64": ("x86_64-linux-gnu-strip",), "arm64": ("aarch64-linux-gnu-strip",)}
CROSS_STRIP_ANY = ("llvm-strip",)

Runner = Callable[[list[str]], "subprocess.CompletedProcess[bytes]"]


@dataclass
class PruneReport:
    """What ``prune_tree`` removed (relative POSIX paths), kept on purpose, and skipped."""

    removed: dict[str, list[str]] = field(default_factory=dict)
    bytes_saved: dict[str, int] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, rule: str, rel: str, size: int) -> None:
        self.removed.setdefault(rule, []).append(rel)
        self.bytes_saved[rule] = self.bytes_saved.get(rule, 0) + size

    @property
    def total_saved(self) -> int:
        return sum(self.bytes_saved.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record, e.g. for ``build/prune.json``."""
        return {
            "bytes_saved": dict(sorted(self.bytes_saved.items())),
            "removed": {k: sorted(v) for k, v in sorted(self.removed.items())},
            "kept": dict(sorted(self.kept.items())),
            "notes": list(self.notes),
        }

    def format(self) -> str:
        """One line per rule: entries removed and MB saved."""
        lines = [
            f"{rule:<13} {len(self.removed.get(rule, [])):>6} entries {size / 1e6:>9.1f} MB"
            for rule, size in sorted(self.bytes_saved.items(), key=lambda kv: -kv[1])
        ]
        lines.append(f"{'total':<13} {'':>14} {self.total_saved / 1e6:>9.1f} MB")
        lines += [f"kept {rel}: {why}" for rel, why in sorted(self.kept.items())]
        return "\n".join(lines + self.notes)


def prune_tree(
    root: Path,
    *,
    strip: bool = False,
    arch: str,
    protect: Collection[str] = PROTECTED,
    keep: dict[str, str] | None = None,
    run: Runner | None = None,
    unused_dists: dict[str, UnusedDist] | None = None,
) -> PruneReport:
    """Remove what the bundle never uses at run time from ``root``, in place.

    ``arch`` is the Lambda architecture (``x86_64`` or ``arm64``); it only matters for ``strip``.
    ``keep`` adds to ``KEEP`` (relative paths; an extension module also by its path without
    suffixes, e.g. ``numpy/_core/_simd``); ``run`` runs the strip command (a seam for tests);
    ``unused_dists`` replaces ``UNUSED_DISTS`` (``{}`` keeps every distribution).
    """
    if arch not in EXPECTED_MACHINE:
        raise ValueError(f"arch must be one of {sorted(EXPECTED_MACHINE)}, got {arch!r}")
    report = PruneReport()
    keep_all = {**KEEP, **(keep or {})}
    remove_unused_dists(
        root, set(protect), report, UNUSED_DISTS if unused_dists is None else unused_dists
    )
    tops = [p for p in sorted(root.iterdir()) if p.name not in protect]
    for rel in sorted(_imported_test_modules(root, tops)):
        keep_all.setdefault(rel, "imported by run-time code (static import scan)")
    for top in tops:
        if top.is_dir() and not top.name.endswith(".dist-info"):
            _prune_package(root, top, keep_all, report)
    remove_unreferenced_extensions(root, set(protect), keep_all, report)
    if strip:
        _strip_tree(root, tops, arch, report, run or _run)
    else:
        runtime = [p for p in tops if p.is_file() and p.name.split(".")[0] in RUNTIME_STRIPPED]
        _strip_tree(root, runtime, arch, report, run or _run, rule="strip-runtime")
    return report


def _prune_package(root: Path, top: Path, keep: dict[str, str], report: PruneReport) -> None:
    touched: set[Path] = set()  # directories that lost a file: drop them if now empty
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        for name in sorted(dirnames):
            sub = here / name
            rule = _dir_rule(sub)
            if rule is None:
                continue
            kept = _keep_inside(root, sub, keep)
            if kept and rule != "pycache":
                # Remove everything in the test package except the kept modules.
                for rel in kept:
                    report.kept[rel] = keep[rel]
                _remove_all_but(root, sub, set(kept), rule, report)
            else:
                report.add(rule, _rel(root, sub) + "/", _tree_size(sub))
                shutil.rmtree(sub)
            touched.add(here)
            dirnames.remove(name)
        for name in filenames:
            path = here / name
            rule = _file_rule(name)
            if rule is not None and _rel(root, path) not in keep:
                report.add(rule, _rel(root, path), path.lstat().st_size)
                path.unlink()
                touched.add(here)
    # Deepest first, so that a parent emptied by its children goes too (never `top` itself).
    for here in sorted(touched, key=lambda p: len(p.parts), reverse=True):
        while here != top and here.is_dir() and not any(here.iterdir()):
            here.rmdir()
            here = here.parent


def _dir_rule(path: Path) -> str | None:
    if path.name == "__pycache__":
        return "pycache"
    if path.name in TEST_DIRS:
        return "tests"
    if path.name in DOC_DIRS and not any(_walk_files(path, CODE_SUFFIXES)):
        return "docs"
    return None


def _file_rule(name: str) -> str | None:
    suffix = os.path.splitext(name)[1].lower()
    if suffix == ".pyi":
        return "stubs"
    if suffix in SOURCE_SUFFIXES:
        return "sources"
    return None


def _keep_inside(root: Path, sub: Path, keep: dict[str, str]) -> list[str]:
    prefix = _rel(root, sub) + "/"
    return sorted(rel for rel in keep if rel.startswith(prefix) and (root / rel).exists())


def _remove_all_but(root: Path, sub: Path, kept: set[str], rule: str, report: PruneReport) -> None:
    for dirpath, dirnames, filenames in os.walk(sub, topdown=False):
        here = Path(dirpath)
        for name in filenames:
            path = here / name
            if _rel(root, path) not in kept:
                report.add(rule, _rel(root, path), path.lstat().st_size)
                path.unlink()
        for name in dirnames:
            with_contents = here / name
            if not any(with_contents.iterdir()):
                with_contents.rmdir()


def _imported_test_modules(root: Path, tops: list[Path]) -> set[str]:
    """Files under test directories that non-test code imports (absolute or relative).

    Scans every ``.py`` outside test directories whose text mentions ``test``; imports inside
    functions count too, which errs on the side of keeping.
    """
    found: set[str] = set()
    for top in tops:
        if not top.is_dir() or top.name.endswith(".dist-info"):
            continue
        for path in _walk_files(top, (".py",), skip_dirs=TEST_DIRS | {"__pycache__"}):
            data = path.read_bytes()
            if b"test" not in data:
                continue
            try:
                tree = ast.parse(data, filename=str(path))
            except (SyntaxError, ValueError):
                continue  # not valid for this parser; it cannot import anything we drop either
            package = _rel(root, path.parent).split("/")
            for module in _imports(tree, package):
                parts = module.split(".")
                if TEST_DIRS.isdisjoint(parts):
                    continue
                found |= _module_files(root, parts)
    return found


def _imports(tree: ast.AST, package: list[str]) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            yield stem
            # `from pkg.tests import _natype` imports the submodule pkg.tests._natype.
            yield from (f"{stem}.{alias.name}" for alias in node.names if alias.name != "*")


def _module_files(root: Path, parts: list[str]) -> set[str]:
    """The module's file (or package ``__init__``) and the ``__init__`` of each parent package."""
    files: set[str] = set()
    for i in range(1, len(parts) + 1):
        rel = "/".join(parts[:i])
        if (root / rel / "__init__.py").is_file():
            files.add(rel + "/__init__.py")
    rel = "/".join(parts)
    if (root / (rel + ".py")).is_file():
        files.add(rel + ".py")
    return files


def _strip_tree(
    root: Path, tops: list[Path], arch: str, report: PruneReport, run: Runner, rule: str = "strip"
) -> None:
    if not tops:
        return
    tool = strip_tool(arch)
    if tool is None:
        what = "strip" if rule == "strip" else f"strip of {', '.join(_rel(root, p) for p in tops)}"
        report.notes.append(
            f"{what} skipped: no strip for {arch!r} ELF files on this host "
            f"(install binutils-{'aarch64' if arch == 'arm64' else 'x86-64'}-linux-gnu or llvm)"
        )
        return
    for top in tops:
        if top.name.endswith((".libs", ".dist-info")):
            continue
        candidates = [top] if top.is_file() else _walk_files(top, (".so",), libs=False)
        for path in candidates:
            if not path.name.endswith(".so"):
                continue
            if describe_object(path).machine != EXPECTED_MACHINE[arch]:
                continue
            before = path.stat().st_size
            result = run([tool, "--strip-unneeded", str(path)])
            if result.returncode != 0:
                report.notes.append(f"strip failed on {_rel(root, path)!r}; left as is")
                continue
            report.add(rule, _rel(root, path), before - path.stat().st_size)


def strip_tool(
    arch: str,
    *,
    machine: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:
    """A ``strip`` that can rewrite ELF files of ``arch`` on this host, or None.

    The host's ``strip`` only when the host runs ``arch`` (GNU strip built for x86_64 cannot
    read aarch64 files); otherwise a cross binutils strip or ``llvm-strip``.
    """
    names = (("strip",) if host_arch(machine) == arch else ()) + CROSS_STRIP[arch]
    return next((found for name in names + CROSS_STRIP_ANY if (found := which(name))), None)


def _walk_files(
    top: Path, suffixes: tuple[str, ...], *, skip_dirs: Collection[str] = (), libs: bool = True
) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(
            d for d in dirnames if d not in skip_dirs and (libs or not d.endswith(".libs"))
        )
        for name in sorted(filenames):
            if name.endswith(suffixes):
                yield Path(dirpath) / name


def _tree_size(path: Path) -> int:
    return sum((Path(d) / f).lstat().st_size for d, _, files in os.walk(path) for f in files)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _run(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, capture_output=True, check=False)
