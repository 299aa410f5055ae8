"""A skops model ships as a pickle written by the bundle's own Python (``packager.preload``).

The user story's model and the README forest (both skops) are packaged as users do; their
bundles must hold the pickle and no skops, load it through the real Lambda runtime and answer
every request of the parity corpus as MLflow's own scoring server does, identically. When the
preload cannot be proven (the import check is off), the bundle keeps skops and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.infra.invoke import open_bundle
from mlflow_lambda.packager.build import BuildOptions, BuildResult, build
from mlflow_lambda.packager.events import make_event
from mlflow_lambda.packager.plan import PRELOADED_REASON
from mlflow_lambda.packager.preload import PRELOADED_FILE
from tests.integration.test_parity import Reply, outcome, post
from tests.mlflow_models import LoggedModel
from tests.parity_corpus import FOREST, SEED, Case

pytestmark = [
    pytest.mark.integration,
    # as in test_parity: MLflow's server scores the story's model with string column names
    # after scikit-learn's "X has feature names" warning, which pytest would turn into an error
    pytest.mark.filterwarnings("ignore:X has feature names, but:UserWarning"),
]
STORY = {"dataframe_split": {"columns": [0, 1, 2, 3], "data": [[0.1, -0.2, 0.3, -0.4],
                                                              [0.5, 0.6, -0.7, 0.8]]}}  # fmt: skip


def _build(model: LoggedModel, out: Path, cache: Path, **options: Any) -> tuple[BuildResult, str]:
    lines: list[str] = []
    uri = f"models:/{model.registered_name}/{model.version}"
    opts = BuildOptions(model_uri=uri, outdir=out, cache_dir=cache, **options)
    return build(opts, progress=lines.append, warn=lines.append), "\n".join(lines)


@pytest.fixture(scope="module")
def seed_build(
    seed_model: LoggedModel, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BuildResult, str]:
    return _build(seed_model, tmp_path_factory.mktemp("preload") / "out", cache_dir)


def test_the_bundle_holds_the_pickle_and_no_skops(seed_build: tuple[BuildResult, str]) -> None:
    result, log = seed_build
    manifest = result.manifest
    config = json.loads((result.outdir / "model.json").read_text())
    with zipfile.ZipFile(result.artifact_path) as zf:
        names = zf.namelist()
        pickled = zf.read(f"model/{PRELOADED_FILE}")
        assert json.loads(zf.read("model.json")) == config
    assert not [n for n in names if n.split("/")[0] == "skops" or n.startswith("skops-")]
    assert "skops" not in manifest["distributions"]
    assert "model/model.skops" in names  # the model as logged stays, as its record
    sha = hashlib.sha256(pickled).hexdigest()
    preloaded = config["preloaded"]
    assert (preloaded["file"], preloaded["sha256"], preloaded["source"]) == (
        PRELOADED_FILE, sha, "model.skops",
    )  # fmt: skip
    assert preloaded["pickle_protocol"] == 5 and pickled[:2] == b"\x80\x05"
    # covered by the init's sha256 check and listed as a model file in the manifest
    assert config["files"][PRELOADED_FILE] == manifest["model"]["files"][PRELOADED_FILE] == sha
    assert "preloaded model.skops as model.preloaded.pkl" in log
    assert f"left out skops: {PRELOADED_REASON}" in log, log


def test_the_pickle_is_written_by_the_bundles_python_and_scikit_learn(
    seed_build: tuple[BuildResult, str],
) -> None:
    """Never by the building process: the tool runs on Python 3.11 here, the bundle on 3.12."""
    result, _ = seed_build
    manifest = result.manifest
    preloaded = json.loads((result.outdir / "model.json").read_text())["preloaded"]
    python = preloaded["python_version"]
    assert python.rpartition(".")[0] == manifest["python_version"] == "3.12"
    assert python.rpartition(".")[0] != f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert preloaded["library_version"] == manifest["distributions"]["scikit-learn"]
    with zipfile.ZipFile(result.artifact_path) as zf:
        pickled = zf.read(f"model/{PRELOADED_FILE}")
    # scikit-learn's BaseEstimator.__getstate__ stamps the version that pickled it
    stamp = b"_sklearn_version\x94\x8c\x05" + preloaded["library_version"].encode()
    assert stamp in pickled


def test_a_rebuild_reuses_the_pickle_and_gives_the_same_bundle(
    seed_model: LoggedModel, seed_build: tuple[BuildResult, str], cache_dir: Path, tmp_path: Path
) -> None:
    """The pickle is kept in the cache under what made it, so a rebuild loads no model."""
    first, _ = seed_build
    again, log = _build(seed_model, tmp_path / "out", cache_dir)
    assert "preloaded model.skops as model.preloaded.pkl" in log
    assert "(the pickle of an earlier build)" in log, log
    assert again.manifest["artifact_sha256"] == first.manifest["artifact_sha256"]


# --- every parity answer identical, through the real Lambda runtime ---------------------------


@pytest.fixture(scope="module")
def mlflow_servers(
    seed_model: LoggedModel, forest: LoggedModel
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """MLflow's own scoring server for each model, in-process (as in test_parity)."""
    import mlflow.pyfunc
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT
    from mlflow.pyfunc import scoring_server

    from tests.integration.test_parity import TestClient

    flag = _MLFLOW_IS_IN_SERVING_ENVIRONMENT.name
    saved = os.environ.get(flag)
    try:
        yield {
            name: TestClient(
                scoring_server.init(mlflow.pyfunc.load_model(str(logged.local_dir))),
                raise_server_exceptions=False,
            )
            for name, logged in (("seed", seed_model), ("forest", forest))
        }
    finally:
        if saved is None:
            os.environ.pop(flag, None)
        else:
            os.environ[flag] = saved


def _through_lambda(outdir: Path, cases: list[Case]) -> dict[str, Reply]:
    replies = {}
    with open_bundle(outdir) as fn:
        for case in cases:
            event = make_event("v2", case.raw_body(), content_type=case.content_type)
            answer = fn.invoke(event).json()
            body = json.loads(answer["body"])
            content_type = answer["headers"].get("content-type", "")
            replies[case.id] = Reply(answer["statusCode"], content_type, answer["body"], body)
    return replies


@pytest.mark.parametrize("name", ["seed", "forest"])
def test_preloaded_bundles_answer_the_parity_corpus_as_mlflow_does(
    name: str,
    seed_build: tuple[BuildResult, str],
    forest_build: Path,
    mlflow_servers: dict[str, Any],
) -> None:
    outdir = seed_build[0].outdir if name == "seed" else forest_build
    assert json.loads((outdir / "model.json").read_text())["preloaded"] is not None
    # bodies over Lambda's 6 MB payload limit never reach the function through the emulator
    cases = [c for c in (SEED if name == "seed" else FOREST) if len(c.raw_body()) < 5_000_000]
    replies = _through_lambda(outdir, cases)
    for case in cases:
        ours, theirs = replies[case.id], post(mlflow_servers[name], case)
        if case.differs is not None:  # a deliberate difference: as in test_parity
            assert (outcome(ours), outcome(theirs)) == (case.ours, case.mlflow), case.id
            continue
        assert outcome(ours) == outcome(theirs), (case.id, ours.text[:300], theirs.text[:300])
        if ours.status == 200:
            assert ours.json == theirs.json, case.id  # identical, not just close
    if name == "seed":
        assert replies["story"].json == {"predictions": [0, 1]}


# --- the fallback: skops stays -----------------------------------------------------------------


def test_without_the_check_the_bundle_keeps_skops_and_says_so(
    seed_model: LoggedModel, cache_dir: Path, tmp_path: Path
) -> None:
    """No proof that a pickle would load (the import check is off, as when no target Python
    runs here): the bundle keeps skops and the skops path, and the build says so in one line."""
    result, log = _build(seed_model, tmp_path / "out", cache_dir, check_import=False)
    config = json.loads((result.outdir / "model.json").read_text())
    assert config["preloaded"] is None and PRELOADED_FILE not in config["files"]
    assert result.manifest["distributions"]["skops"] == "0.16.0"
    kept = [w for w in result.warnings if w.startswith("kept skops:")]
    assert kept == [
        "kept skops: the model is not preloaded as a pickle because the import check is off"
    ], log
    with zipfile.ZipFile(result.artifact_path) as zf:
        assert f"model/{PRELOADED_FILE}" not in zf.namelist()
    with open_bundle(result.outdir) as fn:
        assert fn.invoke(make_event("direct", STORY)).json() == {"predictions": [0, 1]}
