"""handler.app with hand-made configs and a small fake predictor (a real object)."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

with warnings.catch_warnings():
    # starlette 1.x warns at import that it prefers `httpx2` (not installed); the client
    # works the same with httpx.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from mlflow_lambda import handler
from mlflow_lambda.handler.app import MODEL_ERROR_MESSAGE, Scorer, create_app, pandas_installed
from mlflow_lambda.handler.config import ModelConfig
from mlflow_lambda.handler.serialize import MAX_REASON_CHARS, predictions_json

COLUMNS = [{"type": "double", "name": n, "required": True} for n in ("a", "b")]
ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}


def make_config(
    inputs: list[dict[str, Any]] | None = None, params: list[dict[str, Any]] | None = None
) -> ModelConfig:
    return {
        "config_version": 1,
        "flavor": "sklearn",
        "loader_module": "mlflow.sklearn",
        "model_file": "model.pkl",
        "serialization_format": "pickle",
        "skops_trusted_types": [],
        "predict_fn": "predict",
        "python_version": "3.11.7",
        "mlflow_version": "3.17.2",
        "flavor_library_version": "1.9.1",
        "run_id": None,
        "model_id": None,
        "requirements": [],
        "signature": {"inputs": inputs, "outputs": None, "params": params},
        "input_example": None,
        "files": {},
    }


class FakePredictor:
    """Records what it is given; answers with ``answer(data)`` or raises ``error``."""

    def __init__(
        self,
        answer: Callable[[Any], Any] = lambda data: np.asarray(data).sum(axis=1),
        error: Exception | None = None,
        accepts_ndarray: bool | None = None,
    ) -> None:
        self.answer = answer
        self.error = error
        self.calls: list[tuple[Any, Any]] = []
        if accepts_ndarray is not None:
            self.accepts_ndarray = accepts_ndarray

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        self.calls.append((data, params))
        if self.error is not None:
            raise self.error
        return self.answer(data)


def client_for(
    predictor: FakePredictor, config: ModelConfig | None = None, **kw: Any
) -> TestClient:
    return TestClient(create_app(predictor, config or make_config(COLUMNS), **kw))


@pytest.fixture
def fake() -> FakePredictor:
    return FakePredictor()


@pytest.fixture
def client(fake: FakePredictor) -> TestClient:
    return client_for(fake)


def test_health_and_version(client: TestClient) -> None:
    for path in ("/ping", "/health"):
        r = client.get(path)
        assert (r.status_code, r.text, r.headers["content-type"]) == (200, "\n", "application/json")
    r = client.get("/version")
    assert (r.status_code, r.text) == (200, handler.__version__)


def test_unknown_path_and_wrong_method_answer_like_fastapi(client: TestClient) -> None:
    r = client.get("/nope")
    assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})
    r = client.get("/invocations")
    assert (r.status_code, r.json()) == (405, {"detail": "Method Not Allowed"})
    r = client.post("/ping")
    assert (r.status_code, r.json()) == (405, {"detail": "Method Not Allowed"})


def test_invocations_passes_a_frame_by_default(client: TestClient, fake: FakePredictor) -> None:
    r = client.post("/invocations", json=ROW)
    assert (r.status_code, r.json()) == (200, {"predictions": [3.0, 7.0]})
    assert r.headers["content-type"] == "application/json"
    data, params = fake.calls[0]
    assert isinstance(data, pd.DataFrame) and data.to_dict(orient="list") == {
        "a": [1.0, 3.0],
        "b": [2.0, 4.0],
    }
    assert params is None


def test_predictor_that_accepts_arrays_gets_one() -> None:
    fake = FakePredictor(accepts_ndarray=True)
    r = client_for(fake).post("/invocations", json=ROW)
    assert r.json() == {"predictions": [3.0, 7.0]}
    data, _ = fake.calls[0]
    assert isinstance(data, np.ndarray) and data.tolist() == [[1.0, 2.0], [3.0, 4.0]]


class NamedPredictor(FakePredictor):
    """Like a scikit-learn model fitted on a DataFrame with columns ``a``, ``b``."""

    feature_names = ("a", "b")
    accepts_ndarray = False


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps(ROW), None),
        (json.dumps({"dataframe_records": [{"b": 2, "a": 1}, {"a": 3, "b": 4, "x": 0}]}), None),
        (json.dumps({"inputs": {"a": [1, 3], "b": [2, 4]}}), None),
        ("b,x,a\n2,y,1\n4,z,3\n", "text/csv"),
    ],
)
def test_without_pandas_a_named_numeric_model_gets_an_array(
    body: str, content_type: str | None
) -> None:
    fake = NamedPredictor()
    scorer = Scorer(fake, make_config(COLUMNS), pandas=False)
    assert (scorer.want_frame, scorer.array_error) == (False, None)
    answer = scorer.score(body.encode(), content_type)
    assert (answer.status, json.loads(answer.body)) == (200, {"predictions": [3.0, 7.0]})
    data, _ = fake.calls[0]
    assert type(data) is np.ndarray and data.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_without_pandas_errors_keep_their_codes() -> None:
    scorer = Scorer(NamedPredictor(), make_config(COLUMNS), pandas=False)
    missing = scorer.score(b"a\n1\n", "text/csv")
    assert (missing.status, missing.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert "['b']" in json.loads(missing.body)["message"]
    bad = scorer.score(json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [
        [1, "abc"]]}}).encode(), None)  # fmt: skip
    assert (bad.status, bad.error_code) == (400, "BAD_REQUEST")


def test_without_pandas_fitted_names_must_be_the_signature(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = NamedPredictor()
    fake.feature_names = ("b", "a")  # an array in signature order would be read wrongly
    with caplog.at_level(logging.WARNING, logger="mlflow_lambda.model"):
        scorer = Scorer(fake, make_config(COLUMNS), pandas=False)
        answer = scorer.score(json.dumps(ROW).encode(), None)
    assert (answer.status, json.loads(answer.body)) == (
        400,
        {
            "error_code": "BAD_REQUEST",
            "message": f"{MODEL_ERROR_MESSAGE} ValueError: the model was fitted on columns "
            "['b', 'a'] but its signature has ['a', 'b']; MLflow's DataFrame would be refused "
            "the same way",
        },
    )
    assert fake.calls == []
    assert "fitted on columns ['b', 'a'] but its signature has ['a', 'b']" in caplog.text
    # with pandas the model gets a DataFrame and judges the names itself
    assert Scorer(fake, make_config(COLUMNS), pandas=True).want_frame is True


def test_pandas_installed_reads_sys_modules_without_importing() -> None:
    assert pandas_installed() is True  # imported by this module
    saved = sys.modules["pandas"]
    sys.modules["pandas"] = None  # type: ignore[assignment]
    try:
        assert pandas_installed() is False
    finally:
        sys.modules["pandas"] = saved


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, json.dumps(ROW)),  # FIX: no Content-Type means JSON (MLflow: 500)
        ({"Content-Type": "application/json; charset=utf-8"}, json.dumps(ROW)),
        ({"Content-Type": "text/csv"}, "a,b\n1,2\n3,4\n"),
        ({"Content-Type": "application/csv"}, "b,a\n2,1\n4,3\n"),  # FIX: MLflow 415
    ],
)
def test_content_types(client: TestClient, headers: dict[str, str], body: str) -> None:
    r = client.post("/invocations", content=body.encode(), headers=headers)
    assert (r.status_code, r.json()) == (200, {"predictions": [3.0, 7.0]})


def test_unsupported_media_type_is_a_json_415(client: TestClient) -> None:
    r = client.post("/invocations", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.headers["content-type"] == "application/json"  # FIX: MLflow sends text/plain
    assert r.json() == {
        "error_code": "BAD_REQUEST",
        "message": "This predictor only supports the following content types: "
        "['application/csv', 'application/json', 'text/csv']. Got 'text/plain'.",
    }


def test_body_over_the_limit_is_a_json_413(fake: FakePredictor) -> None:
    client = client_for(fake, max_request_bytes=64)
    body = json.dumps(ROW).encode()
    assert len(body) > 64
    expected = {
        "error_code": "REQUEST_LIMIT_EXCEEDED",
        "message": "Request body exceeds the 64 byte limit (Lambda's 6 MB synchronous payload "
        "limit); send fewer rows per request.",
    }
    r = client.post("/invocations", content=body)
    assert (r.status_code, r.json()) == (413, expected)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size is counted
        yield body[:40]
        yield body[40:]

    r = client.post("/invocations", content=chunks())
    assert (r.status_code, r.json()) == (413, expected)
    assert fake.calls == []
    ok = client_for(fake, max_request_bytes=len(body)).post("/invocations", content=body)
    assert ok.status_code == 200


def test_non_finite_predictions_become_null() -> None:
    fake = FakePredictor(answer=lambda data: np.array([np.nan, np.inf, -np.inf, 1.5]))
    r = client_for(fake).post("/invocations", json=ROW)
    # msgspec writes compact JSON (no spaces after separators): the same JSON value as before
    assert r.text == '{"predictions":[null,null,null,1.5]}'


def test_model_error_is_a_400_without_stack_trace(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakePredictor(error=ValueError("Input X contains NaN"))
    with caplog.at_level(logging.INFO, logger="mlflow_lambda"):
        r = client_for(fake).post("/invocations", json=ROW)
    assert (r.status_code, r.json()) == (
        400,
        {
            "error_code": "BAD_REQUEST",
            "message": f"{MODEL_ERROR_MESSAGE} ValueError: Input X contains NaN",
        },
    )
    [record] = [rec for rec in caplog.records if rec.name == "mlflow_lambda.model"]
    assert "Input X contains NaN" in json.loads(record.getMessage())["traceback"]  # one line


def test_a_module_missing_from_the_bundle_is_a_500_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not the client's fault (e.g. a module --trim left out): 500, and the module's name."""
    fake = FakePredictor(
        error=ModuleNotFoundError("No module named 'scipy.signal'", name="scipy.signal")
    )
    with caplog.at_level(logging.INFO, logger="mlflow_lambda"):
        r = client_for(fake).post("/invocations", json=ROW)
    assert (r.status_code, r.json()) == (
        500,
        {
            "error_code": "INTERNAL_ERROR",
            "message": "The model needs module 'scipy.signal', which this bundle does not "
            "contain; see the function's logs.",
        },
    )
    [record] = [rec for rec in caplog.records if rec.name == "mlflow_lambda.model"]
    assert "scipy.signal" in json.loads(record.getMessage())["traceback"]  # one line


def test_unencodable_prediction_is_a_json_500() -> None:
    fake = FakePredictor(answer=lambda data: {"x": object()})
    r = client_for(fake).post("/invocations", json=ROW)
    assert (r.status_code, r.json()) == (
        500,
        {"error_code": "INTERNAL_ERROR", "message": "Internal error while scoring; see logs."},
    )


def test_signature_errors_reach_the_client(client: TestClient) -> None:
    r = client.post("/invocations", json={"dataframe_split": {"columns": ["a"], "data": [[1]]}})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    r = client.post("/invocations", json={"dataframe_records": [{"a": "x", "b": 1}]})
    assert (r.status_code, r.json()["error_code"]) == (400, "BAD_REQUEST")
    assert "column 'a'" in r.json()["message"]


def test_params_with_and_without_schema() -> None:
    params = [{"name": "k", "type": "long", "default": 3, "shape": None}]
    fake = FakePredictor()
    client = client_for(fake, make_config(COLUMNS, params))
    assert client.post("/invocations", json={**ROW, "params": {"k": 5, "x": 1}}).status_code == 200
    assert client.post("/invocations", json=ROW).status_code == 200
    assert [p for _, p in fake.calls] == [{"k": 5}, {"k": 3}]
    r = client.post("/invocations", json={**ROW, "params": {"k": "five"}})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")

    fake = FakePredictor()
    r = client_for(fake).post("/invocations", json={**ROW, "params": {"k": 5}})
    assert r.status_code == 200 and fake.calls[0][1] is None  # ignored without a schema


def test_one_json_access_log_line_per_request(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mlflow_lambda.access"):
        client.post("/invocations", json=ROW)
        client.post("/invocations", json={"nope": 1})
        client.get("/ping")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("access")]
    for line in lines:
        assert line.pop("duration_ms") >= 0
    assert lines == [
        {"method": "POST", "path": "/invocations", "status": 200, "rows": 2, "error_code": None},
        {
            "method": "POST",
            "path": "/invocations",
            "status": 400,
            "rows": None,
            "error_code": "BAD_REQUEST",
        },
        {"method": "GET", "path": "/ping", "status": 200, "rows": None, "error_code": None},
    ]


def test_serialize_follows_mlflow_json_conversions() -> None:
    frame = pd.DataFrame({"p": [0.5, np.nan], "when": pd.to_datetime(["2024-01-02", None])})
    assert json.loads(predictions_json(frame)) == {
        "predictions": [{"p": 0.5, "when": "2024-01-02T00:00:00"}, {"p": None, "when": None}]
    }
    # MLflow answers a Series as records of a one-column frame
    assert json.loads(predictions_json(pd.Series([1, 2], name="y"))) == {
        "predictions": [{"y": 1}, {"y": 2}]
    }
    assert json.loads(predictions_json([np.float32(0.5), b"\x00\x01", np.int64(3)])) == {
        "predictions": [0.5, "AAE=\n", 3]
    }
    days = np.array(["2024-01-02", "NaT"], dtype="datetime64[D]")
    assert json.loads(predictions_json(list(days))) == {"predictions": ["2024-01-02", None]}
    assert json.loads(predictions_json(np.array([["a", "b"]], dtype=object))) == {
        "predictions": [["a", "b"]]
    }
    assert predictions_json({"k": [float("nan"), np.float64("inf")]}) == (
        b'{"predictions": {"k": [null, null]}}'
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            ValueError(
                "X has 3 features, but RandomForestClassifier is expecting 4 features as input."
            ),
            "ValueError: X has 3 features, but RandomForestClassifier is expecting 4 features "
            "as input.",
        ),
        # host paths cut to their last part
        (
            FileNotFoundError(2, "No such file or directory", "/var/task/model/extra.pkl"),
            "FileNotFoundError: [Errno 2] No such file or directory: '.../extra.pkl'",
        ),
        # the first line only: never a traceback
        (
            RuntimeError('\nbroken\n  File "/home/me/.venv/lib/x.py", line 3, in f\n'),
            "RuntimeError: broken",
        ),
        (KeyError("petal"), "KeyError: 'petal'"),
        (ArithmeticError(), "ArithmeticError"),
    ],
)
def test_model_error_says_why(error: Exception, reason: str) -> None:
    r = client_for(FakePredictor(error=error)).post("/invocations", json=ROW)
    assert (r.status_code, r.json()) == (
        400,
        {"error_code": "BAD_REQUEST", "message": f"{MODEL_ERROR_MESSAGE} {reason}"},
    )


def test_model_error_reason_is_capped() -> None:
    fake = FakePredictor(error=ValueError("columns: " + ", ".join(map(str, range(500)))))
    message = client_for(fake).post("/invocations", json=ROW).json()["message"]
    reason = message.removeprefix(f"{MODEL_ERROR_MESSAGE} ")
    assert reason.startswith("ValueError: columns: 0, 1, 2") and reason.endswith("...")
    assert len(reason) == MAX_REASON_CHARS


def test_real_estimator_error_says_why() -> None:
    """The issue's case: 3 columns to a forest fitted on 4 array columns (no signature)."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    forest = RandomForestClassifier(n_estimators=2, random_state=0)
    forest.fit(rng.random((8, 4)), [0, 1] * 4)
    fake = FakePredictor(answer=forest.predict)
    r = client_for(fake, make_config(None)).post("/invocations", json={"inputs": [[1, 2, 3]]})
    assert (r.status_code, r.json()) == (
        400,
        {
            "error_code": "BAD_REQUEST",
            "message": f"{MODEL_ERROR_MESSAGE} ValueError: X has 3 features, but "
            "RandomForestClassifier is expecting 4 features as input.",
        },
    )


class ArrayPredictor(NamedPredictor):
    """Like the user story's forest: fitted on a bare array (no feature names)."""

    feature_names = None  # type: ignore[assignment]
    accepts_ndarray = True


UNSIGNED: list[dict[str, Any]] | None = None


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"dataframe_split": {"columns": [0, 1], "data": [[1, 2], [3, 4]]}}), None),
        (json.dumps({"dataframe_split": {"columns": ["b", "a"], "data": [[1, 2], [3, 4]]}}), None),
        (json.dumps({"dataframe_records": [{"x": 1, "y": 2}, {"x": 3, "y": "4"}]}), None),
        (json.dumps({"instances": [[1, 2], [3, 4]]}), None),
        (json.dumps({"inputs": [[1, 2], [3, 4]]}), None),
        ("p,q\n1,2\n3,4\n", "text/csv"),
    ],
)
def test_without_pandas_an_unsigned_array_model_gets_the_array_as_sent(
    body: str, content_type: str | None
) -> None:
    fake = ArrayPredictor()
    scorer = Scorer(fake, make_config(UNSIGNED), pandas=False)
    assert (scorer.want_frame, scorer.array_error) == (False, None)
    answer = scorer.score(body.encode(), content_type)
    assert answer.status == 200, answer.body
    data, _ = fake.calls[0]
    assert type(data) is np.ndarray and data.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_without_pandas_an_unsigned_model_fitted_on_names_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = NamedPredictor()
    with caplog.at_level(logging.WARNING, logger="mlflow_lambda.model"):
        scorer = Scorer(fake, make_config(UNSIGNED), pandas=False)
        answer = scorer.score(json.dumps(ROW).encode(), None)
    assert (answer.status, answer.error_code, fake.calls) == (400, "BAD_REQUEST", [])
    assert "fitted on named columns ['a', 'b'] and has no signature" in caplog.text
