"""``serve`` on a busy port fails at once, in one line that names the port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlflow_lambda.infra.errors import LocalInvokeError
from mlflow_lambda.infra.serve import bind

CLI = str(Path(sys.executable).parent / "mlflow-lambda")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:  # a real listener, as another server would hold it
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_bind_names_the_busy_port(busy_port: int) -> None:
    with pytest.raises(LocalInvokeError, match=f"cannot listen on 127.0.0.1:{busy_port}: "):
        bind("127.0.0.1", busy_port)


def test_bind_takes_a_free_port() -> None:
    server = bind("127.0.0.1", 0)
    try:
        assert server.server_address[1] > 0
    finally:
        server.server_close()


@pytest.mark.parametrize("source", [["build/"], ["-m", "models:/MyRandomForest/latest"]])
def test_the_cli_fails_at_once_in_one_line(
    busy_port: int, source: list[str], tmp_path: Path
) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [CLI, "serve", *source, "-p", str(busy_port)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"127.0.0.1:{busy_port}" in lines[0] and "-p/--port" in lines[0]
    assert "Traceback" not in done.stderr
    # The port is checked before the bundle is opened or the model is resolved: nothing but
    # the CLI's own start-up (imports) stands before the answer.
    assert took < 15, took
