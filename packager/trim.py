"""``--trim``: leave out the modules a traced run of the bundle never imported (opt-in).

The default prune removes only what is provably unused (``packager.prune``). Trimming goes
further, on evidence instead of proof: the staged bundle runs in a fresh interpreter of the
target Python (``-I -S``: it sees only the bundle and the stdlib), imports the handler (which
loads the model) and answers the model's input example (else a row of zeros from its signature
or its fitted width, ``n_features_in_``) in every request format, plus the
probes and error paths of the protocol. Every module that run imported stays; the modules of
the dependencies it never imported, and the data files of packages it never imported, go.

What stays untouched: the handler, the model, ``*.dist-info`` (``importlib.metadata``) and
``*.libs`` (auditwheel-vendored shared libraries, found through RPATH rather than imported),
and every shared object the run mapped into memory.

Trimming is sound for the code paths the trace took and a bet for the others: a model that
imports something new for an input the example does not cover would fail there. So the bundle
records what was left out (``trimmed.json``) and the handler installs a last-resort import
finder (``handler.trimmed``) that turns such an import into an error naming the module and the
way out (package without ``--trim``), never a silent fallback. The import check then runs on
the trimmed bundle.

For a target architecture this host cannot run, the trace runs on a twin of the dependencies
installed for the host's architecture (same pins, same Python): module names do not depend on
the architecture. The twin must resolve the very same versions, or the build stops.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow_lambda.handler import BUNDLE_PACKAGE
from mlflow_lambda.handler.payload import DF_RECORDS, DF_SPLIT, INPUTS, INSTANCES
from mlflow_lambda.packager import sizes
from mlflow_lambda.packager.deps import DepsOptions, prepare_dependencies
from mlflow_lambda.packager.errors import BundleCheckError
from mlflow_lambda.packager.events import make_event, scoring_body
from mlflow_lambda.packager.importcheck import ModelFacts, import_check, run_in_bundle
from mlflow_lambda.packager.plan import BundlePlan, plan_bundle
from mlflow_lambda.packager.platforms import host_arch

TRIMMED_FILE = "trimmed.json"
# What CPython's extension module loader accepts on Linux (importlib.machinery.EXTENSION_SUFFIXES).
_EXTENSION = re.compile(r"^[A-Za-z_]\w*(\.cpython-\d+[\w-]*|\.abi3)?\.so$")
NEVER_TRIMMED_SUFFIXES = (".dist-info", ".libs", ".data")
PROTECTED = (BUNDLE_PACKAGE, "model", "model.json", TRIMMED_FILE)

_PROBE = """
import json, os, sys
roots = json.loads(os.environ["MLFLOW_LAMBDA_PATHS"])
sys.path[:0] = roots
with open(os.environ["MLFLOW_LAMBDA_EVENTS"]) as f:
    events = json.load(f)
import mlflow_lambda.handler.lambda_function as lf
statuses = [lf.handler(event, None).get("statusCode", 0) for event in events]  # 0: direct
real = tuple(os.path.realpath(r) + os.sep for r in roots)
libraries = set()
with open("/proc/self/maps") as maps:
    for line in maps:
        path = line.split()[-1]
        if path.startswith(real):
            libraries.add(os.path.realpath(path))
print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules),
                  "libraries": sorted(libraries)}))
"""


@dataclass(frozen=True)
class Trace:
    """What one traced run imported: module names, and the files it mapped (realpaths)."""

    modules: frozenset[str]
    libraries: frozenset[str]
    statuses: tuple[int, ...] = ()


@dataclass
class TrimReport:
    """What ``trim_tree`` left out: module names, files (relative POSIX paths) and bytes."""

    removed_modules: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    bytes_saved: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The record written to ``trimmed.json`` (read by ``handler.trimmed``)."""
        return {
            "why": "left out by `mlflow-lambda package --trim`: the traced run never imported them",
            "bytes_saved": self.bytes_saved,
            "modules": sorted(self.removed_modules),
        }


def probe_events(example: Any) -> list[dict[str, Any]]:
    """The requests the trace sends: ``example`` (a scoring body: the model's input example,
    else a row of zeros from its signature or its fitted width, ``events.scoring_body``) in
    each format it can take, then the protocol's probes and error paths (they import code of
    their own, e.g. in starlette)."""
    if not example:
        raise BundleCheckError(
            "--trim needs a request to trace what predicting imports, and the model has no "
            "input example, no signature and no fitted width the build could read "
            "(n_features_in_); log it with input_example=... or package without --trim"
        )
    bodies: list[tuple[str | bytes, str]] = [(json.dumps(example), "application/json")]
    split = example.get(DF_SPLIT) if isinstance(example, dict) else None
    if isinstance(split, dict) and "columns" in split and "data" in split:
        records = [dict(zip(split["columns"], row, strict=False)) for row in split["data"]]
        bodies.append((json.dumps({DF_RECORDS: records}), "application/json"))
        bodies.append((json.dumps({INSTANCES: records}), "application/json"))
        bodies.append((json.dumps({INPUTS: split["data"]}), "application/json"))
        csv = [",".join(map(str, split["columns"]))]
        csv += [",".join("" if v is None else str(v) for v in row) for row in split["data"]]
        bodies.append(("\n".join(csv) + "\n", "text/csv"))
    events = [make_event("v2", body, content_type=ctype) for body, ctype in bodies]
    events.append(make_event("v1", bodies[0][0], stage="Prod"))
    events.append(make_event("direct", json.loads(bodies[0][0])))
    for method, path in (("GET", "/ping"), ("GET", "/health"), ("GET", "/version")):
        events.append(make_event("v2", None, method=method, path=path, content_type=None))
    events.append(make_event("v2", "{not json", content_type="application/json"))
    events.append(make_event("v2", "x", content_type="application/xml"))
    events.append(make_event("v2", None, method="GET", path="/nowhere", content_type=None))
    return events


def trace_bundle(
    roots: list[Path], interpreter: Path, example: Any, *, model_dir: Path, work: Path
) -> Trace:
    """Run the bundle in ``roots`` once per probe event and record what it imported."""
    events = work / "trace-events.json"
    events.write_text(json.dumps(probe_events(example)))
    result = run_in_bundle(
        interpreter,
        _PROBE,
        roots,
        {
            "MLFLOW_LAMBDA_EVENTS": str(events),
            "MODEL_DIR": str(model_dir),
            "LOG_LEVEL": "CRITICAL",
            "TMPDIR": str(work),
        },
        failure="--trim: the traced run of the bundle failed",
    )
    statuses = tuple(int(s) for s in result["statuses"])
    if statuses[0] != 200:
        raise BundleCheckError(
            f"--trim: the bundle answered the traced request with HTTP {statuses[0]}; "
            "package without --trim and run `mlflow-lambda invoke` to see why"
        )
    return Trace(frozenset(result["modules"]), frozenset(result["libraries"]), statuses)


def trim_tree(root: Path, trace: Trace, *, traced_root: Path | None = None) -> TrimReport:
    """Remove from ``root`` the modules and package data ``trace`` never used, in place.

    ``traced_root``: where the traced twin lived when the trace ran on one (another
    architecture); the shared objects it mapped are matched here by module name.
    """
    report = TrimReport()
    loaded = _loaded_modules(trace, traced_root or root)
    for top in sorted(root.iterdir()):
        if top.name in PROTECTED or top.name.endswith(NEVER_TRIMMED_SUFFIXES):
            continue
        packages = _package_dirs(top) if top.is_dir() else set()
        for path, module in _entries(root, top, packages):
            if module is not None:
                if module in trace.modules or module in loaded:
                    continue
                report.removed_modules.append(module)
            elif path.parent == root or _owner(root, path.parent, packages) in trace.modules:
                continue  # data of a package that was imported
            report.removed_files.append(path.relative_to(root).as_posix())
            report.bytes_saved += path.lstat().st_size
            path.unlink()
        if top.is_dir():
            _remove_empty_dirs(top)
    report.removed_modules = sorted(set(report.removed_modules))
    return report


def write_trimmed(app: Path, report: TrimReport) -> Path:
    """Write the record the handler's import guard reads, next to ``model.json``."""
    path = app / TRIMMED_FILE
    path.write_text(json.dumps(report.to_dict(), indent=0, sort_keys=True) + "\n")
    return path


def trim_bundle(
    config: Mapping[str, Any],
    plan: BundlePlan,
    installed: dict[str, str],
    dirs: tuple[Path, Path, Path],
    interpreter: Path | None,
    deps_opts: DepsOptions,
    model_dir: Path,
    progress: Callable[[str], None],
    *,
    facts: ModelFacts | None = None,
) -> TrimReport:
    """Trace the staged bundle and leave out what the run never imported (``--trim``).

    A target this host cannot run is traced on a twin of its dependencies installed for the
    host's architecture (same pins, same Python). ``facts``: what the import check read from
    the estimator; without them (no check ran) and without an input example or signature,
    the traced roots are checked once first to read them.
    """
    app, deps, work = dirs
    if interpreter is None:
        raise BundleCheckError(
            f"--trim runs the bundle to see what it imports, and needs Python "
            f"{plan.python_version} on this host; install it (e.g. pyenv install "
            f"{plan.python_version}) or package without --trim"
        )
    traced, twin_root = [app, deps], None
    host = host_arch()
    if host != plan.arch:
        progress(f"--trim: installing the same dependencies for {host} to trace them here")
        twin_plan = plan_bundle(
            config, python=plan.python_version, arch=host, warn=lambda _m: None,
            force_pandas=plan.needs_pandas,
        )  # fmt: skip
        twin_root = work / f"twin-{host}"
        twin_root.mkdir()
        twin = prepare_dependencies(
            twin_plan, twin_root, deps_opts, interpreter=interpreter, progress=progress
        )
        if twin != installed:
            names = sorted(set(installed) | set(twin))
            differ = [f"{k} {installed.get(k)} vs {twin.get(k)}" for k in names
                      if installed.get(k) != twin.get(k)]  # fmt: skip
            raise BundleCheckError(
                f"--trim: the {host} twin resolved other versions than {plan.arch} "
                f"({', '.join(differ)}), so its trace would not describe the bundle; "
                "package without --trim"
            )
        traced = [app, twin_root]
    body = scoring_body(config, facts)
    if body is None:
        checked = import_check(
            traced, interpreter, plan.python_version, host, None, model_dir=model_dir
        )
        body = scoring_body(config, checked.facts)
    progress("--trim: tracing what importing the model and answering requests imports")
    trace = trace_bundle(traced, interpreter, body, model_dir=model_dir, work=work)
    report = trim_tree(deps, trace, traced_root=twin_root)
    write_trimmed(app, report)
    progress(
        f"--trim: left out {len(report.removed_modules)} modules never imported "
        f"({len(report.removed_files)} files, {report.bytes_saved / sizes.MB:.1f} MB); "
        f"listed in {TRIMMED_FILE}"
    )
    return report


# -- file <-> module -----------------------------------------------------------------------
def module_of(rel: str) -> str | None:
    """The module a file under a task root defines, or None for data.

    ``a/b.py``, ``a/b.pyc`` (sourceless), ``a/__pycache__/b.cpython-312.pyc`` and
    ``a/b.cpython-312-x86_64-linux-gnu.so`` / ``a/b.abi3.so`` / ``a/b.so`` all define ``a.b``;
    ``a/__init__.py`` defines ``a``. A shared library (``libfoo.so``, ``libfoo.so.1``) is data:
    it is loaded by another object, not imported.
    """
    parts = rel.split("/")
    name = parts[-1]
    if len(parts) >= 2 and parts[-2] == "__pycache__":
        if not name.endswith(".pyc"):
            return None
        parts = [*parts[:-2], name.split(".", 1)[0]]
    elif name.endswith((".py", ".pyc")):
        parts = [*parts[:-1], name.rsplit(".", 1)[0]]
    elif _EXTENSION.match(name) and not name.startswith("lib"):
        parts = [*parts[:-1], name.split(".", 1)[0]]
    else:
        return None
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(p.isidentifier() for p in parts):
        return None  # e.g. a script or a versioned library, never imported by this name
    return ".".join(parts)


def _entries(root: Path, top: Path, packages: set[Path]) -> Iterator[tuple[Path, str | None]]:
    paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
    for path in paths:
        rel = path.relative_to(root).as_posix()
        module = module_of(rel)
        # A module file only counts as one inside a package (or at the top level).
        if module is not None and path.parent != root and path.parent not in packages:
            if path.parent.name != "__pycache__" or path.parent.parent not in packages:
                module = None
        yield path, module


def _package_dirs(top: Path) -> set[Path]:
    """Directories that are packages (an ``__init__`` module), plus ``top`` itself."""
    found = {top}
    for init in top.rglob("__init__.*"):
        is_init = init.name in ("__init__.py", "__init__.pyc") or _EXTENSION.match(init.name)
        if init.parent.name != "__pycache__" and is_init:
            found.add(init.parent)
    return found


def _owner(root: Path, directory: Path, packages: set[Path]) -> str:
    """The dotted name of the package owning a data file: its directory or the nearest
    ancestor that is a package."""
    while directory not in packages and directory.parent != root:
        directory = directory.parent
    return ".".join(directory.relative_to(root).parts)


def _loaded_modules(trace: Trace, traced_root: Path) -> set[str]:
    """Module names of the extension modules the run mapped (they are in sys.modules too;
    this catches a shared object loaded with ctypes under a module-like name)."""
    base = os.path.realpath(traced_root) + os.sep
    names = set()
    for lib in trace.libraries:
        if lib.startswith(base):
            module = module_of(lib[len(base) :])
            if module is not None:
                names.add(module)
    return names


def _remove_empty_dirs(top: Path) -> None:
    for dirpath, _dirnames, _files in sorted(os.walk(top), key=lambda e: -len(e[0])):
        here = Path(dirpath)
        if here != top and not any(here.iterdir()):
            here.rmdir()
    if top.is_dir() and not any(top.iterdir()):
        top.rmdir()
