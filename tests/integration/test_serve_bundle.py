"""``serve`` on a real bundle: the forest's parity corpus over real HTTP on 127.0.0.1 gets the
same answers as the in-process handler, and Lambda's 6 MB limit is a JSON 413."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlflow_lambda.handler.app import create_app
from mlflow_lambda.handler.flavors import load_model
from mlflow_lambda.infra.serve import serve_bundle
from mlflow_lambda.packager.inspection import inspect_model
from tests.mlflow_models import LoggedModel
from tests.parity_corpus import FOREST, Case

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(forest_build: Path) -> Iterator[tuple[str, int]]:
    """``serve`` on a free port in a thread; stopped (runtime and emulator too) at the end."""
    ready: list[str] = []
    stop = threading.Event()
    started = threading.Event()

    def on_ready(url: str) -> None:
        ready.append(url)
        started.set()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            serve_bundle(forest_build, "127.0.0.1", 0, on_ready=on_ready, stop=stop, quiet=True)
        except BaseException as exc:  # reported by the fixture, not lost in the thread
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert started.wait(120), "serve did not start within 120 s"
        assert not errors, errors
        host, port = ready[0].removeprefix("http://").split(":")
        yield host, int(port)
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def in_process(forest: LoggedModel) -> TestClient:
    config: Any = inspect_model(forest.local_dir)
    return TestClient(create_app(load_model(config, forest.local_dir), config))


def request(
    served: tuple[str, int], method: str, path: str, body: bytes = b"", headers: Any = None
) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(*served, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("case", FOREST, ids=lambda c: c.id)
def test_same_answers_as_the_in_process_handler(
    served: tuple[str, int], in_process: TestClient, case: Case
) -> None:
    status, content_type, body = request(
        served, "POST", "/invocations", case.raw_body(), case.headers()
    )
    expected = in_process.post("/invocations", content=case.raw_body(), headers=case.headers())
    assert status == expected.status_code
    assert content_type == expected.headers["content-type"]
    assert json.loads(body) == expected.json()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/ping", 200),
        ("GET", "/health", 200),
        ("GET", "/nope", 404),
        ("GET", "/invocations", 405),
    ],
)
def test_routes(served: tuple[str, int], method: str, path: str, status: int) -> None:
    assert request(served, method, path)[0] == status


def test_version(served: tuple[str, int]) -> None:
    from mlflow_lambda import handler

    status, _, body = request(served, "GET", "/version")
    assert (status, body.decode()) == (200, handler.__version__)


def test_payload_over_lambda_limit_is_a_json_413(served: tuple[str, int]) -> None:
    body = b'{"inputs": [' + b"1.0," * (2 * 1024 * 1024) + b"1.0]}"  # ~8 MB
    status, content_type, answer = request(
        served, "POST", "/invocations", body, {"Content-Type": "application/json"}
    )
    assert (status, content_type) == (413, "application/json")
    assert json.loads(answer)["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_serve_m_packages_then_serves_until_sigterm(
    forest: LoggedModel, cache_dir: Path, tmp_path: Path
) -> None:
    """The CLI path: `serve -m URI` builds into its cache, serves, and stops on SIGTERM."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    cli = str(Path(sys.executable).parent / "mlflow-lambda")
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [cli, "serve", "-m", str(forest.local_dir), "-p", "0"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            # serve -m builds under $XDG_CACHE_HOME/mlflow-lambda: keep the user's cache out
            env={**os.environ, "XDG_CACHE_HOME": str(cache_dir / "xdg")},
        )
    try:
        deadline = time.monotonic() + 240
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            match = re.search(r"on http://127\.0\.0\.1:(\d+) ", log.read_text())
            url = match and int(match.group(1))
            time.sleep(0.5)
        assert url, log.read_text()[-3000:]
        status, _, body = request(("127.0.0.1", url), "GET", "/ping")
        assert (status, body) == (200, b"\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "shutting down" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
