"""Several warm environments of one function, as Lambda scales a function under load.

Lambda answers concurrent requests with concurrent execution environments, each handling one
request at a time (AWS docs, "Understanding Lambda function scaling"). ``LocalLambdaPool`` does
the same locally: ``size`` ``LocalLambda`` instances of one task root, each with a /tmp of its
own; a request takes an idle instance, or waits for one when all are busy (where Lambda would
start another environment, up to the account's concurrency). Every request goes through the
same runtime path as ``invoke``: the emulator, awslambdaric, the bundle's entry point.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlflow_lambda.infra.local import LocalLambda
from mlflow_lambda.infra.results import InvokeResult


def default_workers() -> int:
    """One environment per CPU this process may run on (at least one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class LocalLambdaPool:
    """``size`` environments of the function ``first`` runs (``first`` is started already and
    stays the caller's to close); use as a context manager. ``invoke`` is thread-safe."""

    def __init__(self, first: LocalLambda, size: int) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one environment, not {size!r}")
        self.size = size
        self._first = first
        self._instances: list[LocalLambda] = [first]
        self._tmp_dirs: list[Path] = []
        self._idle: queue.Queue[int] = queue.Queue()
        self._count_lock = threading.Lock()
        self.answered = [0] * size  # requests answered by each environment, for reports

    @property
    def timeout_s(self) -> int:
        return self._first.timeout_s

    @property
    def emulator(self) -> str:
        return self._first.emulator

    def __enter__(self) -> LocalLambdaPool:
        try:
            for _ in range(self.size - 1):
                tmp = Path(tempfile.mkdtemp(prefix="mlflow-lambda-tmp-"))
                self._tmp_dirs.append(tmp)
                fn = self._first.sibling(tmp)
                self._instances.append(fn)
                fn.start()
        except BaseException:
            self.close()
            raise
        for index in range(self.size):
            self._idle.put(index)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def warm(self, event: Any) -> list[InvokeResult]:
        """Invoke every environment once with ``event``, concurrently (their cold starts)."""
        taken = [self._idle.get() for _ in range(self.size)]
        try:
            with ThreadPoolExecutor(self.size) as executor:
                return list(executor.map(lambda i: self._instances[i].invoke(event), taken))
        finally:
            for index in taken:
                self._idle.put(index)

    def invoke(self, event: Any) -> InvokeResult:
        """Invoke an idle environment with ``event``, waiting for one if all are busy."""
        index = self._idle.get()
        try:
            result = self._instances[index].invoke(event)
        finally:
            self._idle.put(index)
        with self._count_lock:
            self.answered[index] += 1
        return result

    def close(self) -> None:
        """Stop every environment this pool started and remove their /tmp folders."""
        for fn in self._instances[1:]:
            fn.close()
        for tmp in self._tmp_dirs:
            shutil.rmtree(tmp, ignore_errors=True)
        self._instances = self._instances[:1]
        self._tmp_dirs = []
