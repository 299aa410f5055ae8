"""Per flavor: bundle size, cold start and warm p50, ours vs MLflow's own pyfunc (issue 10, item 7).

The eight models of the flavor tests (``tests/mlflow_models.py``: XGBClassifier, xgboost
Booster, LGBMClassifier, lightgbm Booster, CatBoostClassifier, ONNX from skl2onnx, a custom
``PythonModel``, a statsmodels OLS) are logged once into a sqlite store of the bench's own and
packaged for python3.12 x86_64 as the tests package them (catboost and the OLS as image
contexts: their zips do not fit). Wheels and prepared dependencies come from the test cache
(``$MLFLOW_LAMBDA_TEST_CACHE``, else ``~/.cache/mlflow-lambda-tests`` when it exists), so catboost
is not installed again.

* ``ours`` cold: a fresh local Lambda (``infra.invoke.open_bundle``: the real RIE and
  awslambdaric on the bundle's Python, the bundle's packages only) answering the bundle's own
  example event (the model's 2-row input example) for the first time; wall time of that first
  invocation (the runtime process is spawned by it) and Lambda's Init Duration.
* ``mlflow`` cold: a fresh host ``python`` that imports MLflow, ``mlflow.pyfunc.load_model`` on
  the model directory and answers the same body through ``scoring_server.invocations`` (what
  ``mlflow models serve`` runs per request, without HTTP); wall time to that first answer.
* warm p50, 2 rows: ours, the same warm Lambda invoked again (``Duration`` as Lambda reports
  it, and the wall time through the emulator); MLflow, ``scoring_server.invocations`` again in
  that process.

Benchmarks are not tests: nothing here asserts on a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bench.coldstart import LIMIT_S, mlflow_env
from mlflow_lambda.infra.invoke import open_bundle
from mlflow_lambda.packager.build import BuildOptions, build
from tests import mlflow_models as mm


@dataclass(frozen=True)
class FlavorSpec:
    title: str
    path: str  # "native" | "generic"
    target: Literal["zip", "image"]
    log: Callable[[Path], mm.LoggedModel]


# catboost: its wheel alone is ~100 MB zipped; the OLS: its requirements list pyarrow (140 MB).
# Both are image contexts, as tests/integration/test_native_flavors.py and test_generic.py build.
SPECS: dict[str, FlavorSpec] = {
    "xgb_classifier": FlavorSpec("xgboost XGBClassifier", "native", "zip",
                                 lambda _: mm.log_xgb_classifier()),
    "xgb_booster": FlavorSpec("xgboost Booster", "native", "zip", lambda _: mm.log_xgb_booster()),
    "lgbm_classifier": FlavorSpec("lightgbm LGBMClassifier", "native", "zip",
                                  lambda _: mm.log_lgbm_classifier()),
    "lgb_booster": FlavorSpec("lightgbm Booster", "native", "zip", lambda _: mm.log_lgb_booster()),
    "catboost": FlavorSpec("catboost CatBoostClassifier", "native", "image",
                           lambda _: mm.log_catboost_classifier()),
    "onnx": FlavorSpec("onnx (skl2onnx LogisticRegression)", "native", "zip",
                       lambda _: mm.log_onnx_classifier()),
    "custom": FlavorSpec("custom `PythonModel` (artifact + code_paths)", "generic", "zip",
                         mm.log_custom_pyfunc),
    "ols": FlavorSpec("statsmodels OLS", "generic", "image", lambda _: mm.log_statsmodels_ols()),
}  # fmt: skip
QUICK_FLAVORS = ("xgb_classifier",)

# In a fresh host process: load the model with MLflow, answer the body as `mlflow models serve`
# does (scoring_server.invocations: parse, enforce the signature, predict, encode), report when
# the first answer is ready, then answer it WARM more times and report each time.
_MLFLOW_PROCESS = """
import json, sys, time
import mlflow.pyfunc
from mlflow.pyfunc import scoring_server
body = open(sys.argv[2]).read()
model = mlflow.pyfunc.load_model(sys.argv[1])
schema = model.metadata.get_input_schema()
first = scoring_server.invocations(body, "application/json", model, schema)
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM:"))
print("READY " + json.dumps({"status": first.status, "peak_rss_mb": peak}), flush=True)
times = []
for _ in range(int(sys.argv[3])):
    started = time.perf_counter()
    answer = scoring_server.invocations(body, "application/json", model, schema)
    times.append((time.perf_counter() - started) * 1000)
    assert answer.status == 200, answer.response
print("WARM " + json.dumps(times), flush=True)
"""


def shared_cache_dir() -> Path | None:
    """The integration tests' wheel and prepared-deps cache, when there is one."""
    root = os.environ.get("MLFLOW_LAMBDA_TEST_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "mlflow-lambda-tests"
    return path if path.is_dir() else None


def ensure_models(keys: list[str], store: Path) -> dict[str, mm.LoggedModel]:
    """Log the models ``keys`` into the store under ``store`` unless an earlier run did."""
    import mlflow

    index = store / "flavor-models.json"
    known: dict[str, Any] = json.loads(index.read_text()) if index.is_file() else {}
    mm.use_tracking_store(store)
    out = {}
    for key in keys:
        entry = known.get(key)
        if entry and Path(entry["local_dir"], "MLmodel").is_file():
            out[key] = mm.LoggedModel(key, entry["uri"], entry["run_id"], Path(entry["local_dir"]),
                                      None, None, None)  # fmt: skip
            continue
        experiment = "mlflow-lambda-bench-flavors"
        if mlflow.get_experiment_by_name(experiment) is None:
            mlflow.create_experiment(experiment, artifact_location=(store / "artifacts").as_uri())
        mlflow.set_experiment(experiment)
        logged = SPECS[key].log(store / "code" / key)
        out[key] = logged
        known[key] = {"uri": logged.model_uri, "run_id": logged.run_id,
                      "local_dir": str(logged.local_dir)}  # fmt: skip
        index.write_text(json.dumps(known, indent=1))
    return out


def package(key: str, model: mm.LoggedModel, outdir: Path) -> tuple[dict[str, Any], float]:
    """Package ``model`` as the tests do; the manifest and the build's seconds."""
    started = time.perf_counter()
    result = build(
        BuildOptions(str(model.local_dir), outdir, target=SPECS[key].target,
                     python="3.12", cache_dir=shared_cache_dir()),
        progress=lambda _m: None, warn=lambda _m: None,
    )  # fmt: skip
    return result.manifest, time.perf_counter() - started


def ours(outdir: Path, event: dict[str, Any], warm: int) -> dict[str, Any]:
    """One fresh local Lambda: its cold first answer, then ``warm`` more invocations."""
    with open_bundle(outdir, timeout_s=120) as fn:
        started = time.perf_counter()
        first = fn.invoke(event)
        wall = (time.perf_counter() - started) * 1000
        if not first.ok or first.json().get("statusCode") != 200:
            raise RuntimeError(f"cold invoke of {outdir} failed: {first.payload[:300]!r}")
        walls, durations = [], []
        for _ in range(warm):
            started = time.perf_counter()
            result = fn.invoke(event)
            walls.append((time.perf_counter() - started) * 1000)
            durations.append(result.duration_ms)
            if result.json().get("statusCode") != 200:
                raise RuntimeError(f"warm invoke of {outdir} failed: {result.payload[:300]!r}")
    return {"wall_ms": wall, "init_ms": first.init_ms, "peak_rss_mb": first.max_memory_mb,
            "warm_wall_ms": walls, "warm_duration_ms": durations}  # fmt: skip


def mlflow(model_dir: Path, body: Path, warm: int) -> dict[str, Any]:
    """One fresh host process: MLflow loads ``model_dir`` and answers ``body``, then ``warm``
    more times."""
    argv = [sys.executable, "-c", _MLFLOW_PROCESS, str(model_dir), str(body), str(warm)]
    started = time.perf_counter()
    with subprocess.Popen(argv, env=mlflow_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            wall = (time.perf_counter() - started) * 1000
            if not line.startswith("READY "):
                raise RuntimeError(f"MLflow load + predict of {model_dir} failed: {line!r}")
            facts = json.loads(line[6:])
            rest = proc.stdout.readline()
            proc.wait(timeout=LIMIT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
    if facts["status"] != 200 or not rest.startswith("WARM "):
        raise RuntimeError(f"MLflow answered {model_dir}'s example with {facts} / {rest!r}")
    return {"wall_ms": wall, "peak_rss_mb": facts["peak_rss_mb"], "warm_ms": json.loads(rest[5:])}


def run(
    keys: list[str], work: Path, *, runs: int, warm: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """Log, package and measure every flavor in ``keys``; raw results per flavor."""
    models = ensure_models(keys, work / "flavor-store")
    out: dict[str, Any] = {}
    for key in keys:
        spec, model = SPECS[key], models[key]
        say(f"packaging the {key} bundle ({spec.target}) ...")
        outdir = work / "bundles" / f"flavor-{key}"
        manifest, build_s = package(key, model, outdir)
        sizes = manifest["sizes"]
        say(f"  {sizes['unzipped_bytes'] / 2**20:.0f} MB unzipped, {build_s:.0f} s")
        event = json.loads((outdir / "events" / "invocations.json").read_text())
        entry: dict[str, Any] = {
            "title": spec.title, "flavor": manifest["model"]["flavor"], "path": spec.path,
            "target": manifest["target"], "unzipped_bytes": sizes["unzipped_bytes"],
            "zipped_bytes": sizes.get("zipped_bytes"), "build_s": build_s,
            "runtime": manifest["runtime"], "ours": [], "mlflow": [],
        }  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="bench-flavor-") as tmp:
            body = Path(tmp) / "body.json"
            body.write_text((model.local_dir / "serving_input_example.json").read_text())
            for i in range(runs):
                last = i == runs - 1  # the warm samples come from the last round only
                n = warm if last else 0
                for side in ("ours", "mlflow") if i % 2 == 0 else ("mlflow", "ours"):
                    if side == "ours":
                        entry[side].append(ours(outdir, event, n))
                    else:
                        entry[side].append(mlflow(model.local_dir, body, n))
                say(f"  cold {key} run {i + 1}/{runs}: ours {entry['ours'][-1]['wall_ms']:.0f} "
                    f"ms, MLflow {entry['mlflow'][-1]['wall_ms']:.0f} ms")  # fmt: skip
        out[key] = entry
    return out
