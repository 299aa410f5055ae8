"""What one local invocation returns, as Lambda reports it, and how to tell an error.

Shared by both emulators (``infra.local``) and their callers (``invoke``, ``serve``, bench).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mlflow_lambda.infra.errors import LocalInvokeError

_ERROR_KEYS = {"errorMessage", "errorType", "requestId", "stackTrace", "cause"}
_TIMED_OUT = re.compile(r"^Task timed out after [\d.]+ seconds$")


@dataclass(frozen=True)
class InvokeResult:
    """One invocation as Lambda reports it: the response payload and the REPORT numbers."""

    payload: bytes
    error_type: str | None  # None on success; e.g. "ValueError", "Runtime.ImportModuleError"
    error_message: str | None
    init_ms: float | None  # None on a warm invocation
    duration_ms: float | None
    max_memory_mb: float | None  # peak RSS (VmHWM) of the runtime process
    memory_size_mb: int
    emulator: str  # "rie" or "python"
    logs: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the function returned normally."""
        return self.error_type is None

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)


class InvocationError(LocalInvokeError):
    """The function failed (raised, did not import, timed out); ``.result`` has the details."""

    def __init__(self, message: str, result: InvokeResult) -> None:
        super().__init__(message)
        self.result = result


def classify(status: int, body: bytes) -> tuple[str | None, str | None]:
    """Tell a function error from a response in what the RIE's invoke endpoint returns.

    The RIE answers 200 for both a result and an error the handler raised (it sets no
    X-Amz-Function-Error header), 200 with plain text on a timeout and 502 on init failures.
    """
    text = body.decode("utf-8", "replace")
    if _TIMED_OUT.match(text.strip()):
        return "Sandbox.Timedout", text.strip()
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and {"errorType", "errorMessage"} <= set(doc) <= _ERROR_KEYS:
        return str(doc["errorType"]), str(doc["errorMessage"])
    if status != 200:
        return "Runtime.Unknown", text
    return None, None
