"""Locate (and on first use fetch) the AWS Lambda Runtime Interface Emulator.

The RIE is the Go program AWS ships inside every Lambda base image as
``/usr/local/bin/aws-lambda-rie``: it plays the Lambda service for one function, serving the
Runtime API to the runtime process and an Invoke endpoint to us. We need no Docker to get it:
the ``aws-sam-cli`` wheel on PyPI carries the same static binaries for both architectures under
``samcli/local/rapid/``. We ``pip download`` that one wheel (no dependencies), pull out the
binary for the host's architecture and cache it under
``~/.cache/mlflow-lambda/rie/<sam-cli version>/``.

Set ``MLFLOW_LAMBDA_RIE`` to the path of an ``aws-lambda-rie`` binary to skip the download.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from mlflow_lambda.infra.errors import RieUnavailableError
from mlflow_lambda.packager.cachedirs import cache_root
from mlflow_lambda.packager.platforms import host_arch

# aws-sam-cli release whose wheel we take the RIE from; bump deliberately (the RIE's log format,
# which infra.local parses for init and invoke durations, is checked by the integration tests).
SAM_CLI_VERSION = "1.170.0"
RIE_ENV_VAR = "MLFLOW_LAMBDA_RIE"
_PIP_TIMEOUT_S = 300

# (version, destination dir) -> None; downloads the aws-sam-cli wheel into the directory.
PipDownloader = Callable[[str, Path], None]


def pip_download_sam_cli(version: str, dest: Path) -> None:
    """Download the ``aws-sam-cli`` wheel (without dependencies) into ``dest`` with pip."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += [f"aws-sam-cli=={version}", "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RieUnavailableError(
            f"could not run pip to fetch aws-sam-cli=={version}: {exc}"
        ) from exc
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        raise RieUnavailableError(
            f"pip could not download aws-sam-cli=={version} (which carries the Lambda Runtime "
            f"Interface Emulator): {' / '.join(tail)!r}; set {RIE_ENV_VAR} to an aws-lambda-rie "
            "binary, or use emulator='python'"
        )


def locate_rie(
    *,
    version: str = SAM_CLI_VERSION,
    cache_dir: Path | None = None,
    arch: str | None = None,
    download: PipDownloader = pip_download_sam_cli,
) -> Path:
    """Return the path of an executable ``aws-lambda-rie`` for this host, fetching it once.

    Raises RieUnavailableError on a non-Linux host or when the wheel cannot be downloaded.
    """
    override = os.environ.get(RIE_ENV_VAR)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RieUnavailableError(f"{RIE_ENV_VAR}={override!r} is not an executable file")
        return path
    if sys.platform != "linux":
        # The RIE is a Linux ELF binary; macOS and Windows hosts use the stdlib emulator.
        raise RieUnavailableError(f"the RIE runs on Linux only, not on {sys.platform!r}")
    arch = arch or host_arch()
    if arch not in ("x86_64", "arm64"):
        raise RieUnavailableError(f"no RIE build for architecture {arch!r}")
    target_dir = (cache_dir or cache_root() / "rie") / version
    target = target_dir / f"aws-lambda-rie-{arch}"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".fetch-") as tmp:
        download(version, Path(tmp))
        wheels = sorted(Path(tmp).glob("aws_sam_cli-*.whl"))
        if not wheels:
            raise RieUnavailableError(f"pip left no aws-sam-cli wheel in {tmp!r}")
        member = f"samcli/local/rapid/aws-lambda-rie-{arch}"
        partial = Path(tmp) / target.name
        try:
            with (
                zipfile.ZipFile(wheels[0]) as zf,
                zf.open(member) as src,
                partial.open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
        except KeyError as exc:
            raise RieUnavailableError(f"{wheels[0].name!r} has no {member!r}") from exc
        partial.chmod(0o755)
        # Atomic: a concurrent fetch of the same version leaves one complete binary.
        os.replace(partial, target)
    return target


# -- launching it: ports and the reason it gave up ---------------------------------------
def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago (all held open while choosing)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def listening_ports(pid: int) -> set[int] | None:
    """The TCP ports process ``pid`` listens on (Linux ``/proc``), or None where /proc cannot say.

    Whether a port accepts connections does not say who holds it: the RIE binds its two
    addresses one after the other, and when another process holds the second, a connection to
    the first succeeds a moment before the RIE panics.
    """
    try:
        inodes = set()
        for fd in os.scandir(f"/proc/{pid}/fd"):
            target = os.readlink(fd.path)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as rows:
                next(rows)  # the header
                for row in rows:
                    fields = row.split()
                    if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                        ports.add(int(fields[1].rpartition(":")[2], 16))
        return ports
    except (OSError, IndexError, ValueError):
        return None


def rie_reason(output: str) -> str:
    """The RIE's own PANIC/ERROR/FATAL line (not the Go stack after it), else its last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in lines:
        if re.search(r"\[(PANIC|FATAL|ERROR)\]", line):
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"
