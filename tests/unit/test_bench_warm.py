"""The bench's per-request overhead times the estimator's own predict inside each handler call."""

from __future__ import annotations

import time

import numpy as np
from sklearn.linear_model import LinearRegression  # type: ignore[import-untyped]

from bench.warm import _time_inner_predict
from mlflow_lambda.handler.flavors.sklearn import SklearnPredictor


class SlowModel(LinearRegression):  # type: ignore[misc]
    def predict(self, X: np.ndarray) -> np.ndarray:  # type: ignore[override]
        time.sleep(0.02)
        return super().predict(X)


def test_each_predict_through_the_loader_is_timed_and_answers_unchanged() -> None:
    X = np.arange(8.0).reshape(4, 2)
    model = SlowModel().fit(X, X.sum(axis=1))
    predictor = SklearnPredictor(model)
    inner = _time_inner_predict(predictor)
    started = time.perf_counter()
    answer = predictor.predict(X)
    outside = (time.perf_counter() - started) * 1000
    predictor.predict(X[:2])
    np.testing.assert_allclose(answer, X.sum(axis=1))
    assert len(inner) == 2  # one entry per call the loader makes
    assert 20 <= inner[0] <= outside  # the sleep is inside, the loader's own work is not
