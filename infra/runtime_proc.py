"""Process helpers for the local Lambda: find the runtime by PID, measure it, stop it.

Linux ``/proc`` only; elsewhere memory is simply not reported. The RIE's REPORT line prints the
configured memory size as "Max Memory Used", so we measure the runtime process's peak resident
set size (``VmHWM`` in ``/proc/<pid>/status``, proc(5)) ourselves.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

_PROC = Path("/proc")
_SAMPLE_EVERY_S = 0.05


def child_pids(parent: int) -> list[int]:
    """PIDs whose parent is ``parent`` (a scan of /proc/*/stat; no psutil needed)."""
    found = []
    for entry in _PROC.glob("[0-9]*/stat"):
        try:
            text = entry.read_text()
        except OSError:
            continue
        # Field 4 is the ppid; field 2 (comm) is parenthesised and may contain spaces.
        fields = text.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry.parent.name))
    return sorted(found)


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set size in MiB, or None if it is gone (or not Linux)."""
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def stop_pids(pids: list[int], *, grace_s: float) -> None:
    """SIGTERM each PID, wait up to ``grace_s`` for them to exit, then SIGKILL the rest."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM if grace_s > 0 else signal.SIGKILL)
            alive.append(pid)
        except ProcessLookupError:
            pass
    end = time.monotonic() + grace_s
    while alive and time.monotonic() < end:
        time.sleep(0.05)
        alive = [pid for pid in alive if _running(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _running(pid: int) -> bool:
    try:
        # A zombie (our unreaped child) counts as gone: it holds no memory or ports.
        state = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


class MemorySampler:
    """Track the peak RSS of a runtime process (``pid``, or the child of ``parent``) in a thread.

    Sampling matters when the runtime is killed (a timeout): its VmHWM is gone afterwards.
    """

    def __init__(self, *, pid: int | None = None, parent: int | None = None) -> None:
        self._pid, self._parent = pid, parent
        self._peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        pids = [self._pid] if self._pid is not None else child_pids(self._parent or 0)
        for pid in pids:
            value = peak_rss_mb(pid)
            if value is not None and (self._peak is None or value > self._peak):
                self._peak = value

    def _run(self) -> None:
        while not self._stop.wait(_SAMPLE_EVERY_S):
            self._sample()

    def stop(self) -> float | None:
        """Take a last sample, stop the thread and return the peak in MiB (None if unknown)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
        return self._peak
