"""The interpreter and the folder that play Lambda's ``/var/lang`` and ``/var/runtime``.

On Lambda the function's Python sees ``/var/task`` (the bundle), ``/var/runtime`` (the runtime
interface client, boto3 and botocore, installed by AWS) and the standard library — nothing else.
Locally we start the interpreter with ``-I -S`` (isolated mode, no ``site``: neither host
site-packages nor ``PYTHON*`` variables reach it) and a tiny bootstrap that puts the task root
and a cached runtime folder in front of the stdlib.

The runtime folder holds ``awslambdaric`` and ``boto3`` with their dependencies, pinned to the
versions installed on the host. For the host's own Python it is copied from the host's
site-packages; for another Python version it is installed from PyPI with pip's target-platform
options, since ``awslambdaric`` 4.x needs its compiled ``runtime_client`` extension.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlflow_lambda.infra.errors import LocalInvokeError
from mlflow_lambda.packager.cachedirs import cache_root
from mlflow_lambda.packager.platforms import host_arch

# What AWS's managed Python runtime provides beside the stdlib (Lambda docs, "Building Lambda
# functions with Python": the runtime includes the SDK for Python, boto3 and botocore).
RUNTIME_PACKAGES = ("awslambdaric", "boto3")
BOOTSTRAP_NAME = "bootstrap.py"
# Plays /var/runtime/bootstrap: -I -S left sys.path as the stdlib only; put the task root first
# and the runtime folder second, as Lambda's Python runtime orders them.
BOOTSTRAP_SOURCE = '''\
"""mlflow-lambda's stand-in for /var/runtime/bootstrap (generated)."""
import os
import sys

sys.path[:0] = [os.environ["LAMBDA_TASK_ROOT"], os.environ["LAMBDA_RUNTIME_DIR"]]
from awslambdaric.__main__ import main

main(sys.argv)
'''
_PIP_TIMEOUT_S = 600
# Host variables a real function would have from its execution role or its configuration.
_PASSTHROUGH = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL")  # fmt: skip

# (python version "3.12", arch, pinned requirements, target dir) -> None
PipTargetInstaller = Callable[[str, str, list[str], Path], None]


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter that can run a bundle, with its ``major.minor`` version."""

    path: Path
    version: str


def host_interpreter() -> Interpreter:
    """The interpreter running this tool (its base executable, not the venv's launcher)."""
    exe = getattr(sys, "_base_executable", None) or sys.executable
    return Interpreter(Path(exe), f"{sys.version_info[0]}.{sys.version_info[1]}")


def _candidates(version: str) -> Iterable[str]:
    name = f"python{version}"
    found = shutil.which(name)
    if found:
        yield found
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    yield from sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/{name}"), reverse=True)
    uv = Path.home() / ".local/share/uv/python"
    yield from sorted(glob.glob(f"{uv}/cpython-{version}.*/bin/{name}"), reverse=True)
    yield from (f"/usr/local/bin/{name}", f"/usr/bin/{name}")


def find_python(version: str | None) -> Interpreter:
    """Find an interpreter for ``version`` (``"3.12"``); ``None`` means the host's own.

    Raises LocalInvokeError naming where it looked when there is none.
    """
    host = host_interpreter()
    if version is None or version == host.version:
        return host
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    for candidate in _candidates(version):
        try:
            out = subprocess.run(
                [candidate, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return Interpreter(Path(candidate), version)
    raise LocalInvokeError(
        f"the bundle was built for Python {version} but this host runs Python {host.version} "
        f"and no python{version} was found (looked on PATH, in ~/.pyenv/versions, uv's Python "
        f"folder and /usr/bin); install Python {version}, or rebuild the bundle with "
        f"--python {host.version} to run it here"
    )


def _closure(names: Iterable[str]) -> list[md.Distribution]:
    """The installed distributions ``names`` need at run time (markers evaluated, no extras)."""
    seen: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        key = canonicalize_name(todo.pop())
        if key in seen:
            continue
        try:
            dist = md.distribution(key)
        except md.PackageNotFoundError as exc:
            raise LocalInvokeError(
                f"{key!r} is not installed on the host, yet the local Lambda runtime needs it; "
                "install mlflow-lambda with its dependencies (pip install mlflow-lambda)"
            ) from exc
        seen[key] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return [seen[k] for k in sorted(seen)]


def pip_install_target(version: str, arch: str, pins: list[str], dest: Path) -> None:
    """Install ``pins`` for CPython ``version`` on manylinux ``arch`` into ``dest`` with pip."""
    machine = "aarch64" if arch == "arm64" else arch
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target"]
    cmd += [str(dest), "--only-binary=:all:", "--implementation", "cp", "--python-version"]
    cmd.append(version)
    for tag in ("manylinux_2_28", "manylinux_2_17", "manylinux2014", "manylinux_2_5"):
        cmd += ["--platform", f"{tag}_{machine}"]
    try:
        proc = subprocess.run(cmd + pins, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalInvokeError(
            f"could not run pip for the Python {version} runtime: {exc}"
        ) from exc
    if proc.returncode != 0:
        tail = " / ".join(proc.stderr.strip().splitlines()[-3:])
        raise LocalInvokeError(
            f"pip could not install the Lambda runtime client for Python {version}: {tail!r}"
        )


def _copy_dist(dist: md.Distribution, dest: Path) -> None:
    for rel in dist.files or []:
        parts = Path(str(rel)).parts
        # Skip console scripts outside site-packages ("../../bin/...") and stale bytecode.
        if not parts or parts[0] == ".." or "__pycache__" in parts:
            continue
        src = Path(str(dist.locate_file(rel)))
        if src.is_file():
            out = dest.joinpath(*parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)


def ensure_runtime_dir(
    python: Interpreter,
    *,
    cache_dir: Path | None = None,
    install: PipTargetInstaller = pip_install_target,
) -> Path:
    """Return a cached folder that plays ``/var/runtime`` for ``python``; build it once."""
    dists = _closure(RUNTIME_PACKAGES)
    pins = [f"{d.metadata['Name']}=={d.version}" for d in dists]
    arch = host_arch()
    digest = hashlib.sha256("\n".join([*pins, BOOTSTRAP_SOURCE]).encode()).hexdigest()[:12]
    root = cache_dir or cache_root() / "runtime"
    target = root / f"py{python.version}-{arch}-{digest}"
    if (target / BOOTSTRAP_NAME).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    try:
        if python.version == host_interpreter().version:
            for dist in dists:
                _copy_dist(dist, staging)
        else:
            install(python.version, arch, pins, staging)
        (staging / BOOTSTRAP_NAME).write_text(BOOTSTRAP_SOURCE, encoding="utf-8")
        # AWS ships /var/runtime with bytecode; the runtime runs with -B, so compile it now.
        compile_cmd = [str(python.path), "-I", "-m", "compileall", "-q", "-j", "0", str(staging)]
        subprocess.run(compile_cmd, capture_output=True, timeout=_PIP_TIMEOUT_S, check=False)
        try:
            staging.rename(target)
        except OSError:
            if not (target / BOOTSTRAP_NAME).is_file():  # not a concurrent build that won
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def lambda_env(
    python: Interpreter, task_root: Path, runtime_dir: Path, tmp_dir: Path, *, handler: str,
    function_name: str, memory_mb: int, timeout_s: int, region: str, extra: dict[str, str],
) -> dict[str, str]:  # fmt: skip
    """The runtime's whole environment: Lambda's defined variables, not the host's.

    Names and values follow the Lambda docs, "Defined runtime environment variables"; host AWS
    credentials and endpoints pass through (a deployed function has its role's), then ``extra``.
    """
    task, rt = str(task_root), str(runtime_dir)
    env = {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}
    env.update({
        "LAMBDA_TASK_ROOT": task,
        "LAMBDA_RUNTIME_DIR": rt,
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{python.version}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local/[$LATEST]0",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": f"{python.path.parent}:/usr/local/bin:/usr/bin:/bin",
        "LD_LIBRARY_PATH": f"{rt}:{rt}/lib:{task}:{task}/lib",
        "PYTHONPATH": rt,  # as on Lambda; -I makes the interpreter itself ignore it
        "TMPDIR": str(tmp_dir),
    })  # fmt: skip
    env.update(extra)
    return env
