"""handler.config and handler.flavors: model.json, file integrity, the scikit-learn loader."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlflow_lambda.handler.config import ModelConfig, load_config, verify_model_files
from mlflow_lambda.handler.errors import ModelConfigError, ModelIntegrityError, ModelLoadError
from mlflow_lambda.handler.flavors import load_model
from mlflow_lambda.handler.flavors.sklearn import SklearnPredictor, force_single_job

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
Y = np.array([0, 0, 1, 1])


def _config(**overrides: Any) -> ModelConfig:
    config: dict[str, Any] = {
        "config_version": 1,
        "flavor": "sklearn",
        "model_file": "model.pkl",
        "serialization_format": "pickle",
        "files": {},
    }
    config.update(overrides)
    return config  # type: ignore[return-value]


def _write_config(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_load_config_fills_optional_keys(tmp_path: Path) -> None:
    config = load_config(_write_config(tmp_path, _config(signature={"inputs": [{"type": "x"}]})))
    assert config["signature"] == {"inputs": [{"type": "x"}], "outputs": None, "params": None}
    assert (config["predict_fn"], config["skops_trusted_types"], config["input_example"]) == (
        "predict",
        [],
        None,
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "does not exist"),
        ("{not json", "cannot read model config"),
        ("[]", "is not a JSON object"),
        ('{"config_version": 1}', "lacks required keys ['flavor', 'model_file'"),
        (json.dumps({**_config(), "config_version": 99}), "config_version 99"),
    ],
)
def test_load_config_errors(tmp_path: Path, content: str | None, needle: str) -> None:
    path = tmp_path / "model.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelConfigError) as info:
        load_config(path)
    assert needle in str(info.value)


def test_verify_model_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "MLmodel").write_bytes(b"flavors: {}\n")
    (tmp_path / "sub" / "a.bin").write_bytes(b"\x00\x01")
    (tmp_path / "unlisted.txt").write_bytes(b"never read")
    files = {
        "MLmodel": hashlib.sha256(b"flavors: {}\n").hexdigest(),
        "sub/a.bin": hashlib.sha256(b"\x00\x01").hexdigest(),
    }
    verify_model_files(tmp_path, files)  # unlisted files are not checked

    (tmp_path / "sub" / "a.bin").write_bytes(b"\x00\x02")
    with pytest.raises(ModelIntegrityError) as info:
        verify_model_files(tmp_path, files)
    assert str(info.value).startswith("model file 'sub/a.bin' has sha256 ")

    (tmp_path / "MLmodel").unlink()
    with pytest.raises(ModelIntegrityError) as info:
        verify_model_files(tmp_path, files)  # the first bad file in sorted order
    assert str(info.value).startswith("model file 'MLmodel' is missing from ")

    with pytest.raises(ModelIntegrityError, match="not a path inside"):
        verify_model_files(tmp_path, {"../etc/passwd": "0"})


def _save(tmp_path: Path, model: Any, fmt: str) -> str:
    if fmt == "skops":
        import skops.io

        skops.io.dump(model, tmp_path / "model.skops")
        return "model.skops"
    if fmt == "cloudpickle":
        import cloudpickle

        (tmp_path / "model.pkl").write_bytes(cloudpickle.dumps(model))
    else:
        (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    return "model.pkl"


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle", "skops"])
def test_sklearn_loads_every_format_and_honours_predict_fn(tmp_path: Path, fmt: str) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, Y)
    name = _save(tmp_path, model, fmt)
    predictor = load_model(
        _config(model_file=name, serialization_format=fmt, predict_fn="predict_proba"),
        tmp_path,
    )
    assert isinstance(predictor, SklearnPredictor)
    np.testing.assert_array_equal(predictor.predict(X, None), model.predict_proba(X))
    assert predictor.accepts_ndarray is True  # fitted on an array: no feature names


def test_skops_trusts_exactly_the_listed_types(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y)
    name = _save(tmp_path, model, "skops")
    with pytest.raises(ModelLoadError, match="UntrustedTypesFoundException"):
        load_model(_config(model_file=name, serialization_format="skops"), tmp_path)
    trusted = ["sklearn.tree._tree.Tree"]
    predictor = load_model(
        _config(model_file=name, serialization_format="skops", skops_trusted_types=trusted),
        tmp_path,
    )
    np.testing.assert_array_equal(predictor.predict(X, None), model.predict(X))


def test_n_jobs_forced_to_one_everywhere(tmp_path: Path) -> None:
    import pandas as pd  # type: ignore[import-untyped]
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame(X, columns=["p", "q"])
    model = Pipeline(
        [
            ("prep", ColumnTransformer([("s", StandardScaler(), ["p", "q"])], n_jobs=2)),
            ("clf", RandomForestClassifier(n_estimators=3, n_jobs=-1, random_state=0)),
        ]
    ).fit(frame, Y)
    name = _save(tmp_path, model, "pickle")
    predictor = load_model(_config(model_file=name), tmp_path)
    assert isinstance(predictor, SklearnPredictor)
    loaded = predictor.model
    assert (loaded.steps[0][1].n_jobs, loaded.steps[1][1].n_jobs) == (1, 1)
    assert force_single_job(loaded) == 0  # nothing left to change
    assert predictor.accepts_ndarray is False  # fitted on a DataFrame: keep column names
    np.testing.assert_array_equal(predictor.predict(frame, None), model.predict(frame))


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no runtime loader for flavor 'h2o'"):
        load_model(_config(flavor="h2o"), tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(_config(), tmp_path)
    with pytest.raises(ModelLoadError, match="points outside the model directory"):
        load_model(_config(model_file="../model.pkl"), tmp_path / "sub")
    (tmp_path / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ModelLoadError, match="cannot load"):
        load_model(_config(), tmp_path)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ModelLoadError, match="'list' has no method 'predict'"):
        load_model(_config(), tmp_path)
    with pytest.raises(ModelLoadError, match="predict_fn 'transform' is not supported"):
        load_model(_config(predict_fn="transform"), tmp_path)


def test_feature_name_warning_is_silenced_for_arrays_only_during_predict() -> None:
    import warnings

    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame(X, columns=["p", "q"])
    model = LinearRegression().fit(frame, Y)
    predictor = SklearnPredictor(model)
    assert (predictor.feature_names, predictor.accepts_ndarray) == (("p", "q"), False)
    filters = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning inside predict would raise here
        np.testing.assert_array_equal(predictor.predict(X, None), model.predict(frame))
        np.testing.assert_array_equal(predictor.predict(frame, None), model.predict(frame))
    assert warnings.filters == filters  # nothing left behind
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X)  # scikit-learn still warns outside the predictor
    assert SklearnPredictor(LinearRegression().fit(X, Y)).feature_names is None


def test_a_preloaded_pickle_is_loaded_instead_of_skops_only_when_files_lists_it(
    tmp_path: Path,
) -> None:
    """The build's pickle (model.json ``preloaded``) replaces the skops file, never without the
    sha256 the init's integrity check read: unpickling runs code."""
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y)
    name = _save(tmp_path, model, "skops")  # trusted nothing: loading it would fail
    data = pickle.dumps(model, protocol=5)
    (tmp_path / "model.preloaded.pkl").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    preloaded = {"file": "model.preloaded.pkl", "sha256": sha, "source": name}
    config = _config(model_file=name, serialization_format="skops", preloaded=preloaded)
    config["files"] = {"model.preloaded.pkl": sha}
    predictor = load_model(config, tmp_path)
    np.testing.assert_array_equal(predictor.predict(X, None), model.predict(X))

    config["files"] = {}  # not covered by the integrity check: refused, not unpickled
    with pytest.raises(ModelLoadError, match=r"is not listed in model\.json's files"):
        load_model(config, tmp_path)
    config["files"] = {"../model.preloaded.pkl": sha}
    config["preloaded"] = {**preloaded, "file": "../model.preloaded.pkl"}  # type: ignore[typeddict-item]
    with pytest.raises(ModelLoadError, match="points outside the model directory"):
        load_model(config, tmp_path)
    config["preloaded"] = None  # the skops path, with its trusted types (none here)
    with pytest.raises(ModelLoadError, match="UntrustedTypesFoundException"):
        load_model(config, tmp_path)
