"""Two builds of the same pins at once: the prepared-deps entry is prepared under a lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlflow_lambda.packager.deps import _exclusive

TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a") as f:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("held")
    else:
        print("free")
"""


def _other_process(lock: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(lock)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_lock_keeps_another_build_out_until_released(tmp_path: Path) -> None:
    lock = tmp_path / ".key.lock"
    with _exclusive(lock):
        assert _other_process(lock) == "held"
    assert _other_process(lock) == "free"
