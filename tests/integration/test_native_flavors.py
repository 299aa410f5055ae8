"""The native flavors end to end: real models, packaged for python3.12, run by the Lambda runtime.

Each model of ``tests/mlflow_models.py`` (an XGBClassifier and an xgboost Booster, an
LGBMClassifier and a lightgbm Booster, an ONNX model from skl2onnx, a CatBoostClassifier) is
logged with real MLflow, packaged by the CLI (``--python 3.12``, x86_64), started once in the
local Lambda runtime (``infra.invoke.open_bundle``: the real RIE when present) and sent every
request of ``tests/native_corpus.py`` as an HTTP API event; MLflow's own scoring server
(``scoring_server.init(mlflow.pyfunc.load_model(...))``, what ``mlflow models serve`` runs)
answers the same requests in-process. Status, error code and predictions must be the same.

Bundles are built lazily, once per session, so ``-k xgb`` builds only the xgboost ones.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlflow_lambda.infra.invoke import open_bundle
from mlflow_lambda.infra.local import LocalLambda
from mlflow_lambda.packager.events import make_event
from tests import mlflow_models as mm
from tests.integration.conftest import run_cli
from tests.native_corpus import NATIVE_CASES
from tests.parity_corpus import Case

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

LOGGERS: dict[str, Callable[[], mm.LoggedModel]] = {
    "xgb_classifier": mm.log_xgb_classifier,
    "xgb_booster": mm.log_xgb_booster,
    "lgbm_classifier": mm.log_lgbm_classifier,
    "lgb_booster": mm.log_lgb_booster,
    "onnx": mm.log_onnx_classifier,
    "catboost": mm.log_catboost_classifier,
}
# catboost's manylinux wheel alone is ~100 MB zipped, ~190 MB unzipped: over the 50 MB direct
# upload, so it is built as an image context (the README's flavor table), which the local
# runtime runs the same way.
TARGETS = {"catboost": "image"}


class Native:
    """Logged models, their bundles and their running functions, each made on first use."""

    def __init__(self, cache_dir: Path, root: Path, stack: ExitStack) -> None:
        self.cache_dir, self.root, self.stack = cache_dir, root, stack
        self.models: dict[str, mm.LoggedModel] = {}
        self.builds: dict[str, Path] = {}
        self.functions: dict[str, LocalLambda] = {}
        self.mlflow: dict[str, TestClient] = {}
        self.cold: dict[str, tuple[int, float | None]] = {}  # first answer: status, init ms

    def model(self, name: str) -> mm.LoggedModel:
        if name not in self.models:
            self.models[name] = LOGGERS[name]()
        return self.models[name]

    def build(self, name: str, *extra: str) -> Path:
        key = " ".join((name, *extra))
        if key not in self.builds:
            out = self.root / key.replace(" ", "_").replace("-", "") / "out"
            target = ("--target", TARGETS[name]) if name in TARGETS else ()
            args = ("package", "-m", self.model(name).model_uri, "-o", out, *target, *extra)
            assert run_cli(*args, "--cache-dir", self.cache_dir) == 0
            self.builds[key] = out
        return self.builds[key]

    def function(self, name: str) -> LocalLambda:
        if name not in self.functions:
            built = self.build(name, "--python", "3.12")
            fn = self.stack.enter_context(open_bundle(built, timeout_s=60))
            # the cold start answers the build's own example event (events/invocations.json)
            first = fn.invoke(json.loads((built / "events" / "invocations.json").read_text()))
            self.cold[name] = (first.json()["statusCode"], first.init_ms)
            self.functions[name] = fn
        return self.functions[name]

    def reference(self, name: str) -> TestClient:
        if name not in self.mlflow:
            import mlflow.pyfunc
            from mlflow.pyfunc import scoring_server

            loaded = mlflow.pyfunc.load_model(str(self.model(name).local_dir))
            app = scoring_server.init(loaded)
            self.mlflow[name] = TestClient(app, raise_server_exceptions=False)
        return self.mlflow[name]


@pytest.fixture(scope="session")
def native(
    mlflow_store: str, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Native]:
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT

    flag = _MLFLOW_IS_IN_SERVING_ENVIRONMENT.name
    saved = os.environ.get(flag)  # scoring_server.init sets it for the whole process
    with ExitStack() as stack:
        try:
            yield Native(cache_dir, tmp_path_factory.mktemp("native"), stack)
        finally:
            if saved is None:
                os.environ.pop(flag, None)
            else:
                os.environ[flag] = saved


def _same(a: Any, b: Any) -> bool:
    """Equal JSON predictions, numbers compared with allclose (records, dicts, lists)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list) and a and isinstance(a[0], dict):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def _ours(fn: LocalLambda, case: Case) -> tuple[int, Any]:
    event = make_event("v2", case.raw_body(), content_type=case.content_type)
    result = fn.invoke(event)
    assert result.ok, result.logs[-20:]
    answer = result.json()
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize("case", NATIVE_CASES, ids=[f"{c.model}-{c.id}" for c in NATIVE_CASES])
def test_same_answer_as_mlflow_through_the_lambda_runtime(native: Native, case: Case) -> None:
    status, body = _ours(native.function(case.model), case)
    theirs = native.reference(case.model).post(
        "/invocations", content=case.raw_body(), headers=case.headers()
    )
    reference = theirs.json()
    assert (status, body.get("error_code")) == (theirs.status_code, reference.get("error_code")), (
        body,
        reference,
    )
    if status == 200:
        assert set(body) == {"predictions"}
        assert _same(body["predictions"], reference["predictions"]), (body, reference)
    else:
        assert set(body) == {"error_code", "message"}


def test_xgboost_installs_its_cpu_build(native: Native) -> None:
    manifest = json.loads(
        (native.build("xgb_classifier", "--python", "3.12") / "manifest.json").read_text()
    )
    dists = manifest["distributions"]
    assert dists.get("xgboost-cpu") == "3.2.0", dists
    assert "xgboost" not in dists and not any(d.startswith("nvidia") for d in dists)
    assert (manifest["model"]["flavor"], manifest["model"]["serialization_format"]) == (
        "xgboost",
        "ubj",
    )


def test_onnx_and_lightgbm_manifests(native: Native) -> None:
    onnx = json.loads((native.build("onnx", "--python", "3.12") / "manifest.json").read_text())
    assert (onnx["model"]["flavor"], onnx["model"]["serialization_format"]) == ("onnx", "onnx")
    assert "onnxruntime" in onnx["distributions"] and "onnxruntime-gpu" not in onnx["distributions"]
    lgb = json.loads(
        (native.build("lgb_booster", "--python", "3.12") / "manifest.json").read_text()
    )
    assert (lgb["model"]["flavor"], lgb["model"]["serialization_format"]) == ("lightgbm", "lgb")
    assert "skops" not in lgb["distributions"]  # a Booster is lightgbm's own text file


@pytest.mark.slow
def test_lightgbm_classifier_builds_and_answers_on_arm64(native: Native) -> None:
    """arm64: built and checked (emulated when the host is x86_64, else skipped by the check)."""
    out = native.build("lgbm_classifier", "--python", "3.12", "--arch", "arm64")
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["arch"], manifest["python_version"]) == ("arm64", "3.12")
    assert "lightgbm" in manifest["distributions"]
    names = json.loads((out / "model.json").read_text())["flavor_conf"]
    assert names["model_class"] == "lightgbm.sklearn.LGBMClassifier"


def test_cold_start_answers_the_example_and_report(
    native: Native, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each native bundle's first (cold) invocation answers its example; sizes and init for the
    README (numbers only, no timing asserts: the host is shared)."""
    rows = []
    for name in LOGGERS:
        native.function(name)
        status, init_ms = native.cold[name]
        assert status == 200, name
        built = native.build(name, "--python", "3.12")
        manifest = json.loads((built / "manifest.json").read_text())
        size = manifest["sizes"]
        zipped = size["zipped_bytes"]
        rows.append(
            f"[native] {name}: {manifest['target']}, {size['unzipped_bytes'] / 2**20:.0f} MB "
            f"unzipped, {'-' if zipped is None else f'{zipped / 2**20:.0f} MB'} zipped, "
            f"cold start init {init_ms} ms"
        )
    with capsys.disabled():
        print("\n" + "\n".join(rows))
