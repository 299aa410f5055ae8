"""Two prune rules that need the whole bundle: unused distributions, unreferenced extensions.

- ``unused-dist``: a distribution in ``UNUSED_DISTS`` goes (its files by its ``RECORD``, then its
  ``.dist-info``) when nothing that stays requires it: no kept distribution names it in a
  ``Requires-Dist`` line (whatever the markers or extras), except the requirers the table's
  reason accounts for. A distribution pip marks ``REQUESTED`` (PEP 376: the user asked for it,
  e.g. the model's own requirements list it) always stays.
- ``unreferenced``: an extension module ``pkg/.../X.<suffix>.so`` whose name ``X`` occurs as an
  identifier token in no other kept file. Python finds a module only by name: an ``import``
  statement, ``importlib.import_module("...")`` or an ``__all__`` string puts ``X`` in a ``.py``
  file, and a Cython ``cimport`` or a C-level ``PyImport_ImportModule("pkg.X")`` puts the dotted
  name in the importing ``.so``'s string table. Only a name assembled at run time could reach a
  module no file names. Removing one module can orphan another that only it named (scipy's
  ``_test_deprecation_def``, named only by ``_test_deprecation_call``), so this repeats until
  nothing changes. Kept: top-level modules, anything in ``*.libs/`` (vendored shared libraries,
  found through RPATH), files without ``PyInit_X`` (not a Python extension: maybe loaded by
  ``ctypes`` or as a ``DT_NEEDED`` library) and ``keep`` entries.

Every file counts as a possible reference except ``*.dist-info/RECORD``, which lists every
installed file by path without importing any. ``.py`` sources and ELF files are split into
identifier tokens (an ELF string table ends each string with NUL, so a name cannot run into its
neighbours). Any other file (``.pyc``, data) is searched for the name as a plain substring:
marshal puts a type byte right after each string (``_pocketfft_umath`` is followed by ``z``),
so tokens there are unreliable; searching only for the few names with no token reference keeps
that cheap.
"""

from __future__ import annotations

import csv
import os
import posixpath
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from mlflow_lambda.packager.prune import PruneReport


class UnusedDist(NamedTuple):
    """Why a distribution is dead weight, and which requirers that reason accounts for."""

    excused: tuple[str, ...]  # requirers that need it only for a feature the bundle never uses
    why: str


UNUSED_DISTS: dict[str, UnusedDist] = {
    "prettytable": UnusedDist(
        ("skops",),
        "skops requires it for skops.card (model cards: skops/card/_model_card.py); skops.io, "
        "which loads the model, never imports it (tests/integration/test_prune_dists.py)",
    ),
    "wcwidth": UnusedDist((), "prettytable's only requirement: terminal cell widths for tables"),
    # The generic path (packager/generic.py): what mlflow-skinny requires for features a served
    # model never reaches. Importing mlflow, loading a model directory with
    # mlflow.pyfunc.load_model and predicting imports none of them (traced in a python3.12
    # bundle; tests/integration/test_generic_bundle.py runs the pruned bundle).
    # databricks-sdk itself stays: mlflow.genai.scorers.validation probes
    # find_spec("databricks.agents") at import, which needs the `databricks` package to exist.
    "google-auth": UnusedDist(
        ("databricks-sdk",),
        "only databricks-sdk's credential providers import it, and only when MLflow talks to a "
        "Databricks workspace; loading and scoring a model directory never does",
    ),
    "cryptography": UnusedDist((), "google-auth's request signing"),
    "cffi": UnusedDist((), "cryptography's C bindings"),
    "pycparser": UnusedDist((), "cffi's C parser"),
    "pyasn1-modules": UnusedDist((), "google-auth's ASN.1 key formats"),
    "pyasn1": UnusedDist((), "pyasn1-modules' ASN.1 codec"),
    "gitpython": UnusedDist(
        ("mlflow-skinny",), "MLflow records a run's git commit with it, at logging time"
    ),
    "gitdb": UnusedDist((), "GitPython's object database"),
    "smmap": UnusedDist((), "gitdb's memory maps"),
    "uvicorn": UnusedDist(
        ("mlflow-skinny", "fastapi"),  # fastapi: only its `standard` extras
        "the HTTP server of `mlflow models serve`; Lambda calls the handler through Mangum",
    ),
    "h11": UnusedDist((), "uvicorn's HTTP/1.1 parser"),
    "python-dotenv": UnusedDist(("mlflow-skinny",), "read only by MLflow's command line"),
    # catboost requires matplotlib, plotly and graphviz for its plotting and widget helpers
    # (catboost/widget/, CatBoost.plot_tree, plot_predictions: imported inside those functions).
    # Loading a model (load_model) and predicting imports none of them, nor anything only they
    # pull in (traced in a python3.12 bundle: tests/integration/test_prune_flavors.py, which
    # fails if catboost starts importing one): 141 MB of the catboost image's 645 MB of
    # dependencies (docs/findings.md).
    "matplotlib": UnusedDist(
        ("catboost", "pandas", "scipy", "contourpy", "cycler", "fonttools"),
        "catboost's plotting helpers only; pandas (`plot`), scipy (`doc`), contourpy (`test`), "
        "cycler (`docs`) and fonttools (`plot`) list it only in an extra",
    ),
    "plotly": UnusedDist(("catboost",), "catboost's metric and feature plots only"),
    "graphviz": UnusedDist(("catboost",), "catboost's plot_tree only"),
    "contourpy": UnusedDist((), "matplotlib's contour plots"),
    "cycler": UnusedDist((), "matplotlib's style cycles"),
    "fonttools": UnusedDist((), "matplotlib's font embedding"),
    "kiwisolver": UnusedDist((), "matplotlib's layout solver"),
    "pyparsing": UnusedDist((), "matplotlib's mathtext and fontconfig parsers"),
    "pillow": UnusedDist(
        ("contourpy", "plotly"), "matplotlib's image I/O; contourpy and plotly list it in extras"
    ),
    # narwhals (plotly's dataframe layer, 5.5 MB) stays: scikit-learn requires and imports it,
    # and tests/integration/test_prune_dists.py holds that skops + scikit-learn load nothing here.
}

# Requirement lines of a flavor's model that its native loader never imports, so the plan leaves
# them out (``packager.plan``: they are the model's own requirements, which pip would mark
# REQUESTED, and the unused-dist rule keeps those). MLflow lists ``onnx`` for the onnx flavor
# because mlflow.onnx.load_model parses the file with it; handler/flavors/onnx.py hands the file
# to onnxruntime, which does not need it (tests/integration/test_prune_flavors.py traces it).
FLAVOR_UNUSED_REQUIREMENTS: dict[str, dict[str, str]] = {
    "onnx": {
        "onnx": "the onnx flavor loads with onnxruntime alone; the onnx package (and ml_dtypes, "
        "which only it needs) is never imported",
    },
}

TOKEN = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
# `X.cpython-312-x86_64-linux-gnu.so`, `X.abi3.so` or `X.so` (PEP 3149, PEP 384).
EXTENSION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.(?:cpython-[^.]+\.|abi3\.)?so")
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def remove_unused_dists(
    root: Path, protect: set[str], report: PruneReport, table: dict[str, UnusedDist]
) -> None:
    """Apply the ``unused-dist`` rule to the distributions installed in ``root``."""
    dists = {}  # canonical name -> (dist-info dir, names it requires)
    for info in sorted(root.glob("*.dist-info")):
        dists[canonical(_metadata_name(info))] = (info, _requires(info))
    records = {name: _record(root, info) for name, (info, _) in dists.items()}
    going = {name for name in dists if name in table}
    for name in sorted(going):
        info = dists[name][0]
        if (info / "REQUESTED").exists():
            report.kept[info.name + "/"] = "requested directly (REQUESTED, PEP 376)"
            going.discard(name)
        elif records[name] is None:
            report.notes.append(f"unused-dist: kept {info.name!r}: no RECORD to find its files")
            going.discard(name)
    changed = True
    while changed:  # drop candidates that a staying distribution still needs
        changed = False
        for name in sorted(going):
            needs = {
                other
                for other, (_, requires) in dists.items()
                if other not in going and name in requires and other not in table[name].excused
            }
            if needs:
                report.kept[dists[name][0].name + "/"] = f"required by {', '.join(sorted(needs))}"
                going.discard(name)
                changed = True
    owners: Counter[str] = Counter()
    for files in records.values():
        owners.update({rel.split("/")[0] for rel in files or ()})
    for name in sorted(going):
        _remove_dist(root, dists[name][0], records[name] or [], owners, protect, report)


def _remove_dist(
    root: Path,
    info: Path,
    files: list[str],
    owners: Counter[str],
    protect: set[str],
    report: PruneReport,
) -> None:
    tops = sorted({rel.split("/")[0] for rel in files} - {info.name} - protect)
    for top in tops:
        path = root / top
        if owners[top] == 1 and path.is_dir() and not path.is_symlink():
            report.add("unused-dist", top + "/", _tree_size(path))
            shutil.rmtree(path)
            continue
        # A file, or a directory other distributions install into too (namespace package).
        for rel in sorted(r for r in files if r == top or r.startswith(top + "/")):
            if (root / rel).is_file():
                report.add("unused-dist", rel, (root / rel).lstat().st_size)
                (root / rel).unlink()
    report.add("unused-dist", info.name + "/", _tree_size(info))
    shutil.rmtree(info)


def _metadata_name(info: Path) -> str:
    try:
        for line in (info / "METADATA").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("name:"):
                return line.split(":", 1)[1].strip()
            if not line.strip():
                break  # end of the headers (core metadata spec: RFC 822 style)
    except OSError:
        pass
    return info.name[: -len(".dist-info")].rsplit("-", 1)[0]


def _requires(info: Path) -> set[str]:
    """Names in ``Requires-Dist``, whatever the markers: an extra's requirement counts too."""
    try:
        text = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    names = set()
    for line in text.splitlines():
        if not line.strip():
            break  # the description follows the headers
        if line.lower().startswith("requires-dist:"):
            match = _REQUIREMENT.match(line.split(":", 1)[1])
            if match:
                names.add(canonical(match.group(1)))
    return names


def _record(root: Path, info: Path) -> list[str] | None:
    """Files the distribution installed inside ``root`` (``RECORD`` paths), or None."""
    try:
        with (info / "RECORD").open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError:
        return None
    files = []
    for row in rows:
        rel = posixpath.normpath(row[0]) if row and row[0] else ".."
        if not (rel == ".." or rel.startswith(("../", "/")) or rel == "."):
            files.append(rel)  # paths are relative to root; ../../bin/ scripts are not inside
    return files


def remove_unreferenced_extensions(
    root: Path, protect: set[str], keep: dict[str, str], report: PruneReport
) -> None:
    """Apply the ``unreferenced`` rule to the extension modules below ``root``'s packages."""
    candidates: dict[Path, str] = {}  # extension module file -> its leaf module name
    everything: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            if path.is_symlink() or (name == "RECORD" and here.name.endswith(".dist-info")):
                continue
            everything.append(path)
            rel = path.relative_to(root)
            match = EXTENSION.fullmatch(name)
            if (
                match
                and here != root
                and rel.parts[0] not in protect
                and not any(part.endswith(".libs") for part in rel.parts[:-1])
                and rel.as_posix() not in keep
                and (rel.parent / match.group(1)).as_posix() not in keep
            ):
                candidates[path] = match.group(1)
    names = {leaf.encode() for leaf in candidates.values()}
    hits: dict[Path, set[bytes]] = {}  # tokenised file -> candidate names it mentions
    counts: Counter[bytes] = Counter()  # candidate name -> number of tokenised files naming it
    opaque: list[Path] = []  # files searched for the name as a substring instead
    for path in everything:
        data = path.read_bytes()
        elf = data.startswith(b"\x7fELF")
        if path in candidates and not (elf and b"PyInit_" + candidates[path].encode() in data):
            del candidates[path]  # not a Python extension module: leave it be
        if elf or path.suffix == ".py":
            hits[path] = names.intersection(TOKEN.findall(data))
            counts.update(hits[path])
        else:
            opaque.append(path)
    in_opaque: set[bytes] = set()  # names found in an opaque file: their modules stay
    searched: set[bytes] = set()
    while True:  # removing one module can leave another named by nothing
        orphans = {
            path: leaf.encode()
            for path, leaf in candidates.items()
            if counts[leaf.encode()] - (leaf.encode() in hits[path]) <= 0
        }
        if unsearched := set(orphans.values()) - searched:
            in_opaque |= _substrings(opaque, unsearched)
            searched |= unsearched
        going = sorted(path for path, name in orphans.items() if name not in in_opaque)
        if not going:
            return
        for path in going:
            report.add("unreferenced", path.relative_to(root).as_posix(), path.lstat().st_size)
            path.unlink()
            counts.subtract(hits.pop(path))
            del candidates[path]


def _substrings(paths: list[Path], names: set[bytes]) -> set[bytes]:
    """The ``names`` that occur anywhere in one of ``paths``."""
    found: set[bytes] = set()
    for path in paths:
        data = path.read_bytes()
        found |= {name for name in names - found if name in data}
        if found == names:
            break
    return found


def _tree_size(path: Path) -> int:
    return sum((Path(d) / f).lstat().st_size for d, _, files in os.walk(path) for f in files)
