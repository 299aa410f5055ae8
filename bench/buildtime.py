"""Build time of ``mlflow-lambda package``, cold and warm.

Each build runs the real CLI in a fresh process with ``HOME`` pointed at a directory of the
bench's own, so the caches under ``~/.cache`` (pip's, our wheel cache, our prepared-deps cache,
the local runtime) start empty without touching the user's. ``PYENV_ROOT`` keeps pointing at
the real pyenv so the target-version interpreter for bytecode is still found.

* ``cold``: every cache empty (wheels come from the package index; here a local mirror, so
  downloads are faster than over the internet).
* ``wheels_cached``: the wheel cache from the cold build kept, the prepared-deps cache removed
  (install, prune, compile and check run again, offline).
* ``warm``: both caches kept: a rebuild of the same model.
* ``warm_import_check``: of each warm rebuild, the seconds of the build's own import check
  (the bundle imported and scoring in a fresh target Python): the floor under which no
  caching can bring a build that checks its bundle. Read from the CLI's timestamped lines.

``run`` times all three (x86_64); ``warm_only`` fills the caches once, untimed, then times warm
rebuilds only (arm64: issue #3's "rebuild from a warm cache in under 15 s, the same for arm64").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bundles import Bundle
from mlflow_lambda.packager import bytecode

VENV_BIN = Path(sys.executable).parent
LIMIT_S = 900

_CHILD = """
import sys
from pathlib import Path
from mlflow_lambda.packager.build import BuildOptions, build
build(BuildOptions(sys.argv[1], Path(sys.argv[2]), arch=sys.argv[3], bytecode_mode=sys.argv[4]),
      progress=lambda m: None, warn=lambda m: None)
"""


def _argv(model_uri: str, outdir: Path, bundle: Bundle) -> list[str]:
    if bundle.bytecode_mode == bytecode.DEFAULT_MODE:
        return [str(VENV_BIN / "mlflow-lambda"), "package", "-m", model_uri, "-o", str(outdir),
                "--arch", bundle.arch]  # fmt: skip
    # The CLI has no bytecode option; build as it does, with the mode the bench had to use.
    return [sys.executable, "-c", _CHILD, model_uri, str(outdir), bundle.arch, bundle.bytecode_mode]


_STAMP = re.compile(r"^\[\s*(?P<s>[0-9.]+)s\] (?P<what>.*)$")
_CHECK = "checking that the bundle imports"
_SKIPPED = "skipped the import check"


def import_check_seconds(stderr: str) -> float | None:
    """From ``package``'s ``[ 12.3s] step`` lines: the import check's start to the next step.

    None when no check ran: an arm64 bundle on an x86_64 host announces the check, then warns
    ``skipped the import check`` before its next step.
    """
    started: float | None = None
    for line in stderr.splitlines():
        if started is not None and _SKIPPED in line:
            return None
        m = _STAMP.match(line)
        if m is None:
            continue
        if started is not None:
            return float(m["s"]) - started
        if m["what"].startswith(_CHECK):
            started = float(m["s"])
    return None


def _timed(argv: list[str], home: Path, checks: list[float] | None = None) -> float:
    env = dict(os.environ)
    env.pop("XDG_CACHE_HOME", None)
    env["PYENV_ROOT"] = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    env["HOME"] = str(home)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=LIMIT_S)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{done.stderr[-2000:]}")
    check = import_check_seconds(done.stderr)
    if checks is not None and check is not None:
        checks.append(check)
    return elapsed


def command(model_uri: str, bundle: Bundle) -> str:
    """The command that was timed, for the report."""
    if bundle.bytecode_mode == bytecode.DEFAULT_MODE:
        return f"mlflow-lambda package -m {model_uri} -o OUTDIR --arch {bundle.arch}"
    return f"build(BuildOptions({model_uri!r}, bytecode_mode={bundle.bytecode_mode!r}))"


def run(
    model_uri: str, bundle: Bundle, *, cold_runs: int, warm_runs: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """Seconds per build: ``cold`` (fresh caches), ``wheels_cached`` and ``warm``."""
    out: dict[str, list[float]] = {
        "cold": [],
        "wheels_cached": [],
        "warm": [],
        "warm_import_check": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        home = Path(tmp) / "home"
        outdir = Path(tmp) / "out"
        for i in range(cold_runs):
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            out["cold"].append(_timed(_argv(model_uri, outdir, bundle), home))
            say(f"  build cold {i + 1}/{cold_runs}: {out['cold'][-1]:.1f} s")
        if not cold_runs:  # still need the wheels: fill the caches once, untimed
            _fill(model_uri, outdir, bundle, home, say)
        deps_cache = home / ".cache" / "mlflow-lambda" / "deps"
        for i in range(warm_runs):
            shutil.rmtree(deps_cache, ignore_errors=True)
            out["wheels_cached"].append(_timed(_argv(model_uri, outdir, bundle), home))
            out["warm"].append(
                _timed(_argv(model_uri, outdir, bundle), home, out["warm_import_check"])
            )
            say(
                f"  build {i + 1}/{warm_runs}: wheels cached {out['wheels_cached'][-1]:.1f} s, "
                f"warm {out['warm'][-1]:.1f} s"
            )
    return {"seconds": out, "command": command(model_uri, bundle), "arch": bundle.arch}


def _fill(
    model_uri: str, outdir: Path, bundle: Bundle, home: Path, say: Callable[[str], None]
) -> None:
    home.mkdir()
    fill_s = _timed(_argv(model_uri, outdir, bundle), home)
    say(f"  build {bundle.arch}, filling the caches (untimed): {fill_s:.1f} s")


def warm_only(
    model_uri: str, bundle: Bundle, *, runs: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """Seconds per ``warm`` rebuild for ``bundle.arch``; one untimed build fills the caches."""
    warm: list[float] = []
    checks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        home, outdir = Path(tmp) / "home", Path(tmp) / "out"
        _fill(model_uri, outdir, bundle, home, say)
        for i in range(runs):
            warm.append(_timed(_argv(model_uri, outdir, bundle), home, checks))
            say(f"  build {bundle.arch} {i + 1}/{runs}: warm {warm[-1]:.1f} s")
    seconds = {"warm": warm, "warm_import_check": checks}
    return {"seconds": seconds, "command": command(model_uri, bundle), "arch": bundle.arch}
