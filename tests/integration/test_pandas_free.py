"""Models with all-numeric signature columns, served without pandas installed.

Every request is answered three times: by MLflow's scoring server and by our handler with
pandas (both in this process), and by our handler in a subprocess where ``import pandas``
raises (what a bundle planned without pandas sees). The pandas-free answer must match ours
with pandas exactly (status, error code, predictions), and MLflow's wherever the corpus
does not document a deliberate difference.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from mlflow_lambda.handler.app import Scorer
from mlflow_lambda.handler.flavors import load_model
from mlflow_lambda.packager.inspection import inspect_model
from mlflow_lambda.packager.pandas_choice import model_needs_pandas
from tests import mlflow_models as mm
from tests.parity_corpus import BAD, CSV, FOREST, JSON, OK, Case, _split

with warnings.catch_warnings():
    # starlette 1.x warns at import that it prefers `httpx2` (not installed)
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
NUMERIC_REASON = "the model's signature has only numeric columns"

# Runs in a fresh interpreter with `import pandas` blocked. `-W error::UserWarning` turns
# scikit-learn's "X does not have valid feature names" into an exception (then a 400), so
# the handler's narrowly scoped silencing is checked too.
_NO_PANDAS = r"""
import base64, json, logging, sys
sys.modules["pandas"] = None  # `import pandas` now raises ImportError
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from pathlib import Path
from mlflow_lambda.handler.app import Scorer
from mlflow_lambda.handler.config import load_config
from mlflow_lambda.handler.flavors import load_model
config = load_config(Path(sys.argv[1]))
scorer = Scorer(load_model(config, Path(sys.argv[2])), config)
out = {"pandas": scorer.pandas, "want_frame": scorer.want_frame, "answers": {}}
for name, body, content_type in json.loads(sys.argv[3]):
    answer = scorer.score(base64.b64decode(body), content_type)
    out["answers"][name] = [answer.status, json.loads(answer.body)]
out["pandas modules"] = sorted(m for m, v in sys.modules.items() if m.startswith("pandas") and v)
print(json.dumps(out))
"""


# A LinearRegression fitted on a DataFrame of long, double, boolean and integer (int32)
# columns: served without pandas from a float64 array (logged here, not by conftest).
NUMERIC_COLUMNS = ["age", "income", "vip", "rooms"]
N1, N2 = [70, 29881.7, True, 3], [57, 28977.2, False, 5]
_NUM_CSV = ",".join(NUMERIC_COLUMNS) + "\n"


def _num_records(*rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(zip(NUMERIC_COLUMNS, row, strict=True)) for row in rows]


NUMERIC = [
    Case("split", "numeric", _split(NUMERIC_COLUMNS, [N1, N2])),
    Case("split-index", "numeric", _split(NUMERIC_COLUMNS, [N1, N2], index=["x", "y"])),
    Case("split-no-columns", "numeric", _split(None, [N1])),
    Case(
        "split-reordered-extra",
        "numeric",
        _split(["rooms", "x", "vip", "income", "age"], [[3, "q", True, 29881.7, 70]]),
    ),
    Case("split-missing-column", "numeric", _split(NUMERIC_COLUMNS[:3], [N1[:3]])),
    Case("split-bad-double", "numeric", _split(NUMERIC_COLUMNS, [[70, "abc", True, 3]])),
    Case("split-text-numbers", "numeric", _split(NUMERIC_COLUMNS, [["70", "1.5", True, "3"]])),
    Case("split-whole-floats", "numeric", _split(NUMERIC_COLUMNS, [[70.0, 1, 1, 3.0]])),
    Case("split-bool-as-text", "numeric", _split(NUMERIC_COLUMNS, [[70, 1.5, "false", 3]])),
    Case("split-long-null", "numeric", _split(NUMERIC_COLUMNS, [[None, 1.5, True, 3]])),
    Case("split-double-null", "numeric", _split(NUMERIC_COLUMNS, [[70, None, True, 3]])),
    Case("split-empty", "numeric", _split(NUMERIC_COLUMNS, [])),
    Case("records", "numeric", {"dataframe_records": _num_records(N1, N2)}),
    Case("records-extra", "numeric", {"dataframe_records": [{**_num_records(N1)[0], "x": 1}]}),
    Case("records-missing-key", "numeric", {"dataframe_records": [{"age": 1, "income": 2.0}]}),
    Case("instances-objects", "numeric", {"instances": _num_records(N1, N2)}),
    Case("instances-rows", "numeric", {"instances": [N1]}),
    Case(
        "inputs-columns",
        "numeric",
        {"inputs": {n: [a, b] for n, a, b in zip(NUMERIC_COLUMNS, N1, N2, strict=True)}},
    ),
    Case("inputs-scalars", "numeric", {"inputs": _num_records(N1)[0]}),
    Case("inputs-broadcast", "numeric", {"inputs": {**_num_records(N1)[0], "age": [70, 60]}}),
    Case("inputs-records", "numeric", {"inputs": _num_records(N1, N2)}),
    Case("inputs-rows", "numeric", {"inputs": [N1]}),
    Case("params-without-schema", "numeric", {**_split(NUMERIC_COLUMNS, [N1]), "params": {"a": 1}}),
    Case("csv", "numeric", _NUM_CSV + "70,29881.7,True,3\n57,28977.2,False,5\n", CSV),
    Case("csv-reordered-extra", "numeric", "rooms,x,vip,income,age\n3,q,true,29881.7,70\n", CSV),
    Case("csv-long-whole-float", "numeric", _NUM_CSV + "70.0,29881.7,TRUE,3\n", CSV),
    Case("csv-long-fraction", "numeric", _NUM_CSV + "1.7,29881.7,True,3\n", CSV),
    Case("csv-long-missing", "numeric", _NUM_CSV + ",29881.7,True,3\n", CSV),
    Case("csv-double-missing", "numeric", _NUM_CSV + "70,NA,True,3\n", CSV),
    Case("csv-bad-double", "numeric", _NUM_CSV + "70,abc,True,3\n", CSV),
    Case("csv-bool-as-number", "numeric", _NUM_CSV + "70,1.5,0,3\n", CSV),
    Case("csv-quoted-inf", "numeric", _NUM_CSV + '70,"-inf",False,3\n', CSV),
    Case("csv-short-row", "numeric", _NUM_CSV + "70,1.5,True\n", CSV),
    Case("csv-long-row", "numeric", _NUM_CSV + "70,1.5,True,3\n1,2,True,4,5\n", CSV),
    Case("csv-index-column", "numeric", _NUM_CSV + "9,70,1.5,True,3\n8,57,1.5,False,5\n", CSV),
    Case("csv-missing-column", "numeric", "age,income,vip\n70,1.5,True\n", CSV),
    Case("csv-header-only", "numeric", _NUM_CSV, CSV),
    Case("csv-empty", "numeric", "", CSV),
    Case(
        "split-long-fraction",
        "numeric",
        _split(NUMERIC_COLUMNS, [[1.7, 29881.7, True, 3]]),
        JSON,
        "FIX 1.7 into long",
        BAD,
        OK,
    ),
    Case(
        "long-overflow",
        "numeric",
        _split(NUMERIC_COLUMNS, [[2**63, 29881.7, True, 3]]),
        JSON,
        "extra: MLflow wraps 2**63 to a negative int64",
        BAD,
        OK,
    ),
]


@dataclass(frozen=True)
class Served:
    """One model: its config, MLflow's server, and our scorer with pandas."""

    logged: mm.LoggedModel
    config: dict[str, Any]
    mlflow: TestClient
    ours: Scorer


def _numeric_frame(n: int = 120) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype("int64"),
            "income": rng.normal(30_000, 5_000, n).round(1),
            "vip": rng.random(n) < 0.3,
            "rooms": rng.integers(1, 7, n).astype("int32"),
        }
    )
    y = X["age"] * 3.0 + X["income"] / 100 + X["vip"] * 7 + X["rooms"] * 0.5
    return X, y.to_numpy()


def log_numeric() -> mm.LoggedModel:
    """LinearRegression on long, double, boolean and integer columns (feature_names_in_ set)."""
    from sklearn.linear_model import LinearRegression

    X, y = _numeric_frame()
    return mm._log("numeric", LinearRegression().fit(X, y), X)


def log_by_name() -> mm.LoggedModel:
    """Numeric columns, but a ColumnTransformer that selects them by name: needs a DataFrame."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _numeric_frame()
    prep = ColumnTransformer([("num", StandardScaler(), ["age", "income"])])
    model = Pipeline([("prep", prep), ("lr", LinearRegression())]).fit(X, y)
    return mm._log("by_name", model, X)


@pytest.fixture(scope="module")
def served(forest: mm.LoggedModel, mlflow_store: str) -> Iterator[dict[str, Served]]:
    import mlflow.pyfunc
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT
    from mlflow.pyfunc import scoring_server

    flag = _MLFLOW_IS_IN_SERVING_ENVIRONMENT.name
    saved = os.environ.get(flag)  # scoring_server.init sets it for the whole process
    out: dict[str, Served] = {}
    try:
        for name, logged in (("forest", forest), ("numeric", log_numeric())):
            app = scoring_server.init(mlflow.pyfunc.load_model(str(logged.local_dir)))
            config = inspect_model(logged.local_dir)
            ours = Scorer(load_model(config, logged.local_dir), config)  # type: ignore[arg-type]
            client = TestClient(app, raise_server_exceptions=False)
            out[name] = Served(logged, config, client, ours)
        yield out
    finally:
        if saved is None:
            os.environ.pop(flag, None)
        else:
            os.environ[flag] = saved


def score_without_pandas(
    config: dict[str, Any], model_dir: Path, cases: list[Case], tmp_path: Path
) -> tuple[dict[str, Any], str]:
    """Score ``cases`` in a subprocess that cannot import pandas; (result, stderr)."""
    config_path = tmp_path / "model.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    requests = [
        (c.id, base64.b64encode(c.raw_body()).decode(), c.content_type) for c in cases
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", _NO_PANDAS, str(config_path),
         str(model_dir), json.dumps(requests)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert out.pop("pandas modules") == []
    assert out.pop("pandas") is False
    return out, done.stderr


def _outcome(status: int, body: Any) -> tuple[int, str | None]:
    return status, body.get("error_code") if isinstance(body, dict) else None


def _mlflow_answer(client: TestClient, case: Case) -> tuple[int, Any]:
    r = client.post("/invocations", content=case.raw_body(), headers=case.headers())
    try:
        return r.status_code, r.json()
    except ValueError:  # MLflow's 415 / 500 answers are plain text
        return r.status_code, None


def _check_corpus(served: Served, cases: list[Case], tmp_path: Path) -> dict[str, Any]:
    out, _ = score_without_pandas(served.config, served.logged.local_dir, cases, tmp_path)
    assert out["want_frame"] is False  # the array path, not a DataFrame
    answers: dict[str, Any] = out["answers"]
    assert sorted(answers) == sorted(c.id for c in cases)
    for case in cases:
        status, body = answers[case.id]
        with_pandas = served.ours.score(case.raw_body(), case.content_type)
        reference = json.loads(with_pandas.body)
        # exactly our answer with pandas (messages may name a different CSV parser error)
        assert _outcome(status, body) == _outcome(with_pandas.status, reference), case.id
        if status == 200:
            assert body == reference, case.id  # predictions identical, not just close
        theirs = _mlflow_answer(served.mlflow, case)
        if case.differs is None:
            assert _outcome(status, body) == _outcome(*theirs), (case.id, body, theirs)
            if status == 200:
                assert body == theirs[1], case.id
        else:
            assert _outcome(status, body) == case.ours, case.id
            assert _outcome(*theirs) == case.mlflow, case.id
    return answers


def test_plan_decisions_on_real_models(
    served: dict[str, Served], regressor: mm.LoggedModel
) -> None:
    assert model_needs_pandas(served["forest"].config) == (False, NUMERIC_REASON)
    assert model_needs_pandas(served["numeric"].config) == (False, NUMERIC_REASON)
    assert model_needs_pandas(inspect_model(regressor.local_dir)) == (
        True,
        "the model's signature has a 'string' column 'city'",
    )
    types = [c["type"] for c in served["numeric"].config["signature"]["inputs"]]
    assert types == ["long", "double", "boolean", "integer"]
    assert served["numeric"].ours.inputs.array_dtype == np.dtype("float64")


def test_forest_corpus_without_pandas(served: dict[str, Served], tmp_path: Path) -> None:
    answers = _check_corpus(served["forest"], FOREST, tmp_path)
    assert answers["split"] == [200, {"predictions": [0, 2]}]
    assert answers["csv"] == answers["split"]
    assert _outcome(*answers["split-missing-column"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "['petal width (cm)']" in answers["split-missing-column"][1]["message"]
    assert _outcome(*answers["split-bad-double"]) == (400, "BAD_REQUEST")


def test_numeric_corpus_without_pandas(served: dict[str, Served], tmp_path: Path) -> None:
    answers = _check_corpus(served["numeric"], NUMERIC, tmp_path)
    expected = served["numeric"].mlflow.post(
        "/invocations", json={"dataframe_split": {"columns": ["age", "income", "vip", "rooms"],
                                                  "data": [[70, 29881.7, True, 3]]}},
    ).json()  # fmt: skip
    for case_id in ("csv-reordered-extra", "split-reordered-extra", "inputs-scalars"):
        assert answers[case_id] == [200, expected], case_id
    assert answers["split-long-fraction"][1]["message"].startswith(
        "Invalid input. Column 'age' has integer type int64 but received the value 1.7"
    )


def test_name_selecting_column_transformer_fails_without_pandas(
    mlflow_store: str, tmp_path: Path
) -> None:
    # What the build's import-and-predict check sees for such a model in a pandas-free
    # bundle: a 400 on the input example; the log has scikit-learn's reason.
    logged = log_by_name()
    config = inspect_model(logged.local_dir)
    assert model_needs_pandas(config) == (False, NUMERIC_REASON)  # the plan cannot tell
    example = Case("example", "by_name", config["input_example"])
    ours = Scorer(load_model(config, logged.local_dir), config)  # type: ignore[arg-type]
    assert ours.score(example.raw_body(), None).status == 200  # with pandas: fine
    out, stderr = score_without_pandas(config, logged.local_dir, [example], tmp_path)
    status, body = out["answers"]["example"]
    assert (status, body["error_code"]) == (400, "BAD_REQUEST")
    assert body["message"].startswith("Encountered an unexpected error while evaluating")
    assert "ValueError: Specifying the columns using strings is only supported for dataframes." in (
        stderr
    )
    assert "pandas is not installed, so the model got a 2-D numpy array" in stderr


def test_fitted_names_differing_from_the_signature_are_refused(
    served: dict[str, Served], tmp_path: Path
) -> None:
    # scikit-learn refuses a DataFrame whose columns are not the fitted ones; without
    # pandas the handler must not score such an array positionally.
    config = json.loads(json.dumps(served["forest"].config))
    config["signature"]["inputs"].reverse()
    names = [c["name"] for c in config["signature"]["inputs"]]
    case = Case("reversed", "forest", {"dataframe_split": {"columns": names, "data": [[1] * 4]}})
    ours = Scorer(served["forest"].ours.predictor, config)
    with_pandas = ours.score(case.raw_body(), None)
    out, stderr = score_without_pandas(config, served["forest"].logged.local_dir, [case], tmp_path)
    status, body = out["answers"]["reversed"]
    assert _outcome(status, body) == _outcome(with_pandas.status, json.loads(with_pandas.body))
    assert _outcome(status, body) == (400, "BAD_REQUEST")
    assert "every request will fail: the model was fitted on columns" in stderr
