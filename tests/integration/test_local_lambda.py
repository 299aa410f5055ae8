"""The local Lambda: the real RIE and the stdlib emulator driving the real awslambdaric."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.handler import ENTRY_POINT
from mlflow_lambda.infra.errors import LocalInvokeError
from mlflow_lambda.infra.invoke import invoke_bundle, load_event
from mlflow_lambda.infra.local import LocalLambda
from mlflow_lambda.infra.results import InvocationError
from mlflow_lambda.infra.runtime_dir import ensure_runtime_dir, find_python, host_interpreter
from tests.integration import local_lambda_helpers as h

pytestmark = pytest.mark.integration
EMULATORS = ["rie", "python"]


@pytest.fixture(scope="module")
def stdlib_path() -> list[str]:
    """What ``-I -S`` leaves on sys.path for the host interpreter: the stdlib only."""
    code = "import sys, json; print(json.dumps(sys.path))"
    out = subprocess.run(
        [str(host_interpreter().path), "-I", "-S", "-c", code],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    paths: list[str] = json.loads(out.stdout)
    return paths


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("roots")
    sources = {"echo": h.ECHO, "raises": h.RAISES, "yaml": h.IMPORTS_HOST_ONLY}
    sources["pandas"] = h.IMPORTS_PANDAS
    return {name: h.write_task_root(base / name, src) for name, src in sources.items()}


@pytest.fixture(params=EMULATORS)
def echo_fn(request: pytest.FixtureRequest, roots: dict[str, Path]) -> Iterator[LocalLambda]:
    with LocalLambda(roots["echo"], emulator=request.param, memory_mb=256, timeout_s=2) as fn:
        yield fn


def test_cold_then_warm_sees_only_task_root_runtime_dir_and_stdlib(
    echo_fn: LocalLambda, roots: dict[str, Path], stdlib_path: list[str]
) -> None:
    cold = echo_fn.invoke({"n": 1})
    warm = echo_fn.invoke({"sleep": 0.01, "n": 2})
    assert (cold.error_type, warm.error_type) == (None, None)
    runtime_dir = ensure_runtime_dir(host_interpreter())
    task = str(roots["echo"].resolve())
    body = cold.json()
    tmpdir = body["env"]["TMPDIR"]
    assert body == {
        "event": {"n": 1},
        "memory_limit_in_mb": "256",
        "function_name": "mlflow-lambda-local",
        "remaining_ms_le_timeout": True,
        "sys_path": [task, str(runtime_dir), *stdlib_path],
        "python": host_interpreter().version,
        "cwd": task,
        "env": {
            "LAMBDA_TASK_ROOT": task,
            "LAMBDA_RUNTIME_DIR": str(runtime_dir),
            "_HANDLER": ENTRY_POINT,
            "AWS_LAMBDA_FUNCTION_NAME": "mlflow-lambda-local",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "2",
            "AWS_REGION": "us-east-1",
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "TMPDIR": tmpdir,
            "MODEL_DIR": None,
            "VIRTUAL_ENV": None,
            "PYTHONHOME": None,
        },
        "task_root_writable_bits": oct(roots["echo"].stat().st_mode & 0o222),
        "tmp_written": "ok",
    }
    assert not tmpdir.startswith(task)
    assert warm.json()["event"] == {"sleep": 0.01, "n": 2}
    # A cold start reports init; a warm one does not (Lambda's REPORT line does the same).
    assert cold.init_ms is not None and cold.init_ms > 0
    assert warm.init_ms is None
    assert warm.duration_ms is not None and warm.duration_ms >= 10
    assert cold.max_memory_mb is not None and 5 < cold.max_memory_mb < 200
    assert (cold.emulator, cold.memory_size_mb) == (echo_fn.emulator, 256)


@pytest.mark.parametrize("emulator", EMULATORS)
def test_function_error_is_reported_with_type_message_and_log(
    emulator: str, roots: dict[str, Path]
) -> None:
    with LocalLambda(roots["raises"], emulator=emulator) as fn:
        result = fn.invoke({"x": 1})
    assert (result.error_type, result.error_message) == ("ValueError", "bad input: {'x': 1}")
    doc = result.json()
    assert (doc["errorType"], doc["errorMessage"]) == ("ValueError", "bad input: {'x': 1}")
    assert any(line.startswith("[ERROR] ValueError: bad input") for line in result.logs)


@pytest.mark.parametrize("emulator", EMULATORS)
@pytest.mark.parametrize(("root", "module"), [("yaml", "yaml"), ("pandas", "pandas")])
def test_host_only_packages_do_not_leak_in(
    emulator: str, root: str, module: str, roots: dict[str, Path]
) -> None:
    __import__(module)  # the host has it ...
    with LocalLambda(roots[root], emulator=emulator) as fn:
        first = fn.invoke({})
        again = fn.invoke({})  # ... the function never does: every cold start fails the same way
    expected = (
        "Unable to import module 'mlflow_lambda.handler.lambda_function': "
        f"No module named '{module}'"
    )
    for result in (first, again):
        assert (result.error_type, result.error_message) == ("Runtime.ImportModuleError", expected)
        assert result.init_ms is not None


@pytest.mark.parametrize("emulator", EMULATORS)
def test_timeout_kills_the_runtime_and_the_next_invoke_is_cold(
    emulator: str, roots: dict[str, Path]
) -> None:
    with LocalLambda(roots["echo"], emulator=emulator, timeout_s=1) as fn:
        slow = fn.invoke({"sleep": 5})
        fast = fn.invoke({"n": 3})
    message = "Task timed out after 1.00 seconds"
    assert (slow.error_type, slow.error_message, slow.payload) == (
        "Sandbox.Timedout", message, message.encode(),
    )  # fmt: skip
    assert slow.duration_ms == pytest.approx(1000.0, abs=50)
    assert fast.error_type is None and fast.json()["event"] == {"n": 3}
    assert fast.init_ms is not None  # Lambda resets the environment after a timeout


def test_close_stops_every_process(roots: dict[str, Path]) -> None:
    from mlflow_lambda.infra.runtime_proc import child_pids

    fn = LocalLambda(roots["echo"], emulator="rie")
    fn.start()
    try:
        fn.invoke({})
        assert fn._rie is not None
        rie_pid = fn._rie.pid
        runtime = child_pids(rie_pid)
        assert len(runtime) == 1
    finally:
        fn.close()
    for pid in [rie_pid, *runtime]:
        assert not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize("taken_attempts", [1, 3])
def test_rie_retries_on_fresh_ports_when_one_is_taken(
    taken_attempts: int, roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process can take a chosen port before the RIE binds it: the RIE panics (exit 2)."""
    from mlflow_lambda.infra import local

    real = local.free_ports
    calls = []
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]

        def ports(count: int) -> list[int]:
            calls.append(count)
            first = real(count)
            return [first[0], taken] if len(calls) <= taken_attempts else first

        monkeypatch.setattr(local, "free_ports", ports)
        fn = LocalLambda(roots["echo"], emulator="rie")
        if taken_attempts == 3:  # every attempt: a one-line reason, not a Go stack
            with pytest.raises(
                local.RieUnavailableError, match=r"exit.*code 2: .*address already in use"
            ):
                fn.start()
            assert len(calls) == 3
            return
        with fn:
            assert fn.invoke({"n": 5}).json()["event"] == {"n": 5}
        assert len(calls) == 2


# -- invoke_bundle: build outputs as `mlflow-lambda package` writes them ----------------------
def _manifest(**over: Any) -> dict[str, Any]:
    return {"python_version": h.host_python(), "arch": h.host_arch(), **over}


@pytest.mark.parametrize("target", ["zip", "image"])
def test_invoke_bundle_reads_template_and_localizes_paths(target: str, tmp_path: Path) -> None:
    outdir = h.write_build(
        tmp_path / "build", h.ECHO, target=target, manifest=_manifest(),
        template=h.sam_template(512, 7, {"MODEL_DIR": "/tmp/model"}),
    )  # fmt: skip
    result = invoke_bundle(outdir, event={"rows": [[1, 2]]})
    body = result.json()
    tmpdir = body["env"]["TMPDIR"]
    assert (body["event"], body["memory_limit_in_mb"]) == ({"rows": [[1, 2]]}, "512")
    assert body["env"]["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "7"
    assert body["env"]["MODEL_DIR"] == f"{tmpdir}/model"
    assert body["task_root_writable_bits"] == "0o0"  # chmod -R a-w, as /var/task
    assert not Path(body["cwd"]).exists()  # the temp task root is gone afterwards


def test_invoke_bundle_raises_clear_errors(tmp_path: Path) -> None:
    raising = h.write_build(tmp_path / "raises", h.RAISES, manifest=_manifest())
    with pytest.raises(InvocationError, match=r"^the function raised ValueError: bad input: \{\}"):
        invoke_bundle(raising, event={})
    missing = h.write_build(tmp_path / "yaml", h.IMPORTS_HOST_ONLY)
    with pytest.raises(LocalInvokeError) as info:
        invoke_bundle(missing, event={})
    assert str(info.value).startswith(
        "the handler failed to import (Runtime.ImportModuleError): Unable to import module "
        "'mlflow_lambda.handler.lambda_function': No module named 'yaml'. On Lambda"
    )
    assert isinstance(info.value, InvocationError)
    assert info.value.result.error_type == "Runtime.ImportModuleError"


def test_invoke_bundle_refuses_other_arch_and_missing_python(tmp_path: Path) -> None:
    other = "arm64" if h.host_arch() == "x86_64" else "x86_64"
    wrong_arch = h.write_build(tmp_path / "a", h.ECHO, manifest=_manifest(arch=other))
    with pytest.raises(
        LocalInvokeError, match=f"built for {other} .* this host is {h.host_arch()}"
    ):
        invoke_bundle(wrong_arch, event={})
    wrong_py = h.write_build(tmp_path / "p", h.ECHO, manifest=_manifest(python_version="3.99"))
    with pytest.raises(
        LocalInvokeError, match=r"built for Python 3\.99 .* no python3\.99 was found"
    ):
        invoke_bundle(wrong_py, event={})
    with pytest.raises(LocalInvokeError, match=r"neither bundle\.zip nor image"):
        invoke_bundle(tmp_path, event={})


def test_invoke_bundle_runs_another_python_version(tmp_path: Path) -> None:
    other = "3.12" if h.host_python() != "3.12" else "3.11"
    try:
        find_python(other)
    except LocalInvokeError:
        pytest.skip(f"no python{other} on this host")
    outdir = h.write_build(tmp_path / "b", h.ECHO, manifest=_manifest(python_version=other))
    result = invoke_bundle(outdir, event={"n": 1})
    assert result.json()["python"] == other


def test_load_event_wraps_data_files_and_reads_event_files(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("a,b\n1,2\n")
    event = load_event(tmp_path, data_file=tmp_path / "p.csv", event_type="v2")
    assert (event["body"], event["headers"]["content-type"]) == ("a,b\n1,2\n", "text/csv")
    (tmp_path / "p.json").write_text('{"inputs": [[1]]}')
    assert load_event(tmp_path, data_file=tmp_path / "p.json", event_type="direct") == {
        "inputs": [[1]]
    }
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "invocations.json").write_text('{"version": "2.0"}')
    assert load_event(tmp_path) == {"version": "2.0"}
    with pytest.raises(LocalInvokeError, match=r"use a \.json or \.csv file"):
        load_event(tmp_path, data_file=tmp_path / "p.txt")


def test_auto_falls_back_to_the_stdlib_emulator_when_the_rie_cannot_run(
    roots: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "aws-lambda-rie"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("MLFLOW_LAMBDA_RIE", str(broken))
    with LocalLambda(roots["echo"], emulator="auto") as fn:
        result = fn.invoke({"n": 1})
    assert (fn.emulator, result.emulator, result.json()["event"]) == ("", "python", {"n": 1})
    with pytest.raises(LocalInvokeError, match="the RIE exited with code 3"):
        LocalLambda(roots["echo"], emulator="rie").start()
