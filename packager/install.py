"""Install a plan's requirements as Linux wheels for the target Lambda, from any host.

Two pip steps, both pinned to the target (``--platform`` for every manylinux tag its glibc
accepts, ``--implementation cp --python-version X.Y --only-binary=:all:``):

1. ``pip install --no-index --find-links <cache> --target <dir> --no-compile``: offline,
   from the local wheel cache. A second build of the same model stops here.
2. On a cache miss only: ``pip download --dest <cache>`` (the same flags), then step 1 again.

``--no-compile`` because pip would write bytecode for the *host* Python (cpython-311 files
in a python3.12 bundle; docs/findings.md); bytecode is compiled later with the target Python.
pip evaluates environment markers against the host even for foreign targets
(pypa/pip#11664; pex works around the same issue, pex-tool/pex#1366), so the default runner
starts pip through a small shim that gives pip's marker evaluation the target's values.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PathDistribution
from pathlib import Path
from typing import Protocol

from packaging.requirements import Requirement
from packaging.tags import parse_tag
from packaging.utils import canonicalize_name

from mlflow_lambda.packager.cachedirs import default_cache_dir
from mlflow_lambda.packager.elfcheck import check_architecture
from mlflow_lambda.packager.errors import BundleCheckError, DependencyError, RuntimeTooOldError
from mlflow_lambda.packager.plan import BundlePlan
from mlflow_lambda.packager.platforms import (
    SUPPORTED_PYTHONS,
    Target,
    marker_environment,
    oldest_python_with_glibc,
    platform_tags,
    supported_tags,
)

MARKERS_ENV = "MLFLOW_LAMBDA_TARGET_MARKERS"

# Run as `python -c`: make pip's (vendored) packaging evaluate markers for the target, then
# run pip exactly as `python -m pip` does (pip/__main__.py).
_PIP_SHIM = f"""
import json, os, sys
from pip._vendor.packaging import markers
_target = json.loads(os.environ[{MARKERS_ENV!r}])
markers.default_environment = lambda: dict(_target)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass(frozen=True)
class PipResult:
    """Exit status and combined stdout/stderr of one pip run."""

    returncode: int
    output: str


class PipRunner(Protocol):
    """Runs pip with ``args`` (what follows ``pip``) for a target with these marker values."""

    def __call__(
        self, args: Sequence[str], *, markers: Mapping[str, str], on_line: Callable[[str], None]
    ) -> PipResult: ...


def run_pip(
    args: Sequence[str], *, markers: Mapping[str, str], on_line: Callable[[str], None]
) -> PipResult:
    """The default :class:`PipRunner`: this interpreter's pip, output streamed to ``on_line``."""
    env = dict(os.environ)
    env[MARKERS_ENV] = json.dumps(dict(markers))
    # `--target` never touches the running environment, so a user's "virtualenv only" guard
    # does not apply; the version check only adds a network call.
    env["PIP_REQUIRE_VIRTUALENV"] = "false"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    command = [sys.executable, "-c", _PIP_SHIM, *args]
    lines: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            on_line(line.rstrip("\n"))
    return PipResult(proc.returncode, "".join(lines))


def pip_target_flags(target: Target) -> list[str]:
    """The flags that pin pip to ``target``'s wheels, whatever the host is."""
    flags: list[str] = []
    for tag in platform_tags(target):
        flags += ["--platform", tag]
    return [
        *flags,
        "--implementation",
        "cp",
        "--python-version",
        target.python_version,
        "--only-binary=:all:",
    ]


def _ignore(message: str) -> None:
    """Default progress sink."""


def install_requirements(
    plan: BundlePlan,
    target: Path,
    *,
    cache_dir: Path | None = None,
    pip: PipRunner | None = None,
    progress: Callable[[str], None] = _ignore,
    refresh: bool = False,
) -> list[tuple[str, str]]:
    """Install ``plan.requirements`` as target-platform wheels into ``target``.

    ``cache_dir`` defaults to :func:`default_cache_dir`; ``pip`` to :func:`run_pip`;
    ``refresh`` downloads even when the cache could satisfy the plan (to pick up newer
    versions of unpinned runtime dependencies). Returns the installed distributions as
    sorted ``(canonical name, version)`` pairs read from the ``*.dist-info`` directories.
    Raises :class:`DependencyError` when pip cannot find wheels or resolve the pins, and
    :class:`BundleCheckError` when the result is not for the target (tags, ELF machine).
    """
    spec = plan.target
    cache = cache_dir or default_cache_dir(plan.python_version, plan.arch)
    runner: PipRunner = pip or run_pip
    markers = marker_environment(spec)
    cache.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    common = ["--progress-bar", "off", *pip_target_flags(spec), *plan.requirements]
    install_args = ["install", "--no-index", "--find-links", str(cache)]
    install_args += ["--target", str(target), "--no-compile", *common]
    started = time.monotonic()
    scripts_dir = target / "bin"
    had_scripts_dir = scripts_dir.exists()

    result: PipResult | None = None
    if not refresh:
        progress(f"installing {len(plan.requirements)} requirements for {spec.describe()}")
        result = runner(install_args, markers=markers, on_line=_quiet)
        if result.returncode != 0 and not _is_cache_miss(result.output):
            raise _dependency_error(result, spec, "install", cache)
    if result is None or result.returncode != 0:
        progress(f"downloading wheels for {spec.describe()} into {cache}")
        download_args = ["download", "--dest", str(cache), *common]
        fetched = runner(download_args, markers=markers, on_line=_download_progress(progress))
        if fetched.returncode != 0:
            newer = _newer_runtime(fetched.output, spec, runner)
            raise _dependency_error(fetched, spec, "download", cache, newer)
        result = runner(install_args, markers=markers, on_line=_quiet)
        if result.returncode != 0:
            raise _dependency_error(result, spec, "install", cache)

    if not had_scripts_dir:
        # `--target` writes console scripts (f2py, fastapi, ...) to <target>/bin with the
        # build host's interpreter in the shebang: never runnable on Lambda, and they would
        # make the bundle's bytes depend on where it was built.
        shutil.rmtree(scripts_dir, ignore_errors=True)
        drop_outside_records(target)
    installed = installed_distributions(target)
    _check_installed(plan, target, installed)
    checked = check_architecture(target, plan.arch)
    progress(
        f"installed {len(installed)} distributions ({checked} shared objects checked for "
        f"{plan.arch}) in {time.monotonic() - started:.1f} s"
    )
    return sorted((name, dist.version) for name, dist in installed.items())


def drop_outside_records(target: Path) -> int:
    """Drop the lines of every ``*.dist-info/RECORD`` under ``target`` that name files outside
    it (``../../bin/f2py,sha256=...``); return how many went.

    Those are the console scripts removed above, and their hashes cover a shebang naming the
    build host's interpreter, so the RECORD bytes would differ from one host path to another
    (PEP 376/627: RECORD lists the installed files; these are no longer installed).
    """
    dropped = 0
    for record in sorted(target.glob("*.dist-info/RECORD")):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith("../")]
        if len(kept) != len(lines):
            record.write_text("".join(kept), encoding="utf-8")
            dropped += len(lines) - len(kept)
    return dropped


def _download_progress(progress: Callable[[str], None]) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        text = line.strip()
        if text.startswith(("Collecting ", "Downloading ")):
            progress(text)

    return on_line


def installed_distributions(target: Path) -> dict[str, PathDistribution]:
    """Canonical name -> distribution, for every ``*.dist-info`` directly under ``target``."""
    found: dict[str, PathDistribution] = {}
    for info in sorted(target.glob("*.dist-info")):
        dist = PathDistribution(info)
        found[canonicalize_name(dist.metadata["Name"])] = dist
    return found


def _check_installed(
    plan: BundlePlan, target: Path, installed: Mapping[str, PathDistribution]
) -> None:
    spec = plan.target
    for line in plan.requirements:
        req = Requirement(line)
        dist = installed.get(canonicalize_name(req.name))
        if dist is None or not req.specifier.contains(dist.version, prereleases=True):
            got = dist.version if dist else "nothing"
            raise DependencyError(
                f"pip installed {got} for {line!r} on {spec.describe()}; "
                "the bundle must carry the version the plan pins"
            )
    asked = {canonicalize_name(Requirement(line).name) for line in plan.requirements}
    if "pyarrow" in installed and "pyarrow" not in asked:  # the generic path may ask for it
        wanted_by = sorted(
            name
            for name, dist in installed.items()
            if any(canonicalize_name(Requirement(r).name) == "pyarrow" for r in dist.requires or [])
        )
        raise DependencyError(
            f"pyarrow was installed for {spec.describe()} (required by "
            f"{', '.join(wanted_by) or 'an unknown package'}); bundles leave it out because "
            "scikit-learn imports it at import time. Pin a version that does not require it"
        )
    accepted = set(supported_tags(spec))
    foreign = []
    for name, dist in installed.items():
        wheel = dist.read_text("WHEEL") or ""
        tags = {
            t
            for line in wheel.splitlines()
            if line.startswith("Tag:")
            for t in parse_tag(line.split(":", 1)[1].strip())
        }
        if tags and not tags & accepted:
            foreign.append(f"{name} ({', '.join(sorted(map(str, tags)))})")
    if foreign:
        raise BundleCheckError(
            f"wheels for another platform were installed into {str(target)!r} for "
            f"{spec.describe()}: {'; '.join(foreign)}"
        )


_NO_MATCH = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>\S+)"
    r"(?: \(from (?P<parent>[^)]*)\))? \(from versions: (?P<versions>[^)]*)\)"
)
_OTHER_PYTHON = re.compile(
    r"Ignored the following versions that require a different python version: (?P<text>.*)"
)
_NETWORK = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "ProxyError",
    "ConnectTimeoutError",
)


def _is_cache_miss(output: str) -> bool:
    return "No matching distribution found" in output or bool(_NO_MATCH.search(output))


def _quiet(line: str) -> None:
    return None


def _newer_runtime(output: str, spec: Target, runner: PipRunner) -> str | None:
    """The Python of the oldest runtime on the newest glibc, if a missing pin has wheels there.

    Only asked when a requirement has no wheel on an older-glibc runtime (python3.10/3.11 on
    Amazon Linux 2): numpy >= 2.3, for one, publishes manylinux_2_27+ wheels only. One
    ``pip index versions`` call, on the failure path only.
    """
    match = _NO_MATCH.search(output)
    newest = max(Target(py, spec.arch).glibc for py in SUPPORTED_PYTHONS)
    if not match or spec.glibc >= newest:
        return None
    python = oldest_python_with_glibc(newest)
    probe = Target(python, spec.arch)
    req = Requirement(match["req"])
    result = runner(
        ["index", "versions", req.name, *pip_target_flags(probe)],
        markers=marker_environment(probe),
        on_line=_quiet,
    )
    listed = re.search(r"Available versions: (.*)", result.output)
    if result.returncode != 0 or not listed:
        return None
    versions = [v.strip() for v in listed[1].split(",")]
    return python if any(req.specifier.contains(v, prereleases=True) for v in versions) else None


def _dependency_error(
    result: PipResult, spec: Target, phase: str, cache: Path, newer_python: str | None = None
) -> DependencyError:
    """Turn pip's failure output into one actionable message."""
    output = result.output
    where = f"{platform_tags(spec)[0]} / {spec.interpreter}"
    match = _NO_MATCH.search(output)
    if match and match["versions"].strip() == "none" and any(n in output for n in _NETWORK):
        return DependencyError(
            f"could not reach the package index to download {match['req']} for "
            f"{spec.describe()}, and the wheel cache {str(cache)!r} does not have it; "
            "check the network or pip's index settings (pip.conf, PIP_INDEX_URL)"
        )
    if match:
        versions = [v.strip() for v in match["versions"].split(",") if v.strip() != "none"]
        parts = [f"no wheel for {match['req']} on {where}"]
        if match["parent"]:
            parts.append(f"required by {match['parent']}")
        if versions:
            parts.append(f"versions with a wheel for this target: {', '.join(versions[-8:])}")
        else:
            parts.append("no version has a wheel for this target")
        other = _OTHER_PYTHON.search(output)
        if other:
            parts.append(f"ignored for needing another Python: {other['text'].strip()}")
        if newer_python:
            newer = Target(newer_python, spec.arch)
            parts.append(
                f"{spec.runtime} runs on {spec.os_name} (glibc {_dotted(spec.glibc)}) and "
                f"{match['req']} publishes wheels only for a newer glibc: build with "
                f"--python {newer_python} ({newer.os_name}, glibc {_dotted(newer.glibc)})"
            )
            return RuntimeTooOldError("; ".join(parts), newer_python)
        parts.append(
            "pin a version that publishes manylinux wheels for "
            f"{spec.runtime} {spec.machine}, or build with another --python/--arch"
        )
        return DependencyError("; ".join(parts))
    if "conflicting dependencies" in output or "ResolutionImpossible" in output:
        causes = _conflict_causes(output)
        return DependencyError(
            f"conflicting requirements for {spec.describe()} ({where}): "
            f"{'; '.join(causes) or 'see pip output'}. Relax or align these pins"
        )
    if "No module named 'pip'" in output or "No module named pip" in output:
        return DependencyError(
            f"pip is not installed in the Python running mlflow-lambda ({sys.executable!r}); "
            f"install it with '{sys.executable} -m ensurepip' and retry"
        )
    tail = "\n".join(output.strip().splitlines()[-20:])
    return DependencyError(
        f"pip {phase} failed for {spec.describe()} (exit {result.returncode}); if the wheel cache "
        f"{str(cache)!r} is damaged, delete it and retry. pip said:\n{tail}"
    )


def _dotted(version: tuple[int, int]) -> str:
    return ".".join(map(str, version))


def _conflict_causes(output: str) -> list[str]:
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("The conflict is caused by"):
            causes = []
            for follow in lines[i + 1 :]:
                if not follow.startswith(" ") or not follow.strip():
                    break
                causes.append(follow.strip())
            return causes
    return []
