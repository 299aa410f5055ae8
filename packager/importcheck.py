"""Check a staged bundle the way Lambda will load it: a fresh interpreter of the target
Python that sees only the bundle and the standard library (``-I -S``: no site-packages,
no user site, no PYTHON* variables), importing the handler and answering the model's
input example.

This catches what pruning or a missing wheel broke before anything is uploaded. It runs
only when this host can execute the target (same architecture, a Python of the target
version found); otherwise it says why it was skipped.

It also times the init (the CPU time of importing the entry module, which loads the model),
so that the build can warn when Lambda's 10 s init limit is near at the template's
``MemorySize`` (:func:`init_warning`).

The same run reports what the loaded estimator records about its input (:class:`ModelFacts`:
``n_features_in_`` and ``feature_names_in_``), for a model with neither an input example nor
a signature: the check then scores a row of zeros of that width
(``handler.schema.probe_body``), and the sample events and ``--trim`` use the same row. Read
here rather than from the skops file's schema because loading is what the check does anyway
(no extra cost), it covers pickle and cloudpickle models, and it sees attributes a
composite estimator computes (a ``Pipeline``'s ``n_features_in_`` is its first step's, a
property that no schema of the file records).
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_lambda.packager.errors import BundleCheckError
from mlflow_lambda.packager.platforms import host_arch

# Lambda's init phase (imports and model load) may take at most 10 s; past it Lambda retries
# the init during the first invocation, under the function timeout
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
INIT_LIMIT_S = 10.0
# warn at 80% of the limit: a busy build host inflates even CPU time (the README forest took
# 3.6 s of CPU on a 2-core host at load 20, about 1 s when quiet), so a lower line cries wolf
INIT_WARN_FRACTION = 0.8
# Lambda gives CPU in proportion to memory: one full vCPU at 1,769 MB
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
FULL_VCPU_MB = 1769
MAX_MEMORY_MB = 10240

_PROBE = """
import json, os, sys, time
sys.path[:0] = json.loads(os.environ["MLFLOW_LAMBDA_PATHS"])
started = time.process_time()
import mlflow_lambda.handler.lambda_function as lf
init_s = time.process_time() - started
import importlib.util
from mlflow_lambda.handler.schema import probe_body
width = getattr(getattr(lf.predictor, "model", None), "n_features_in_", None)
width = int(width) if type(width).__name__ in ("int", "int64", "int32") else None
names = getattr(lf.predictor, "feature_names", None)
names = None if names is None else [str(n) for n in names]
example = json.loads(os.environ["MLFLOW_LAMBDA_EXAMPLE"])
if not example and width is not None and lf.config["signature"]["inputs"] is None:
    # no example, no signature: a row of zeros of the fitted width, unless the model was
    # fitted on named columns and pandas is missing (the build then adds pandas, checks again)
    if names is None or importlib.util.find_spec("pandas") is not None:
        example = probe_body(width, names)
answer = lf.handler(example, None) if example else None
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec from the forked parent,
# so it would report the building process's size whenever that is larger.
with open("/proc/self/status") as f:
    peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(json.dumps({"answer": answer, "peak_kb": peak_kb, "probed": example, "init_s": init_s,
                  "facts": {"n_features": width, "feature_names": names}}))
"""


@dataclass(frozen=True)
class ModelFacts:
    """What the loaded estimator records about its input (None: it records nothing)."""

    n_features: int | None = None  # n_features_in_
    feature_names: list[str] | None = None  # feature_names_in_: fitted on a DataFrame


@dataclass(frozen=True)
class ImportCheck:
    skipped: str | None  # why the check did not run, or None
    answer: Any = None  # the handler's answer to the input example (or the probe row)
    peak_rss_mb: float | None = None
    facts: ModelFacts = ModelFacts()
    probed: Any = None  # the scoring body the check sent, None if it sent none
    probe_error: str | None = None  # the row of zeros (no input example) failed: why
    # CPU time to import the entry module (which loads the model): the part of the init that
    # Lambda's CPU share slows down, and steadier than wall time on a busy build host
    init_s: float | None = None


def import_check(
    roots: list[Path],
    interpreter: Path | None,
    python: str,
    arch: str,
    example: dict[str, Any] | None,
    *,
    model_dir: Path | None = None,
) -> ImportCheck:
    """Import ``handler.lambda_function`` from ``roots`` alone and score ``example``.

    ``interpreter`` is a Python of version ``python`` (None: none on this host, skip).
    ``model_dir`` is the model directory when it is not in the bundle (a model on S3).

    Raises :class:`BundleCheckError` with the interpreter's last lines when the import or
    the prediction fails.
    """
    if host_arch() != arch:
        return ImportCheck(
            f"skipped the import check: the bundle is for {arch} and this host is "
            f"{host_arch()}; run `mlflow-lambda invoke` on an {arch} machine"
        )
    if interpreter is None:
        return ImportCheck(f"skipped the import check: no Python {python} on this host")
    result = run_in_bundle(
        interpreter,
        _PROBE,
        roots,
        {
            "MLFLOW_LAMBDA_EXAMPLE": json.dumps(example),
            "MODEL_DIR": str(model_dir or roots[0] / "model"),
            "LOG_LEVEL": "WARNING",
        },
        failure=f"the bundle does not import on its own with Python {python}",
    )
    answer = result["answer"]
    what = "the model's input example" if example else "a row of zeros of the fitted width"
    failed = None
    if isinstance(answer, dict) and "error_code" in answer:
        failed = f"the bundle imports but fails on {what}: {answer['error_code']}: "
        failed += str(answer.get("message"))
        if example:  # the model's own example must score; a made-up row is only a hint
            raise BundleCheckError(failed)
    facts = ModelFacts(result["facts"]["n_features"], result["facts"]["feature_names"])
    peak = round(result["peak_kb"] / 1024, 1)
    return ImportCheck(None, answer, peak, facts, result["probed"], failed, result["init_s"])


def lambda_init_estimate_s(init_s: float, memory_mb: int) -> float:
    """``init_s`` measured here, scaled to the CPU share Lambda gives ``memory_mb``.

    Assumption: one core of this host is about one Lambda vCPU, and the init is CPU-bound
    and single-threaded (imports, unpickling), so below 1,769 MB it takes
    ``1769 / memory_mb`` times as long, and more memory than that does not speed it up.
    """
    return init_s * max(1.0, FULL_VCPU_MB / memory_mb)


def init_warning(init_s: float | None, memory_mb: int) -> str | None:
    """A warning when the init would near Lambda's 10 s limit at ``memory_mb``, or None."""
    if init_s is None:
        return None
    estimate = lambda_init_estimate_s(init_s, memory_mb)
    if estimate < INIT_LIMIT_S * INIT_WARN_FRACTION:
        return None
    # the memory that brings the estimate under the warning line, if any does
    target = INIT_LIMIT_S * INIT_WARN_FRACTION
    needed = math.ceil(FULL_VCPU_MB * init_s / target / 64) * 64 if init_s < target else None
    advice = (
        f"raise MemorySize to at least {needed} MB (sam deploy --parameter-overrides "
        f"MemorySize={needed})"
        if needed is not None and needed <= MAX_MEMORY_MB
        else "no MemorySize brings it under that (more than 1,769 MB adds no speed to a "
        "single-threaded init); make the model smaller or faster to load"
    )
    return (
        f"init (imports + model load) took {init_s:.1f} s of CPU here; at MemorySize "
        f"{memory_mb} MB Lambda gives about {min(1.0, memory_mb / FULL_VCPU_MB):.2f} of a vCPU, "
        "so expect "
        f"~{estimate:.1f} s, near Lambda's {INIT_LIMIT_S:.0f} s init limit (past it the init "
        f"is retried inside the first request's timeout); {advice}. Assumes one core here "
        "is about one Lambda vCPU."
    )


def run_in_bundle(
    interpreter: Path, code: str, roots: list[Path], env: dict[str, str], *, failure: str
) -> Any:
    """Run ``code`` in ``python -I -S`` (the stdlib only) with ``roots`` to put on sys.path in
    ``MLFLOW_LAMBDA_PATHS``; return the JSON of its last line of output.

    Raises :class:`BundleCheckError` with ``failure`` and the last lines of stderr.
    """
    full = {
        "MLFLOW_LAMBDA_PATHS": json.dumps([str(r) for r in roots]),
        "MODEL_CONFIG": str(roots[0] / "model.json"),
        "PATH": "/usr/bin:/bin",
        **env,
    }
    done = subprocess.run(
        [str(interpreter), "-I", "-S", "-c", code],
        env=full, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        raise BundleCheckError(f"{failure}:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])
