"""Parity with MLflow's own scoring server, in-process, on real logged models.

For every request of ``tests/parity_corpus.py`` both apps answer: MLflow's
(``mlflow.pyfunc.scoring_server.init(mlflow.pyfunc.load_model(dir))``) and ours
(``inspect_model`` -> ``load_model`` -> ``create_app``). Same status, same error code, same
predictions (numerically) — except the deliberate differences, which are asserted on both
sides so that the test notices when MLflow changes.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlflow_lambda.handler.app import Scorer, create_app
from mlflow_lambda.handler.flavors import Predictor, load_model
from mlflow_lambda.packager.inspection import inspect_model
from tests import mlflow_models as mm
from tests.parity_corpus import CASES, IRIS, JSON, SEED, Case

with warnings.catch_warnings():
    # starlette 1.x warns at import that it prefers `httpx2` (not installed); the client
    # works the same with httpx.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = [
    pytest.mark.integration,
    # The story's model was fitted on arrays; a request with string column names makes
    # scikit-learn warn "X has feature names, but RandomForestClassifier was fitted without
    # feature names" and predict anyway. MLflow's server runs with default warning filters,
    # so it answers 200; pytest's "error" filter would turn it into a 400 on both sides.
    pytest.mark.filterwarnings("ignore:X has feature names, but:UserWarning"),
]
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Pair:
    """Both servers for one model."""

    mlflow: TestClient
    ours: TestClient
    config: dict[str, Any]
    predictor: Predictor
    mlflow_app: Any
    ours_app: Any


@pytest.fixture(scope="module")
def servers(
    forest: mm.LoggedModel,
    regressor: mm.LoggedModel,
    pipeline: mm.LoggedModel,
    array_model: mm.LoggedModel,
    seed_model: mm.LoggedModel,
) -> Iterator[dict[str, Pair]]:
    import mlflow.pyfunc
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT
    from mlflow.pyfunc import scoring_server

    flag = _MLFLOW_IS_IN_SERVING_ENVIRONMENT.name
    saved = os.environ.get(flag)  # scoring_server.init sets it for the whole process
    pairs: dict[str, Pair] = {}
    try:
        models = {"forest": forest, "regressor": regressor}
        models.update({"pipeline": pipeline, "array_model": array_model, "seed": seed_model})
        for name, logged in models.items():
            mlflow_app = scoring_server.init(mlflow.pyfunc.load_model(str(logged.local_dir)))
            config = inspect_model(logged.local_dir)
            predictor = load_model(config, logged.local_dir)  # type: ignore[arg-type]
            ours_app = create_app(predictor, config)  # type: ignore[arg-type]
            pairs[name] = Pair(
                TestClient(mlflow_app, raise_server_exceptions=False),
                TestClient(ours_app, raise_server_exceptions=False),
                config,
                predictor,
                mlflow_app,
                ours_app,
            )
        yield pairs
    finally:
        if saved is None:
            os.environ.pop(flag, None)
        else:
            os.environ[flag] = saved


@dataclass
class Reply:
    status: int
    content_type: str
    text: str
    json: Any


def post(client: TestClient, case: Case) -> Reply:
    r = client.post("/invocations", content=case.raw_body(), headers=case.headers())
    try:
        body = r.json()
    except ValueError:
        body = None
    return Reply(r.status_code, r.headers.get("content-type", ""), r.text, body)


def outcome(reply: Reply) -> tuple[int, str | None]:
    code = reply.json.get("error_code") if isinstance(reply.json, dict) else None
    return reply.status, code


def same_predictions(a: Any, b: Any) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


PARITY = [c for c in CASES if c.differs is None]
DIFFERENT = [c for c in CASES if c.differs is not None]


def test_corpus_is_broad() -> None:
    assert len(PARITY) >= 30
    formats = {k for c in PARITY if isinstance(c.body, dict) for k in c.body}
    assert formats >= {"dataframe_split", "dataframe_records", "instances", "inputs", "params"}
    assert {c.content_type for c in CASES} >= {None, "text/csv", "application/csv"}


@pytest.mark.parametrize("case", PARITY, ids=[f"{c.model}-{c.id}" for c in PARITY])
def test_same_answer_as_mlflow(servers: dict[str, Pair], case: Case) -> None:
    pair = servers[case.model]
    theirs, ours = post(pair.mlflow, case), post(pair.ours, case)
    assert outcome(ours) == outcome(theirs), (ours.text[:300], theirs.text[:300])
    assert ours.content_type == "application/json"
    if ours.status == 200:
        assert set(ours.json) == {"predictions"}
        assert same_predictions(ours.json["predictions"], theirs.json["predictions"])
    else:
        assert set(ours.json) == {"error_code", "message"}  # FIX: never a stack_trace


# The infinite-prediction case overflows on purpose (1e308 * 2 in LinearRegression's matmul).
OVERFLOW_IS_THE_POINT = pytest.mark.filterwarnings(
    "ignore:overflow encountered in matmul:RuntimeWarning"
)


@OVERFLOW_IS_THE_POINT
@pytest.mark.parametrize("case", DIFFERENT, ids=[f"{c.model}-{c.id}" for c in DIFFERENT])
def test_deliberate_differences(servers: dict[str, Pair], case: Case) -> None:
    pair = servers[case.model]
    theirs, ours = post(pair.mlflow, case), post(pair.ours, case)
    assert (outcome(ours), outcome(theirs)) == (case.ours, case.mlflow), case.differs
    assert ours.content_type == "application/json"
    if theirs.status == 415:  # MLflow answers 415 as text/plain
        assert theirs.content_type.startswith("text/plain") and theirs.json is None
    if ours.status != 200:  # ours: always the JSON error body
        assert set(ours.json) == {"error_code", "message"}


def _json_twin(case: Case, body: Any) -> Case:
    return Case(case.id, case.model, body)


def test_fix_missing_content_type_and_csv_types_score_like_json(servers: dict[str, Pair]) -> None:
    pair = servers["forest"]
    by_id = {c.id: c for c in CASES if c.model == "forest"}
    reference = post(pair.mlflow, _json_twin(by_id["csv"], {"dataframe_split": {
        "columns": IRIS, "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}))  # fmt: skip
    assert post(pair.ours, by_id["application-csv"]).json == reference.json
    no_type = post(pair.ours, by_id["no-content-type"])
    assert no_type.json == post(pair.mlflow, _json_twin(by_id["no-content-type"], by_id[
        "no-content-type"].body)).json  # fmt: skip
    assert post(pair.mlflow, by_id["no-content-type"]).text == "Internal Server Error"


def test_fix_no_stack_trace(servers: dict[str, Pair]) -> None:
    case = next(c for c in CASES if c.id == "model-error-no-stack-trace")
    theirs, ours = post(servers["forest"].mlflow, case), post(servers["forest"].ours, case)
    assert "stack_trace" in theirs.json and "Traceback" in theirs.json["stack_trace"]
    # the last line of MLflow's traceback is the exception: ours says it, without the rest
    raised = theirs.json["stack_trace"].strip().splitlines()[-1]
    assert raised.startswith("ValueError: Found array with 0 sample(s)")
    assert ours.json == {
        "error_code": "BAD_REQUEST",
        "message": f"{theirs.json['message']} {raised}",  # MLflow's own wording, then why
    }
    assert "Traceback" not in ours.text


@OVERFLOW_IS_THE_POINT
def test_fix_infinity_is_null(servers: dict[str, Pair]) -> None:
    case = next(c for c in CASES if c.id == "infinite-prediction")
    theirs = post(servers["array_model"].mlflow, case)
    ours = post(servers["array_model"].ours, case)
    assert theirs.text == '{"predictions": [Infinity]}'  # not JSON (RFC 8259 section 6)
    assert ours.text == '{"predictions":[null]}'  # compact: msgspec writes no spaces


def test_fix_fraction_into_long(servers: dict[str, Pair]) -> None:
    pair = servers["regressor"]
    case = next(c for c in CASES if c.id == "split-long-fraction")
    truncated = post(pair.mlflow, _json_twin(case, {"dataframe_split": {
        "columns": ["age", "income", "city"], "data": [[1, 29881.7, "paris"]]}}))  # fmt: skip
    assert post(pair.mlflow, case).json == truncated.json  # MLflow scores 1.7 as 1
    ours = post(pair.ours, case).json
    assert ours["error_code"] == "BAD_REQUEST"
    assert ours["message"].startswith(
        "Invalid input. Column 'age' has integer type int64 but received the value 1.7"
    )
    csv = next(c for c in CASES if c.id == "csv-long-fraction")  # the CSV path: both refuse
    assert outcome(post(pair.mlflow, csv)) == outcome(post(pair.ours, csv)) == (400, "BAD_REQUEST")


def test_extra_csv_for_tensor_signature(servers: dict[str, Pair]) -> None:
    pair = servers["array_model"]
    case = next(c for c in CASES if c.id == "csv-tensor")
    reference = post(pair.mlflow, _json_twin(case, {"inputs": [[0.3, 0.8, 0.3]]}))
    assert same_predictions(
        post(pair.ours, case).json["predictions"], reference.json["predictions"]
    )


# --- without pandas -----------------------------------------------------------------------

_NO_PANDAS = r"""
import json, sys
sys.modules["pandas"] = None  # `import pandas` now raises ImportError
from pathlib import Path
from mlflow_lambda.handler.app import Scorer, create_app
from mlflow_lambda.handler.config import load_config
from mlflow_lambda.handler.flavors import load_model
config = load_config(Path(sys.argv[1]))
predictor = load_model(config, Path(sys.argv[2]))
create_app(predictor, config)
scorer = Scorer(predictor, config)
out = {}
for name, body, content_type in json.loads(sys.argv[3]):
    answer = scorer.score(body.encode(), content_type)
    out[name] = [answer.status, json.loads(answer.body)]
out["pandas modules"] = sorted(m for m, v in sys.modules.items() if m.startswith("pandas") and v)
print(json.dumps(out))
"""


def _score_without_pandas(
    config: dict[str, Any], model_dir: Path, requests: list[tuple[str, str, str | None]],
    tmp_path: Path,
) -> dict[str, Any]:  # fmt: skip
    config_path = tmp_path / "model.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", _NO_PANDAS, str(config_path), str(model_dir), json.dumps(requests)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert out.pop("pandas modules") == []
    return out


def test_tensor_model_scores_without_pandas(
    servers: dict[str, Pair], array_model: mm.LoggedModel, tmp_path: Path
) -> None:
    requests = [
        ("inputs", json.dumps({"inputs": [[0.3, 0.8, 0.3], [1, 2, 3]]}), "application/json"),
        ("instances", json.dumps({"instances": [[0.3, 0.8, 0.3]]}), None),
        ("split", json.dumps({"dataframe_split": {"data": [[1, 2, 3]]}}), "application/json"),
        ("records", json.dumps({"dataframe_records": [{"a": 1, "b": 2, "c": 3}]}), None),
        ("csv", "a,b,c\n1,2,3\n", "text/csv"),
        ("bad shape", json.dumps({"inputs": [[1, 2]]}), None),
    ]
    out = _score_without_pandas(servers["array_model"].config, array_model.local_dir,
                                requests, tmp_path)  # fmt: skip
    mlflow_client = servers["array_model"].mlflow
    for name, body, _ in requests:
        status, answer = out[name]
        reference = mlflow_client.post("/invocations", content=body.encode(),
                                       headers={"Content-Type": "application/json"})  # fmt: skip
        if name == "csv":
            reference = mlflow_client.post("/invocations", json={"inputs": [[1, 2, 3]]})
        assert status == reference.status_code, (name, answer)
        if status == 200:
            assert same_predictions(answer["predictions"], reference.json()["predictions"]), name
        else:
            assert (
                answer["error_code"] == reference.json()["error_code"] == "INVALID_PARAMETER_VALUE"
            )


def test_unsigned_array_model_scores_tables_without_pandas(
    servers: dict[str, Pair], array_model: mm.LoggedModel, tmp_path: Path
) -> None:
    # the packager leaves pandas out for a model with no signature and an array input example
    config = {**servers["array_model"].config}
    config["signature"] = {"inputs": None, "outputs": None, "params": None}
    requests = [
        ("split", json.dumps({"dataframe_split": {"data": [[1, 2, 3]]}}), None),
        ("records", json.dumps({"dataframe_records": [{"a": 1, "b": 2, "c": 3}]}), None),
        ("csv", "a,b,c\n1,2,3\n", "text/csv"),
        ("inputs", json.dumps({"inputs": [[1, 2, 3]]}), None),
    ]
    out = _score_without_pandas(config, array_model.local_dir, requests, tmp_path)
    reference = servers["array_model"].mlflow.post("/invocations", json={"inputs": [[1, 2, 3]]})
    for name, _, _ in requests:
        assert out[name][0] == 200, (name, out[name])
        assert same_predictions(out[name][1]["predictions"], reference.json()["predictions"])


def test_seed_model_is_the_story(servers: dict[str, Pair]) -> None:
    # USER-STORY.md: fitted on arrays, logged without a signature or an input example
    pair = servers["seed"]
    assert pair.config["signature"] == {"inputs": None, "outputs": None, "params": None}
    assert pair.config["input_example"] is None
    assert pair.config["skops_trusted_types"] == ["sklearn.tree._tree.Tree"]
    model = pair.predictor.model  # type: ignore[attr-defined]
    assert (model.n_features_in_, hasattr(model, "feature_names_in_")) == (4, False)
    story = next(c for c in SEED if c.id == "story")
    assert post(pair.ours, story).json == post(pair.mlflow, story).json == {"predictions": [0, 1]}


_SEED_NO_PANDAS = r"""
import base64, json, sys
sys.modules["pandas"] = None  # `import pandas` now raises ImportError
from pathlib import Path
from mlflow_lambda.handler.app import Scorer
from mlflow_lambda.handler.config import load_config
from mlflow_lambda.handler.flavors import load_model
config = load_config(Path(sys.argv[1]))
scorer = Scorer(load_model(config, Path(sys.argv[2])), config)
out = {"want_frame": scorer.want_frame, "array_error": scorer.array_error, "answers": {}}
for name, body, content_type in json.loads(sys.argv[3]):
    answer = scorer.score(base64.b64decode(body), content_type)
    out["answers"][name] = [answer.status, json.loads(answer.body)]
out["pandas modules"] = sorted(m for m, v in sys.modules.items() if m.startswith("pandas") and v)
print(json.dumps(out))
"""


def test_seed_corpus_without_pandas(
    servers: dict[str, Pair], seed_model: mm.LoggedModel, tmp_path: Path
) -> None:
    """The story's model in a bundle without pandas: every seed case answers as MLflow's
    server does with pandas (status, error code, predictions), from a 2-D array."""
    import base64

    pair = servers["seed"]
    config_path = tmp_path / "model.json"
    config_path.write_text(json.dumps(pair.config), encoding="utf-8")
    requests = [(c.id, base64.b64encode(c.raw_body()).decode(), c.content_type) for c in SEED]
    done = subprocess.run(
        [sys.executable, "-c", _SEED_NO_PANDAS, str(config_path), str(seed_model.local_dir),
         json.dumps(requests)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["pandas modules"] == []
    assert (out["want_frame"], out["array_error"]) == (False, None)
    for case in SEED:
        status, body = out["answers"][case.id]
        theirs = post(pair.mlflow, case)
        if case.differs is not None:  # a deliberate difference: as with pandas
            assert ((status, body.get("error_code")), outcome(theirs)) == (case.ours, case.mlflow)
            continue
        assert (status, body.get("error_code")) == outcome(theirs), (case.id, body, theirs.text)
        if status == 200:
            assert body == theirs.json, case.id  # identical, not just close
    assert out["answers"]["story"] == [200, {"predictions": [0, 1]}]


# --- speed (numbers for the report, no timing asserts) ------------------------------------


async def _drive(app: Any, body: bytes, n: int) -> list[float]:
    """Call an ASGI app ``n`` times in one event loop; per-call seconds."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    times = []
    for _ in range(n):
        sent: list[dict[str, Any]] = []
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/invocations", "raw_path":
                 b"/invocations", "query_string": b"", "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}  # fmt: skip

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        start = time.perf_counter()
        await app(scope, receive, send)
        times.append(time.perf_counter() - start)
        assert sent[0]["status"] == 200
    return times


def _p50_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000.0


def test_speed_report(servers: dict[str, Pair], capsys: pytest.CaptureFixture[str]) -> None:
    pair = servers["forest"]
    rng = np.random.default_rng(0)
    rows = rng.uniform(0.1, 7.0, size=(10_000, 4)).round(2).tolist()
    big = json.dumps({"dataframe_split": {"columns": IRIS, "data": rows}}).encode()
    small = json.dumps({"dataframe_split": {"columns": IRIS, "data": rows[:2]}}).encode()

    ours_big: list[float] = []
    mlflow_big: list[float] = []
    asyncio.run(_drive(pair.ours_app, big, 1))  # warm up both
    asyncio.run(_drive(pair.mlflow_app, big, 1))
    for _ in range(11):  # interleaved, so load from other processes hits both alike
        ours_big += asyncio.run(_drive(pair.ours_app, big, 1))
        mlflow_big += asyncio.run(_drive(pair.mlflow_app, big, 1))
    ours_small = asyncio.run(_drive(pair.ours_app, small, 300))
    scorer = Scorer(pair.predictor, pair.config)  # type: ignore[arg-type]
    model_input, _ = scorer.inputs.enforce(scorer.parse(small, None).payload,
                                          want_frame=scorer.want_frame)  # fmt: skip
    bare = []
    for _ in range(300):
        start = time.perf_counter()
        pair.predictor.predict(model_input, None)
        bare.append(time.perf_counter() - start)

    reference = pair.mlflow.post("/invocations", content=big, headers={"Content-Type": JSON})
    assert json.loads(scorer.score(big, None).body) == reference.json()
    with capsys.disabled():
        print(
            f"\n[speed] 10k rows dataframe_split forest: ours p50 {_p50_ms(ours_big):.1f} ms, "
            f"MLflow p50 {_p50_ms(mlflow_big):.1f} ms "
            f"({_p50_ms(mlflow_big) / _p50_ms(ours_big):.1f}x)\n"
            f"[speed] 2 rows: ours app p50 {_p50_ms(ours_small):.3f} ms, bare predict p50 "
            f"{_p50_ms(bare):.3f} ms, overhead {_p50_ms(ours_small) - _p50_ms(bare):.3f} ms"
        )
