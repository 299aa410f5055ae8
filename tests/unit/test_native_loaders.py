"""The native loaders (handler/flavors/{xgboost,lightgbm,onnx,catboost}.py) on models saved by
their own libraries, and what the build reads from their MLmodel sections (no MLflow here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlflow_lambda.handler.config import ModelConfig
from mlflow_lambda.handler.errors import ModelLoadError
from mlflow_lambda.handler.flavors import FLAVORS, load_model, serialization_format

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)
FRAME = pd.DataFrame(X, columns=["a", "b", "c"])


def _config(flavor: str, model_file: str, conf: dict[str, Any]) -> ModelConfig:
    config: dict[str, Any] = {
        "config_version": 1,
        "flavor": flavor,
        "model_file": model_file,
        "serialization_format": serialization_format(flavor, conf),
        "flavor_conf": conf,
        "skops_trusted_types": list(conf.get("skops_trusted_types") or []),
        "files": {},
    }
    return config  # type: ignore[return-value]


def test_every_flavor_has_a_module_with_load_and_serialization_format() -> None:
    from mlflow_lambda.handler.flavors import flavor_module

    for name in FLAVORS:
        module = flavor_module(name)
        assert callable(module.load) and callable(module.serialization_format), name


def test_xgboost_booster_predicts_on_a_dmatrix_and_forwards_accepted_params(tmp_path: Path) -> None:
    import xgboost

    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 2},
                            xgboost.DMatrix(FRAME, label=Y), num_boost_round=4)  # fmt: skip
    booster.save_model(tmp_path / "model.json")
    conf = {"data": "model.json", "model_class": "xgboost.core.Booster", "model_format": "json"}
    predictor = load_model(_config("xgboost", "model.json", conf), tmp_path)
    expected = booster.predict(xgboost.DMatrix(FRAME))
    np.testing.assert_allclose(predictor.predict(FRAME, None), expected)
    # fitted on named columns: a bare array gets the names back (a bundle without pandas)
    assert getattr(predictor, "feature_names", None) == ("a", "b", "c")
    np.testing.assert_allclose(predictor.predict(X, None), expected)
    margin = predictor.predict(FRAME, {"output_margin": True, "not_a_param": 1})
    np.testing.assert_allclose(margin, booster.predict(xgboost.DMatrix(FRAME), output_margin=True))


def test_xgboost_sklearn_api_and_formats(tmp_path: Path) -> None:
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=4, max_depth=2).fit(X, Y)
    model.save_model(tmp_path / "model.ubj")
    conf = {"data": "model.ubj", "model_class": "xgboost.sklearn.XGBClassifier",
            "model_format": "ubj"}  # fmt: skip
    predictor = load_model(_config("xgboost", "model.ubj", conf), tmp_path)
    np.testing.assert_array_equal(predictor.predict(X, None), model.predict(X))
    assert getattr(predictor, "accepts_ndarray", None) is True  # fitted on an array
    with pytest.raises(ValueError, match="unsupported xgboost model_format 'bin'"):
        serialization_format("xgboost", {"data": "model.bin"})
    with pytest.raises(ValueError, match=r"'os\.system' is not an xgboost class"):
        serialization_format("xgboost", {"data": "model.ubj", "model_class": "os.system"})
    assert serialization_format("xgboost", {"data": "model.xgb"}) == "xgb"  # MLflow < 2


def test_lightgbm_booster_and_sklearn_api(tmp_path: Path) -> None:
    import lightgbm

    booster = lightgbm.train({"objective": "regression", "verbose": -1, "num_leaves": 4},
                             lightgbm.Dataset(FRAME, label=Y), num_boost_round=5)  # fmt: skip
    booster.save_model(tmp_path / "model.lgb")
    conf = {"data": "model.lgb", "model_class": "lightgbm.basic.Booster",
            "serialization_format": "cloudpickle"}  # fmt: skip
    config = _config("lightgbm", "model.lgb", conf)
    assert config["serialization_format"] == "lgb"  # a Booster is not pickled, whatever it says
    predictor = load_model(config, tmp_path)
    np.testing.assert_allclose(predictor.predict(FRAME, {"ignored": 1}), booster.predict(FRAME))
    assert getattr(predictor, "feature_names", None) == ("a", "b", "c")
    with pytest.raises(ValueError, match="non empty"):  # as lightgbm refuses an empty frame
        predictor.predict(X[:0], None)

    import cloudpickle

    clf = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(FRAME, Y)
    (tmp_path / "model.pkl").write_bytes(cloudpickle.dumps(clf))
    conf = {"data": "model.pkl", "model_class": "lightgbm.sklearn.LGBMClassifier",
            "serialization_format": "cloudpickle"}  # fmt: skip
    predictor = load_model(_config("lightgbm", "model.pkl", conf), tmp_path)
    np.testing.assert_array_equal(predictor.predict(FRAME, None), clf.predict(FRAME))
    np.testing.assert_array_equal(predictor.predict(X, None), clf.predict(FRAME))  # no warning


def test_lightgbm_refuses_a_bad_booster_file(tmp_path: Path) -> None:
    (tmp_path / "model.lgb").write_text("not a model")
    config = _config("lightgbm", "model.lgb", {"data": "model.lgb"})
    with pytest.raises(ModelLoadError, match=r"cannot load .* as a LightGBM Booster"):
        load_model(config, tmp_path)


def test_onnx_feeds_casts_and_answers_like_mlflow(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(X.astype(np.float32), Y.astype(np.float32))
    onx = to_onnx(model, X[:1].astype(np.float32), target_opset=17)
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    conf = {"data": "model.onnx", "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
            "onnx_session_options": {"intra_op_num_threads": 1}}  # fmt: skip
    predictor = load_model(_config("onnx", "model.onnx", conf), tmp_path)
    expected = model.predict(X.astype(np.float32))
    out = predictor.predict(X, None)  # float64 array: cast to float32, answered as a dict
    assert isinstance(out, dict) and list(out) == ["variable"]
    np.testing.assert_allclose(out["variable"].reshape(-1), expected, rtol=1e-4, atol=1e-6)
    frame = predictor.predict(FRAME, None)  # a DataFrame: a DataFrame of flattened outputs
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["variable"]
    np.testing.assert_allclose(frame["variable"], expected, rtol=1e-4, atol=1e-6)
    assert getattr(predictor, "accepts_ndarray", None) is False


def test_onnx_refuses_an_array_for_several_inputs() -> None:
    from mlflow_lambda.handler.flavors.onnx import OnnxPredictor, _providers

    class Session:
        def get_inputs(self) -> list[Any]:
            return [type("I", (), {"name": n, "type": "tensor(float)"})() for n in "xy"]

        def get_outputs(self) -> list[Any]:
            return []

    with pytest.raises(ValueError, match="can only be used as input for MLflow ONNX models"):
        OnnxPredictor(Session()).predict(X, None)
    assert _providers({"providers": "CPUExecutionProvider"}) == ["CPUExecutionProvider"]
    assert _providers({"providers": [["CUDAExecutionProvider", {"device_id": 0}]]}) == [
        ("CUDAExecutionProvider", {"device_id": 0})
    ]


def test_catboost_classifier(tmp_path: Path) -> None:
    import catboost

    model = catboost.CatBoostClassifier(iterations=5, depth=2, verbose=False,
                                        allow_writing_files=False).fit(FRAME, Y)  # fmt: skip
    model.save_model(str(tmp_path / "model.cb"))
    conf = {"data": "model.cb", "model_type": "CatBoostClassifier", "save_format": "cbm"}
    predictor = load_model(_config("catboost", "model.cb", conf), tmp_path)
    np.testing.assert_array_equal(predictor.predict(FRAME, {"x": 1}), model.predict(FRAME))
    with pytest.raises(ValueError, match="unsupported catboost model_type 'Pipeline'"):
        serialization_format("catboost", {"model_type": "Pipeline"})
