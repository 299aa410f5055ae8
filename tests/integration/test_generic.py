"""The generic path: models MLflow's own pyfunc loads, answering like ``mlflow models serve``.

Two real models logged with MLflow 3.17.2: a custom ``PythonModel`` with an artifact file, a
params schema and code_paths ``utils.py`` and ``handler.py`` (pickled, and the same model as
models-from-code), and a statsmodels OLS. Each answers ``tests/generic_corpus.py`` in process
exactly as MLflow's scoring server does; the bundle tests (below) package them for python3.12
and run them through the real Lambda runtime emulator.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.handler.app import create_app
from mlflow_lambda.handler.flavors import GENERIC_FLAVOR, load_model
from mlflow_lambda.infra.invoke import open_bundle
from mlflow_lambda.infra.serve import to_event
from mlflow_lambda.packager.bytecode import find_interpreter
from mlflow_lambda.packager.inspection import inspect_model
from tests import mlflow_models as mm
from tests.generic_corpus import GENERIC_CASES
from tests.integration.conftest import run_cli
from tests.integration.test_parity import Reply, outcome, post
from tests.parity_corpus import Case

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

PARITY = [c for c in GENERIC_CASES if c.differs is None]
DIFFERENT = [c for c in GENERIC_CASES if c.differs is not None]


@pytest.fixture(scope="session")
def custom_model(mlflow_store: str, tmp_path_factory: pytest.TempPathFactory) -> mm.LoggedModel:
    return mm.log_custom_pyfunc(tmp_path_factory.mktemp("custom-code"))


@pytest.fixture(scope="session")
def custom_from_code(mlflow_store: str, tmp_path_factory: pytest.TempPathFactory) -> mm.LoggedModel:
    return mm.log_custom_pyfunc(tmp_path_factory.mktemp("custom-from-code"), from_code=True)


@pytest.fixture(scope="session")
def ols_model(mlflow_store: str) -> mm.LoggedModel:
    return mm.log_statsmodels_ols()


@pytest.fixture(scope="module")
def generic_servers(
    custom_model: mm.LoggedModel, custom_from_code: mm.LoggedModel, ols_model: mm.LoggedModel
) -> Iterator[dict[str, tuple[TestClient, TestClient]]]:
    """MLflow's scoring server and ours, in this process, for each generic model."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    flags = ("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "MLFLOW_DISABLE_TELEMETRY")
    saved = {flag: os.environ.get(flag) for flag in flags}  # both servers set them
    try:
        pairs = {}
        models = {"custom": custom_model, "from_code": custom_from_code, "ols": ols_model}
        for name, logged in models.items():
            theirs = scoring_server.init(mlflow.pyfunc.load_model(str(logged.local_dir)))
            config = inspect_model(logged.local_dir)
            ours = create_app(load_model(config, logged.local_dir), config)
            pairs[name] = (
                TestClient(theirs, raise_server_exceptions=False),
                TestClient(ours, raise_server_exceptions=False),
            )
        yield pairs
    finally:
        for flag, value in saved.items():
            if value is None:
                os.environ.pop(flag, None)
            else:
                os.environ[flag] = value


def same_json(a: Any, b: Any) -> bool:
    """Equal JSON values, floats compared to 1e-9 relative (None for NaN on our side)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _answers(
    servers: dict[str, tuple[TestClient, TestClient]], case: Case, model: str | None = None
) -> tuple[Reply, Reply]:
    theirs, ours = servers[model or case.model]
    return post(theirs, case), post(ours, case)


def _check_parity(theirs: Reply, ours: Reply) -> None:
    assert outcome(ours) == outcome(theirs), (ours.text[:300], theirs.text[:300])
    assert ours.content_type == "application/json"
    if ours.status == 200:
        assert set(ours.json) == {"predictions"}
        assert same_json(ours.json["predictions"], theirs.json["predictions"]), (
            ours.text[:300],
            theirs.text[:300],
        )
    else:
        assert set(ours.json) == {"error_code", "message"}  # FIX: never a stack_trace


def test_generic_models_take_the_generic_path(
    custom_model: mm.LoggedModel, custom_from_code: mm.LoggedModel, ols_model: mm.LoggedModel
) -> None:
    custom, from_code = (
        inspect_model(custom_model.local_dir),
        inspect_model(custom_from_code.local_dir),
    )
    ols = inspect_model(ols_model.local_dir)
    assert {custom["flavor"], from_code["flavor"], ols["flavor"]} == {GENERIC_FLAVOR}
    assert custom["loader_module"] == "mlflow.pyfunc.model"
    assert custom["model_file"] == "python_model.pkl"
    assert from_code["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert from_code["model_file"] == "model_code.py"
    assert (ols["loader_module"], ols["model_file"]) == ("mlflow.statsmodels", "model.statsmodels")
    assert ols["flavor_library_version"] == "0.15.0"
    # code_paths and the artifact ship as model files (hashed like the rest)
    assert {"code/utils.py", "code/handler.py", "artifacts/weights.json"} <= set(custom["files"])


@pytest.mark.parametrize("case", PARITY, ids=[f"{c.model}-{c.id}" for c in PARITY])
def test_same_answer_as_mlflow(
    generic_servers: dict[str, tuple[TestClient, TestClient]], case: Case
) -> None:
    _check_parity(*_answers(generic_servers, case))


CUSTOM_PARITY = [c for c in PARITY if c.model == "custom"][:12]


@pytest.mark.parametrize("case", CUSTOM_PARITY, ids=[c.id for c in CUSTOM_PARITY])
def test_models_from_code_same_answer_as_mlflow(
    generic_servers: dict[str, tuple[TestClient, TestClient]], case: Case
) -> None:
    _check_parity(*_answers(generic_servers, case, "from_code"))


@pytest.mark.parametrize("case", DIFFERENT, ids=[f"{c.model}-{c.id}" for c in DIFFERENT])
def test_deliberate_differences(
    generic_servers: dict[str, tuple[TestClient, TestClient]], case: Case
) -> None:
    theirs, ours = _answers(generic_servers, case)
    assert (outcome(ours), outcome(theirs)) == (case.ours, case.mlflow), (
        case.differs,
        ours.text[:300],
        theirs.text[:300],
    )
    assert ours.content_type == "application/json"
    if ours.status != 200:
        assert set(ours.json) == {"error_code", "message"}


def test_model_error_keeps_mlflows_message_without_traceback(
    generic_servers: dict[str, tuple[TestClient, TestClient]],
) -> None:
    case = next(c for c in GENERIC_CASES if c.id == "model-error")
    theirs, ours = _answers(generic_servers, case)
    assert "stack_trace" in theirs.json
    # MLflow's message, then the exception's own line (the last of MLflow's stack_trace)
    reason = theirs.json["stack_trace"].strip().splitlines()[-1]
    assert ours.json == {
        "error_code": "BAD_REQUEST",
        "message": f"{theirs.json['message']} {reason}",
    }


def test_nan_prediction_is_null(generic_servers: dict[str, tuple[TestClient, TestClient]]) -> None:
    case = next(c for c in GENERIC_CASES if c.id == "null-is-null")
    theirs, ours = _answers(generic_servers, case)
    assert theirs.text == '{"predictions": [{"0": NaN}]}'  # not JSON (RFC 8259 section 6)
    assert ours.json == {"predictions": [{"0": None}]}


# --- packaged for python3.12 and run by the real Lambda runtime ---------------------------

# Top-level modules a generic bundle may load at init and while scoring: ours, the handler's
# stack, mlflow and what `import mlflow` + load_model + predict pull in, and the custom model's
# code_paths modules (`utils`, and its own `handler`). Nothing of what the prune removes.
GENERIC_ALLOWED = {
    "mlflow_lambda", "mangum", "msgspec", "simdjson", "csimdjson", "starlette", "anyio", "idna",
    "sniffio", "numpy", "pandas",
    "dateutil", "six", "tzdata", "mlflow", "yaml", "_yaml", "cloudpickle", "google", "click",
    "pydantic", "pydantic_core", "annotated_types", "annotated_doc", "typing_extensions",
    "typing_inspection", "fastapi", "opentelemetry", "packaging", "requests", "urllib3",
    "certifi", "charset_normalizer", "sqlparse", "cachetools", "importlib_metadata", "zipp",
    "databricks", "utils", "handler", "statsmodels", "scipy", "patsy", "formulaic",
    "interface_meta", "narwhals", "wrapt", "pyarrow",
    # interpreter-internal names: Cython's shared runtime, sysconfig's data module
    "cython_runtime", "_cyutility", "_sysconfigdata__linux_x86_64-linux-gnu",
}  # fmt: skip
PRUNED = (
    "git/",
    "uvicorn/",
    "h11/",
    "cryptography/",
    "google/auth/",
    "dotenv/",
    "cffi/",
    "_cffi_backend",
)

_ENTRY_PROBE = """
import json, os, sys
sys.path[:0] = [os.environ["ROOT"]]
import mlflow_lambda.handler.lambda_function as lf
example = json.load(open(os.path.join(os.environ["ROOT"], "model", "serving_input_example.json")))
answer = lf.handler(example, None)
names = {m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
user = sys.modules.get("handler")
print(json.dumps({
    "answer": answer,
    "modules": sorted(names - set(sys.stdlib_module_names) - {"__main__", "__mp_main__"}),
    "user_handler": getattr(user, "__file__", None),
    "entry": lf.__file__,
}))
"""


def _package(logged: mm.LoggedModel, cache_dir: Path, root: Path, *extra: str) -> Path:
    out = root / "out"
    assert run_cli("package", "-m", logged.local_dir, "-o", out, "--python", "3.12",
                   "--cache-dir", cache_dir, *extra) == 0  # fmt: skip
    return out


@pytest.fixture(scope="session")
def custom_build(
    custom_model: mm.LoggedModel, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return _package(custom_model, cache_dir, tmp_path_factory.mktemp("custom-build"))


@pytest.fixture(scope="session")
def ols_build(
    ols_model: mm.LoggedModel, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    # an image: the OLS's own requirements list pyarrow (MLflow saw loading it import pyarrow),
    # 140 MB that put a zip at 378 MB, over Lambda's 250 MB; `package` refuses that zip
    return _package(ols_model, cache_dir, tmp_path_factory.mktemp("ols-build"), "--target", "image")


def _lambda_reply(fn: Any, case: Case) -> Reply:
    event = to_event("POST", "/invocations", case.headers(), case.raw_body())
    result = fn.invoke(event)
    assert result.ok, (result.error_type, result.error_message)
    answer = result.json()
    try:
        body = json.loads(answer["body"])
    except ValueError:
        body = None
    return Reply(
        answer["statusCode"], answer["headers"].get("content-type", ""), answer["body"], body
    )


@pytest.mark.parametrize("model", ["custom", "ols"])
def test_bundle_answers_the_corpus_like_mlflow(
    model: str,
    request: pytest.FixtureRequest,
    generic_servers: dict[str, tuple[TestClient, TestClient]],
) -> None:
    build: Path = request.getfixturevalue(f"{model}_build")  # only the build this case needs
    manifest = json.loads((build / "manifest.json").read_text())
    assert (manifest["model"]["flavor"], manifest["python_version"]) == (GENERIC_FLAVOR, "3.12")
    assert "mlflow-skinny" in manifest["distributions"]
    assert "mlflow" not in manifest["distributions"]
    cases = [c for c in GENERIC_CASES if c.model == model]
    theirs_client = generic_servers[model][0]
    with open_bundle(build) as fn:
        for case in cases:
            ours = _lambda_reply(fn, case)
            if case.differs is None:
                _check_parity(post(theirs_client, case), ours)
            else:
                assert outcome(ours) == case.ours, (case.id, ours.text[:300])


def test_generic_bundle_imports_only_what_it_serves_with(
    custom_build: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(custom_build / "bundle.zip") as zf:
        names = zf.namelist()
        zf.extractall(tmp_path)
    # what mlflow-skinny drags in that a served model never uses is not in the bundle
    assert not [n for n in names if n.startswith(PRUNED)], sorted(
        {n.split("/")[0] for n in names if n.startswith(PRUNED)}
    )
    python = find_interpreter("3.12")
    assert python is not None
    done = subprocess.run(
        [str(python), "-I", "-S", "-c", _ENTRY_PROBE],
        env={"ROOT": str(tmp_path), "MODEL_CONFIG": str(tmp_path / "model.json"),
             "MODEL_DIR": str(tmp_path / "model"), "PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = {m for m in out["modules"] if not m.startswith("_cython_")}  # _cython_3_2_4 ...
    assert loaded <= GENERIC_ALLOWED, sorted(loaded - GENERIC_ALLOWED)
    assert {"mlflow", "mlflow_lambda", "utils", "handler"} <= set(out["modules"])
    # the model's code_paths handler.py is the model's `handler`; the entry point is ours
    assert out["user_handler"] == str(tmp_path / "model" / "code" / "handler.py")
    assert out["entry"].startswith(str(tmp_path / "mlflow_lambda" / "handler"))
    assert [row["tag"] for row in out["answer"]["predictions"]] == ["user-handler"] * 2
