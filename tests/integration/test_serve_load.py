"""``serve --workers N``: N warm Lambda environments, each answering one request at a time.

A handler that sleeps shows the concurrency (N requests at once finish in about one sleep, each
answered by another runtime process); the README forest under 8 clients for 5 s shows that
sustained load gets only right answers and reaches every worker. The 16-client, 30-second run
against ``mlflow models serve`` is in ``make bench`` (``bench/load.py``).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.infra.serve import serve_bundle
from tests.integration import local_lambda_helpers as h
from tests.parity_corpus import IRIS_BODY

pytestmark = pytest.mark.integration

SLEEPS = """
import os, time

def handler(event, context):
    if event["rawPath"] == "/sleep":
        time.sleep(1.0)
    return {"statusCode": 200, "body": str(os.getpid())}
"""
FOREST_BODY = json.dumps(IRIS_BODY).encode()


@contextmanager
def _serve(outdir: Path, workers: int, quiet: bool = True) -> Iterator[int]:
    ready: list[str] = []
    started, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def on_ready(url: str) -> None:
        ready.append(url)
        started.set()

    def run() -> None:
        try:
            serve_bundle(outdir, "127.0.0.1", 0, workers=workers, on_ready=on_ready, stop=stop,
                         quiet=quiet)  # fmt: skip
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert started.wait(180), "serve did not start within 180 s"
        assert not errors, errors
        yield int(ready[0].rsplit(":", 1)[1])
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive()


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_workers_answer_concurrently_each_one_request_at_a_time(tmp_path: Path) -> None:
    outdir = h.write_build(tmp_path / "b", SLEEPS)
    with _serve(outdir, workers=3) as port:
        started = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            replies = list(pool.map(lambda _: _get(port, "/sleep"), range(3)))
        elapsed = time.monotonic() - started
        assert [status for status, _ in replies] == [200] * 3
        assert len({body for _, body in replies}) == 3  # three runtime processes
        assert elapsed < 2.5, f"3 one-second requests on 3 workers took {elapsed:.1f} s"
        # A fourth request while three are busy waits for an idle environment: 2 rounds.
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda _: _get(port, "/sleep"), range(4)))
        elapsed = time.monotonic() - started
        assert [status for status, _ in replies] == [200] * 4
        assert len({body for _, body in replies}) == 3
        assert 2.0 <= elapsed < 3.5, f"4 one-second requests on 3 workers took {elapsed:.1f} s"


def _client(port: int, until: float, expected: Any, out: list[tuple[int, bool]]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        while time.monotonic() < until:
            conn.request("POST", "/invocations", FOREST_BODY, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            out.append((resp.status, json.loads(body) == expected))
    finally:
        conn.close()


def test_eight_clients_for_five_seconds_on_the_forest(
    forest_build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers: list[tuple[int, bool]] = []
    with _serve(forest_build, workers=2, quiet=False) as port:
        expected = {"predictions": [0, 2]}
        until = time.monotonic() + 5
        threads = [
            threading.Thread(target=_client, args=(port, until, expected, answers))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        assert _get(port, "/ping")[0] == 200  # still serving after the load
    assert len(answers) > 16
    assert all(status == 200 and right for status, right in answers), answers[:5]
    match = re.search(r"requests answered per worker: (\d+), (\d+)$", capsys.readouterr().err, re.M)
    assert match is not None
    per_worker = [int(n) for n in match.groups()]
    assert sum(per_worker) == len(answers) + 1  # the /ping after the load
    assert min(per_worker) > 0, per_worker  # every worker answered


def test_bench_load_section_renders_both_servers() -> None:
    from bench.load import section

    assert section({"load": {}}) == []

    def side(per_s: float, rss: list[float]) -> dict[str, Any]:
        return {"per_s": per_s, "answers": int(per_s * 30), "errors": 0, "rss_mb": rss,
                "rss_growth": rss[-1] / rss[0] - 1}  # fmt: skip

    runs = {
        "readme": {
            "clients": 16,
            "rows": 2,
            "warmup_s": 5.0,
            "duration_s": 30.0,
            "ours_serve": side(300.0, [400.0, 404.0]),
            "mlflow_serve": side(150.0, [500.0, 500.0]),
            "throughput_ratio": 2.0,
        }
    }
    text = "\n".join(section({"load": runs}))  # fmt: skip
    assert "| `mlflow-lambda serve` | 300 | 9000 | 0 | 400 MB | 404 MB | +1.0% |" in text
    assert "| `mlflow models serve` | 150 | 4500 | 0 | 500 MB | 500 MB | +0.0% |" in text
    assert "Throughput, ours / MLflow: **2.00x**." in text
