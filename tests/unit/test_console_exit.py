"""The console script ends its process without a collection across everything it imported."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import atexit, gc, sys
from mlflow_lambda.infra.cli import console_main
atexit.register(lambda: print("frozen", gc.get_freeze_count(), file=sys.stderr))
sys.argv = ["mlflow-lambda", *sys.argv[1:]]
console_main()
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=60
    )


def test_the_console_script_freezes_before_exit_on_success_and_on_error() -> None:
    ok = _run("--version")
    assert ok.returncode == 0 and "version" in ok.stdout
    bad = _run("invoke", "/no/such/bundle")
    assert bad.returncode != 0
    for done in (ok, bad):
        frozen = int(done.stderr.rsplit("frozen", 1)[1].split()[0])
        assert frozen > 1000, done.stderr


def test_main_leaves_the_callers_collector_alone() -> None:
    code = (
        "import gc\nfrom mlflow_lambda.infra.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(gc.get_freeze_count())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "0"
