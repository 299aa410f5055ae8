"""Compile ``.pyc`` for the *target* Python, deterministically.

Lambda's ``/var/task`` is read-only, so Python cannot write bytecode at cold start: a bundle
without ``.pyc`` imports several times slower (docs/findings.md). Bytecode is version specific
(magic number, PEP 3147 cache tag), so it must be written by an interpreter of the target version;
``find_interpreter`` looks for one and ``compile_tree`` runs ``compileall`` in it.

Modes (PEP 552 invalidation). Measured on this repo's venv tree (numpy 2.4, scipy 1.17,
pandas 3.1, scikit-learn 1.9; pruned, 1,727 ``.py``) importing ``sklearn.ensemble`` and
``pandas`` in a fresh ``python3.11 -I -S -B``: median wall import time and CPU (user+sys)
of separate runs (9 to 21 imports each) on a 2-core host shared with other jobs, and what
the import reads (MB here are MiB, as in ``packager.sizes``):

    mode              wall import          CPU            read at import        MB unzip/zip
    no .pyc           2.47  2.77  2.94 s   3.22  2.95 s   1,118 .py, compiled   192.4 / 60.0
    timestamp         0.75  0.87  0.95 s   1.12  1.10 s   1,118 .pyc            233.3 / 75.0
      after a zip                 2.99 s   3.17  2.91 s   all stale: mtimes reset to 1980
    checked-hash      0.77  0.90  0.98 s   1.15  1.10 s   + 28.1 MB of .py      233.3 / 75.0
    unchecked-hash    0.72  0.86  0.90 s   1.11  1.12 s   1,118 .pyc            233.3 / 75.0
    pyc-only          0.70  0.88  0.91 s   1.08  1.07 s   1,118 .pyc            198.2 / 66.2

- ``unchecked-hash`` (default): never reads a source at import. The task root is read-only
  on Lambda, so the check that ``checked-hash`` makes can only ever pass. What skipping it
  saves is I/O, not CPU (the CPU difference is within this host's noise; wall time was 3-8%
  lower in each run): reading 1,118 sources, 28 MB, on every cold start, which costs more
  where the disk is cold or, for images, lazily loaded. The cost: a source edited inside
  the bundle without recompiling would be ignored, which only a hand-patched artifact can do.
- ``checked-hash``: what the issue first asked for; kept as an option.
- ``pyc-only``: legacy ``foo.pyc`` beside where ``foo.py`` was (``compileall -b``), sources
  removed: 35 MB smaller unzipped (9 MB zipped) and no slower, but tracebacks lose their
  source lines and ``inspect.getsource`` fails, which some libraries call at run time.
  Opt-in, for bundles close to the 250 MB limit, with the import-and-predict check.
- ``timestamp`` is not offered: zips and image contexts reset every mtime (reproducibility),
  which makes timestamp pycs stale, so the bundle would import as slowly as with no bytecode.

Deterministic output: hash-based pycs carry no mtime; ``PYTHONHASHSEED=0`` fixes the order of
set/frozenset constants in marshalled code (bpo-37596); file names inside code objects are
rewritten from the staging directory to ``prefix`` (``/var/task``), so neither the build
directory nor the host leaks into the artifact; one process compiles the files in sorted order
(see ``compile_tree``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

MODES = ("unchecked-hash", "checked-hash", "pyc-only")
DEFAULT_MODE = "unchecked-hash"
TASK_ROOT = "/var/task"  # LAMBDA_TASK_ROOT, in zips and in the Lambda base images
NOT_COMPILED = ("model",)  # model artifacts may hold code the flavour loads its own way

# Runs inside the target interpreter, so it must work on every Lambda Python (3.10+).
_DRIVER = """
import compileall, json, py_compile, sys
args = json.loads(sys.argv[1])
mode = py_compile.PycInvalidationMode[args["invalidation"]]
ok = True
for path in args["paths"]:
    kw = dict(stripdir=args["root"], prependdir=args["prefix"], quiet=1,
              legacy=args["legacy"], invalidation_mode=mode)
    if path.endswith(".py"):
        ok = compileall.compile_file(path, **kw) and ok
    else:
        ok = compileall.compile_dir(path, workers=1, **kw) and ok
print(json.dumps({"ok": bool(ok), "cache_tag": sys.implementation.cache_tag}))
"""

Probe = Callable[[Path], "tuple[str, Path] | None"]


@dataclass(frozen=True)
class CompileResult:
    """What ``compile_tree`` did; ``failed`` lists sources left without bytecode."""

    interpreter: Path
    mode: str
    compiled: int
    failed: list[str]
    sources_removed: int


def interpreter_info(interpreter: Path) -> tuple[str, Path] | None:
    """``("3.12", real executable)`` for a working interpreter, None if it does not run.

    Asking the interpreter for ``sys.executable`` resolves pyenv shims and symlinks.
    """
    code = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"
    try:
        out = subprocess.run(
            [str(interpreter), "-I", "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split("\n")
    if out.returncode != 0 or len(lines) < 2 or not lines[1]:
        return None
    return lines[0], Path(lines[1])


def find_interpreter(
    version: str,
    *,
    search_path: str | None = None,
    pyenv_root: Path | None = None,
    current: Path = Path(sys.executable),
    probe: Probe = interpreter_info,
) -> Path | None:
    """A Python ``version`` (``"3.12"``) interpreter on this host, or None.

    Tried in order: ``python3.12`` on ``search_path`` (default ``PATH``), ``pyenv prefix 3.12``,
    ``$PYENV_ROOT/versions/3.12*/bin/python3.12`` (newest first), ``current`` (this Python).
    Each candidate is run once to confirm its version: pyenv shims are on ``PATH`` for every
    installed version but fail for versions that are not selected.
    """
    if not re.fullmatch(r"3\.\d+", version):
        raise ValueError(f"version must look like '3.12', got {version!r}")
    exe = f"python{version}"
    candidates: list[Path] = []
    if found := shutil.which(exe, path=search_path):
        candidates.append(Path(found))
    root = pyenv_root or Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    if pyenv := shutil.which("pyenv", path=search_path):
        out = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip().splitlines()[0]) / "bin" / exe)
    installed = sorted(
        (root / "versions").glob(f"{version}*/bin/{exe}"),
        key=lambda p: [int(x) if x.isdigit() else -1 for x in re.split(r"[.]", p.parts[-3])],
        reverse=True,
    )
    candidates += [*installed, current]
    for candidate in candidates:
        if candidate.is_file() and (info := probe(candidate)) and info[0] == version:
            return info[1]
    return None


def missing_interpreter_message(version: str) -> str:
    """The warning shown when no Python ``version`` is available to compile bytecode."""
    return (
        f"no Python {version} found on this host (looked for python{version} on PATH, "
        f"pyenv and {sys.executable}); the bundle ships sources only and its cold start "
        f"will be about 2.8x slower, because Lambda's /var/task is read-only and Python cannot "
        f"cache bytecode there. Fix: install Python {version} (e.g. `pyenv install {version}` "
        f"or `uv python install {version}`) and package again."
    )


def compile_tree(
    root: Path,
    interpreter: Path,
    *,
    mode: str = DEFAULT_MODE,
    prefix: str = TASK_ROOT,
    exclude: Collection[str] = NOT_COMPILED,
) -> CompileResult:
    """Compile every ``.py`` under ``root`` (but not ``exclude`` top-level entries) in place.

    ``interpreter`` must be the target Python version; ``prefix`` is where ``root`` will live
    at run time (shown in tracebacks). One process compiles every file in sorted order: the
    bytes of a ``.pyc`` depend on what the compiling process compiled before it, so a worker
    pool would make the output vary from build to build (python/cpython#129724, marshal's
    ``FLAG_REF`` follows reference counts); measured here on scikit-learn with ``-j 2``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    legacy = mode == "pyc-only"
    paths = [
        str(p)
        for p in sorted(root.iterdir())
        if p.name not in exclude and (p.is_dir() or p.suffix == ".py")
    ]
    args = {
        "paths": paths,
        "root": str(root),
        "prefix": prefix,
        "legacy": legacy,
        "invalidation": "UNCHECKED_HASH" if legacy else mode.upper().replace("-", "_"),
    }
    # Not -I: it implies -E, which ignores PYTHONHASHSEED. -S and a cleaned environment keep
    # the interpreter away from site-packages, PYTHONPATH and the staging tree instead.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"  # deterministic order of frozenset constants (bpo-37596)
    out = subprocess.run(
        [str(interpreter), "-S", "-c", _DRIVER, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=interpreter.parent,  # sys.path[0] of -c is the working directory
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"compileall failed in {str(interpreter)!r} (exit {out.returncode}): {out.stderr}"
        )
    cache_tag = json.loads(out.stdout.strip().splitlines()[-1])["cache_tag"]
    compiled, failed, removed = 0, [], 0
    for path in paths:
        sources = [Path(path)] if path.endswith(".py") else sorted(Path(path).rglob("*.py"))
        for source in sources:
            pyc = (
                source.with_suffix(".pyc")
                if legacy
                else source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"
            )
            if not pyc.is_file():
                failed.append(source.relative_to(root).as_posix())
                continue
            compiled += 1
            if legacy:
                source.unlink()
                removed += 1
    return CompileResult(interpreter, mode, compiled, failed, removed)
