"""The stdlib Runtime API state machine (socket-free), RIE answer classification, reports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from mlflow_lambda.infra.errors import RieUnavailableError
from mlflow_lambda.infra.invoke import describe_failure, format_report
from mlflow_lambda.infra.results import InvokeResult, classify
from mlflow_lambda.infra.rie import listening_ports, locate_rie
from mlflow_lambda.infra.runtime_api import (
    ERROR_TYPE_HEADER,
    MAX_RESPONSE_BYTES,
    Outcome,
    RuntimeApi,
)

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"
NEXT = "/2018-06-01/runtime/invocation/next"


def _post(api: RuntimeApi, path: str, body: bytes, error_type: str | None = None) -> object:
    headers = {ERROR_TYPE_HEADER: error_type} if error_type else {}
    status, _, out = api.dispatch("POST", path, headers, body)
    return status, json.loads(out)


def test_next_hands_out_the_event_with_lambda_headers() -> None:
    api = RuntimeApi(ARN)
    before = int(time.time() * 1000)
    rid = api.submit(b'{"a": 1}', timeout_s=3)
    status, headers, body = api.dispatch("GET", NEXT, {}, b"")
    assert (status, body) == (200, b'{"a": 1}')
    assert headers["Lambda-Runtime-Aws-Request-Id"] == rid
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == ARN
    assert before + 3000 <= int(headers["Lambda-Runtime-Deadline-Ms"]) <= time.time() * 1000 + 3000
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert api.first_poll_at is not None
    assert api.handed_out_at(rid) is not None


def test_response_completes_the_invocation() -> None:
    api = RuntimeApi(ARN)
    rid = api.submit(b"{}", timeout_s=3)
    api.dispatch("GET", NEXT, {}, b"")
    path = f"/2018-06-01/runtime/invocation/{rid}/response"
    assert _post(api, path, b'"ok"') == (202, {"status": "OK"})
    outcome = api.wait(rid, 1)
    assert outcome is not None
    assert (outcome.kind, outcome.body, outcome.error_type) == ("response", b'"ok"', None)
    assert outcome.started_at is not None and outcome.started_at <= outcome.at
    # The same request id cannot be answered twice, nor an unknown one.
    assert _post(api, path, b'"again"') == (
        400, {"errorType": "InvalidRequestID", "errorMessage": f"{rid!r} unknown"},
    )  # fmt: skip


def test_error_keeps_the_error_type_header() -> None:
    api = RuntimeApi(ARN)
    rid = api.submit(b"{}", timeout_s=3)
    api.dispatch("GET", NEXT, {}, b"")
    body = b'{"errorType": "ValueError", "errorMessage": "no"}'
    path = f"/2018-06-01/runtime/invocation/{rid}/error"
    assert _post(api, path, body, "Runtime.Unknown") == (202, {"status": "OK"})
    outcome = api.wait(rid, 1)
    assert outcome is not None
    assert (outcome.kind, outcome.body, outcome.error_type) == ("error", body, "Runtime.Unknown")


def test_oversized_response_is_refused_like_the_rie() -> None:
    api = RuntimeApi(ARN)
    rid = api.submit(b"{}", timeout_s=3)
    api.dispatch("GET", NEXT, {}, b"")
    path = f"/2018-06-01/runtime/invocation/{rid}/response"
    message = "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
    assert _post(api, path, b"x" * (MAX_RESPONSE_BYTES + 1)) == (
        413, {"errorType": "RequestEntityTooLarge", "errorMessage": message},
    )  # fmt: skip
    outcome = api.wait(rid, 1)
    assert outcome is not None
    assert (outcome.kind, outcome.error_type) == ("error", "Function.ResponseSizeTooLarge")
    assert json.loads(outcome.body) == {
        "errorType": "Function.ResponseSizeTooLarge", "errorMessage": message,
    }  # fmt: skip


def test_init_error_ends_the_waiting_invocation() -> None:
    api = RuntimeApi(ARN)
    rid = api.submit(b"{}", timeout_s=3)
    body = b'{"errorType": "Runtime.ImportModuleError", "errorMessage": "x"}'
    headers = {ERROR_TYPE_HEADER: "Runtime.ImportModuleError"}
    assert api.dispatch("POST", "/2018-06-01/runtime/init/error", headers, body)[0] == 202
    outcome = api.wait(rid, 1)
    assert outcome is not None
    assert (outcome.kind, outcome.body, outcome.error_type) == (
        "init_error", body, "Runtime.ImportModuleError",
    )  # fmt: skip
    api.abandon()
    assert api.init_error is None and api.first_poll_at is None


def test_unknown_routes_busy_submit_timeouts_and_close() -> None:
    api = RuntimeApi(ARN)
    assert _post(api, "/2018-06-01/runtime/nope", b"") == (
        404, {"errorType": "NotFound", "errorMessage": "POST /2018-06-01/runtime/nope"},
    )  # fmt: skip
    rid = api.submit(b"{}", timeout_s=3)
    with pytest.raises(RuntimeError, match="already in flight"):
        api.submit(b"{}", timeout_s=3)
    assert api.wait(rid, 0.01) is None
    api.abandon()
    # A /next poll blocks until close() wakes it with 410.
    replies: list[int] = []
    poller = threading.Thread(target=lambda: replies.append(api.dispatch("GET", NEXT, {}, b"")[0]))
    poller.start()
    time.sleep(0.05)
    assert replies == []
    api.close()
    poller.join(timeout=5)
    assert replies == [410]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"statusCode": 200, "body": "{}"}', (None, None)),
        (200, b'"just a string"', (None, None)),
        (200, b"Task timed out after 1.00 seconds",
         ("Sandbox.Timedout", "Task timed out after 1.00 seconds")),
        (200, b'{"errorMessage": "m", "errorType": "ValueError", "requestId": "r", '
              b'"stackTrace": []}', ("ValueError", "m")),
        # A result that merely has an errorType among other keys is still a result.
        (200, b'{"errorType": "x", "errorMessage": "y", "data": 1}', (None, None)),
        (502, b'{"errorMessage": "Unable", "errorType": "Runtime.ImportModuleError"}',
         ("Runtime.ImportModuleError", "Unable")),
        (502, b"gateway", ("Runtime.Unknown", "gateway")),
    ],
)  # fmt: skip
def test_classify_rie_answers(
    status: int, body: bytes, expected: tuple[str | None, str | None]
) -> None:
    assert classify(status, body) == expected


def _result(**over: object) -> InvokeResult:
    values: dict[str, object] = dict(
        payload=b"{}", error_type=None, error_message=None, init_ms=812.345, duration_ms=4.1,
        max_memory_mb=171.4, memory_size_mb=1024, emulator="rie",
    )  # fmt: skip
    values.update(over)
    return InvokeResult(**values)  # type: ignore[arg-type]


def test_format_report_matches_lambdas_report_line() -> None:
    assert format_report(_result()) == (
        "REPORT Duration: 4.10 ms  Memory Size: 1024 MB  Max Memory Used: 171 MB  "
        "Init Duration: 812.35 ms  (aws-lambda-rie)"
    )
    assert format_report(_result(init_ms=None, max_memory_mb=2000.0, emulator="python")) == (
        "REPORT Duration: 4.10 ms  Memory Size: 1024 MB  Max Memory Used: 2000 MB  "
        "(stdlib Runtime API emulator)\nwarning: 2000 MB used is over the 1024 MB configured; "
        "on Lambda this fails with Runtime.OutOfMemory (raise MemorySize)"
    )


def test_describe_failure_says_what_to_do() -> None:
    timed_out = _result(
        error_type="Sandbox.Timedout", error_message="Task timed out after 3.00 seconds"
    )
    assert describe_failure(timed_out, 3) == (
        "Task timed out after 3.00 seconds: raise the timeout (--timeout, or the template's "
        "Timeout parameter)"
    )
    payload = {"errorType": "KeyError", "errorMessage": "'a'", "stackTrace": ['  File "x.py"\n']}
    raised = _result(
        error_type="KeyError", error_message="'a'", payload=json.dumps(payload).encode()
    )
    assert describe_failure(raised, 3) == "the function raised KeyError: 'a'\n  File \"x.py\""


def test_locate_rie_extracts_the_binary_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_LAMBDA_RIE", raising=False)
    calls: list[str] = []

    def fake_pip(version: str, dest: Path) -> None:  # a seam: what pip download leaves behind
        calls.append(version)
        with zipfile.ZipFile(dest / f"aws_sam_cli-{version}-py3-none-any.whl", "w") as zf:
            zf.writestr("samcli/local/rapid/aws-lambda-rie-arm64", b"\x7fELF arm64")

    first = locate_rie(version="9.9.9", cache_dir=tmp_path, arch="arm64", download=fake_pip)
    again = locate_rie(version="9.9.9", cache_dir=tmp_path, arch="arm64", download=fake_pip)
    assert first == again == tmp_path / "9.9.9" / "aws-lambda-rie-arm64"
    assert (first.read_bytes(), first.stat().st_mode & 0o777, calls) == (
        b"\x7fELF arm64", 0o755, ["9.9.9"],
    )  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "9.9.9").iterdir()) == ["aws-lambda-rie-arm64"]
    with pytest.raises(
        RieUnavailableError, match="has no 'samcli/local/rapid/aws-lambda-rie-x86_64'"
    ):
        locate_rie(version="9.9.9", cache_dir=tmp_path, arch="x86_64", download=fake_pip)
    monkeypatch.setenv("MLFLOW_LAMBDA_RIE", str(tmp_path / "missing"))
    with pytest.raises(RieUnavailableError, match="is not an executable file"):
        locate_rie()


def test_outcome_is_immutable() -> None:
    outcome = Outcome("response", b"", None, 1.0)
    with pytest.raises(AttributeError):
        outcome.kind = "error"  # type: ignore[misc]


def test_listening_ports_are_the_processs_own_listening_sockets() -> None:
    """How the RIE's start is judged: a port another process listens on is not the RIE's."""
    with socket.socket() as listening, socket.socket() as bound:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        bound.bind(("127.0.0.1", 0))  # bound, not listening
        other = subprocess.Popen(
            [sys.executable, "-c", "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',0));"
             "s.listen(); print(s.getsockname()[1], flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert other.stdout is not None
            others = int(other.stdout.readline())
            ours = listening_ports(os.getpid())
            assert ours is not None
            assert listening.getsockname()[1] in ours
            assert bound.getsockname()[1] not in ours
            assert others not in ours
            assert others in (listening_ports(other.pid) or set())
        finally:
            other.kill()
            other.wait(timeout=10)
