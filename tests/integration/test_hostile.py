"""Hostile input: every event of ``tests/hostile_corpus.py`` gets a 2xx or a 4xx JSON error,
never a 5xx, a function error or a traceback, and the next valid request is still answered.

The corpus runs once in-process through ``handler.events.dispatch`` (the README forest, loaded
as the bundle loads it) and once through the real Lambda runtime (one warm ``LocalLambda`` on
the packaged bundle). Hypothesis then throws any bytes x any content type x any event shape at
``dispatch``. Where MLflow's scoring server answers 200 to odd input, so do we (compared with
MLflow's own app on the same model).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mangum import Mangum

from mlflow_lambda.handler.app import create_app
from mlflow_lambda.handler.events import dispatch
from mlflow_lambda.handler.flavors import load_model
from mlflow_lambda.infra.errors import LocalInvokeError
from mlflow_lambda.infra.invoke import open_bundle
from mlflow_lambda.packager.events import SHAPES, make_event
from mlflow_lambda.packager.inspection import inspect_model
from tests import mlflow_models as mm
from tests.hostile_corpus import CONTENT_TYPES, HEADER, VALID, corpus

pytestmark = pytest.mark.integration
CASES = corpus()
ERROR_KEYS = {"error_code", "message"}


def test_the_corpus_is_large_and_covers_every_shape() -> None:
    assert len(CASES) >= 200
    assert len({c.id for c in CASES}) == len(CASES)
    shapes = {c.id.rpartition("@")[2] for c in CASES if "@" in c.id}
    assert shapes == {"v1", "v2", "url", "alb", "direct"}
    assert sum(c.oversized for c in CASES) == 9
    assert sum(c.not_json for c in CASES) == 2


@pytest.fixture(scope="module")
def adapter(forest: mm.LoggedModel) -> Mangum:
    config = inspect_model(forest.local_dir)
    predictor = load_model(config, forest.local_dir)  # type: ignore[arg-type]
    return Mangum(create_app(predictor, config), lifespan="off")  # type: ignore[arg-type]


def check_answer(case_id: str, answer: Any) -> int:
    """The status of an answer that is 2xx, or 4xx with a JSON error body; else fail."""
    assert isinstance(answer, dict), (case_id, answer)
    if "statusCode" not in answer:  # a direct invoke: the JSON body itself
        assert "predictions" in answer or set(answer) == ERROR_KEYS, (case_id, answer)
        assert "Traceback" not in json.dumps(answer), case_id
        return 200 if "predictions" in answer else 400
    status, body = answer["statusCode"], answer["body"]
    assert isinstance(status, int) and 200 <= status < 500, (case_id, answer)
    assert "Traceback" not in body, (case_id, body)
    doc = json.loads(body)
    if status >= 400:
        assert set(doc) == ERROR_KEYS and doc["message"], (case_id, doc)
    return int(status)


def test_the_corpus_in_process(adapter: Mangum, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)  # the handler logs what it refused; not under test
    valid = make_event("v2", VALID)
    statuses: dict[int, int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy on NaN/overflow input
        for case in CASES:
            answer = dispatch(case.event, None, adapter)
            status = check_answer(case.id, answer)
            statuses[status] = statuses.get(status, 0) + 1
            if case.oversized:
                code = json.loads(answer["body"]) if "body" in answer else answer
                assert code["error_code"] == "REQUEST_LIMIT_EXCEEDED", case.id
            after = dispatch(valid, None, adapter)
            assert (case.id, after["statusCode"]) == (case.id, 200)
    assert set(statuses) == {200, 400, 413, 415}, statuses


@pytest.fixture(scope="module")
def warm_lambda(forest_build: Path) -> Iterator[Any]:
    with open_bundle(forest_build) as fn:
        yield fn


def test_the_corpus_through_the_real_runtime(warm_lambda: Any) -> None:
    """One warm LocalLambda (RIE + awslambdaric) answers every hostile event."""
    valid = make_event("v2", VALID)
    for i, case in enumerate(CASES):
        if case.oversized:  # Lambda refuses an invocation payload over 6 MB before the handler
            with pytest.raises(LocalInvokeError, match="synchronous invocation limit"):
                warm_lambda.invoke(case.event)
            continue
        result = warm_lambda.invoke(case.event)
        if case.not_json:  # awslambdaric refuses NaN/Infinity in the event, as on AWS
            assert result.error_type == "Runtime.UnmarshalError", (case.id, result)
            continue
        assert (case.id, result.error_type) == (case.id, None), result.error_message
        check_answer(case.id, result.json())
        if i % 20 == 0 or i == len(CASES) - 1:
            after = warm_lambda.invoke(valid).json()
            assert (case.id, after["statusCode"]) == (case.id, 200)
            assert json.loads(after["body"]) == {"predictions": [0]}


_headers = st.dictionaries(
    st.text(min_size=1, max_size=20),
    st.one_of(st.text(max_size=40), st.none(), st.integers()),
    max_size=3,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=5)
                | st.dictionaries(
                    st.sampled_from(
                        ["dataframe_split", "data", "columns", "inputs", "instances", "params", "x"]
                    ),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=30,
        ).map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200).map(lambda b: HEADER + b"\n" + b),
    ),
    content_type=st.one_of(st.sampled_from(CONTENT_TYPES), st.text(max_size=60)),
    shape=st.sampled_from([s for s in SHAPES if s != "direct"]),
    base64=st.sampled_from([None, True, False]),
)
def test_any_bytes_any_content_type_any_shape(
    adapter: Mangum, body: bytes, content_type: str | None, shape: str, base64: bool | None
) -> None:
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if base64 is False and not _is_utf8(body):
                base64 = None  # an HTTP event carries non-UTF-8 bytes only as base64
            event = make_event(shape, body, content_type=content_type, base64=base64)
            check_answer(f"{shape} {content_type!r} {body[:60]!r}", dispatch(event, None, adapter))
        assert dispatch(make_event(shape, VALID), None, adapter)["statusCode"] == 200
    finally:
        logging.disable(logging.NOTSET)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "dataframe_split",
                        "dataframe_records",
                        "inputs",
                        "instances",
                        "params",
                        "data",
                        "columns",
                        "requestContext",
                        "httpMethod",
                        "path",
                        "headers",
                        "version",
                        "body",
                        "http",
                        "elb",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=25,
    )
)
def test_any_event_of_any_shape(adapter: Mangum, event: Any) -> None:
    """Arbitrary JSON events, some of which look like one shape or another: never a raise."""
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            check_answer(repr(event)[:200], dispatch(event, None, adapter))
    finally:
        logging.disable(logging.NOTSET)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- where MLflow answers 200, so do we -----------------------------------------------------

LENIENT = {
    "params-list": (json.dumps({**VALID, "params": [1, 2]}).encode(), "application/json"),
    "params-string": (json.dumps({**VALID, "params": "x"}).encode(), "application/json"),
    "csv-short-row": (HEADER + b"\n5.1,3.5\n", "text/csv"),
    "csv-short-and-full-rows": (HEADER + b"\n5.1,3.5,1.4,0.2\n6.7,3.0\n", "text/csv"),
}


@pytest.fixture(scope="module")
def both_apps(forest: mm.LoggedModel) -> Iterator[dict[str, Any]]:
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    config = inspect_model(forest.local_dir)
    ours = create_app(load_model(config, forest.local_dir), config)  # type: ignore[arg-type]
    theirs = scoring_server.init(mlflow.pyfunc.load_model(str(forest.local_dir)))
    yield {
        "ours": TestClient(ours, raise_server_exceptions=False),
        "mlflow": TestClient(theirs, raise_server_exceptions=False),
    }


@pytest.mark.parametrize("name", sorted(LENIENT))
def test_lenient_where_mlflow_is(both_apps: dict[str, Any], name: str) -> None:
    body, content_type = LENIENT[name]
    answers = {
        side: client.post("/invocations", content=body, headers={"content-type": content_type})
        for side, client in both_apps.items()
    }
    assert answers["mlflow"].status_code == 200, answers["mlflow"].text
    assert (name, answers["ours"].status_code) == (name, 200), answers["ours"].text
    assert answers["ours"].json() == answers["mlflow"].json()
