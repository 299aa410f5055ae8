"""The user story's own model, packaged: no pandas, sample events, ``--trim``, and a bundle
whose bytes and manifest do not depend on where it was built.

The model (``tests.mlflow_models.log_seed_model``) is a forest fitted on numpy arrays and
logged without a signature or an input example, exactly as USER-STORY.md writes it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from mlflow_lambda.handler.schema import probe_body
from mlflow_lambda.infra.invoke import open_bundle
from mlflow_lambda.packager.build import BuildOptions, BuildResult, build
from mlflow_lambda.packager.events import make_event
from mlflow_lambda.packager.pandas_choice import NO_SIGNATURE_REASON
from tests.mlflow_models import LoggedModel

pytestmark = pytest.mark.integration
STORY = {"dataframe_split": {"columns": [0, 1, 2, 3], "data": [[0.1, -0.2, 0.3, -0.4],
                                                              [0.5, 0.6, -0.7, 0.8]]}}  # fmt: skip


def _build(uri: str, out: Path, cache: Path, *, trim: bool = False) -> tuple[BuildResult, str]:
    lines: list[str] = []
    result = build(
        BuildOptions(model_uri=uri, outdir=out, trim=trim, cache_dir=cache),
        progress=lines.append,
        warn=lines.append,
    )
    return result, "\n".join(lines)


@pytest.fixture(scope="module")
def seed_trimmed(
    seed_model: LoggedModel, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BuildResult, str]:
    """The story's model packaged from the registry with ``--trim``."""
    out = tmp_path_factory.mktemp("seed") / "out"
    uri = f"models:/{seed_model.registered_name}/{seed_model.version}"
    return _build(uri, out, cache_dir, trim=True)


def test_the_seed_model_is_packaged_without_pandas_and_says_why(
    seed_trimmed: tuple[BuildResult, str],
) -> None:
    result, log = seed_trimmed
    assert "pandas" not in result.manifest["distributions"]
    assert re.search(r"left out pandas\S*: not needed at run time: " + re.escape(
        NO_SIGNATURE_REASON), log), log  # fmt: skip
    assert "bundling pandas" not in log
    names = zipfile.ZipFile(result.artifact_path).namelist()
    assert not any(n.startswith("pandas/") for n in names)


def test_sample_events_and_the_trace_use_a_row_of_the_fitted_width(
    seed_trimmed: tuple[BuildResult, str],
) -> None:
    result, log = seed_trimmed
    events = result.outdir / "events"
    body = json.loads(json.loads((events / "invocations-v2.json").read_text())["body"])
    assert (
        body
        == probe_body(4)
        == {"dataframe_split": {"columns": [0, 1, 2, 3], "data": [[0.0, 0.0, 0.0, 0.0]]}}
    )
    assert sorted(p.name for p in events.iterdir()) == sorted(
        [f"invocations-{s}.json" for s in ("v1", "v2", "url", "alb", "direct")]
        + ["invocations.json", "ping-v2.json"]
    )
    record = json.loads(zipfile.ZipFile(result.artifact_path).read("trimmed.json"))
    assert "scipy.signal" in record["modules"]
    assert result.manifest["sizes"]["trimmed_bytes"] > 10 * 2**20
    assert "--trim: left out" in log


def test_the_trimmed_seed_bundle_answers_the_story_through_the_lambda_runtime(
    seed_trimmed: tuple[BuildResult, str],
) -> None:
    result, _ = seed_trimmed
    csv = "0,1,2,3\n0.1,-0.2,0.3,-0.4\n0.5,0.6,-0.7,0.8\n"
    with open_bundle(result.outdir) as fn:
        answers = [
            fn.invoke(make_event("v2", STORY)).json(),
            fn.invoke(make_event("v2", csv, content_type="text/csv")).json(),
            fn.invoke(make_event("direct", {"instances": STORY["dataframe_split"]["data"]})).json(),
            fn.invoke(json.loads((result.outdir / "events/invocations.json").read_text())).json(),
        ]
    # {"predictions": [0, 1]} is MLflow's answer to the story's request (test_parity)
    assert [json.loads(a["body"]) for a in answers[:2]] == [{"predictions": [0, 1]}] * 2
    assert answers[2] == {"predictions": [0, 1]}
    assert answers[3]["statusCode"] == 200


# --- reproducible, and the manifest is the zip's contents -----------------------------------


def _zip_distributions(path: Path) -> dict[str, str]:
    """name -> version from every ``*.dist-info/METADATA`` in the zip."""
    from packaging.utils import canonicalize_name

    found = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if re.fullmatch(r"[^/]+\.dist-info/METADATA", name):
                text = zf.read(name).decode("utf-8")
                meta = dict(re.findall(r"^(Name|Version): (.+)$", text, re.MULTILINE))
                found[canonicalize_name(meta["Name"])] = meta["Version"]
    return found


def _fresh_cache(shared: Path, root: Path) -> Path:
    """A cache dir of its own (no prepared deps) sharing the wheel files and the deflate
    streams, hard-linked. Both are keyed by content alone (a wheel by its name, a stream by its
    file's sha256), so a file that came out different at this path would not find its stream
    and would differ in the zip all the same; sharing them saves recompressing 168 MB."""
    root.mkdir(parents=True)
    for name in ("wheels", "deflated"):
        if (shared / name).is_dir():
            shutil.copytree(shared / name, root / name, copy_function=_link)
    return root


def _link(src: str, dst: str) -> None:
    Path(dst).hardlink_to(src)


def test_two_cache_dirs_give_the_same_bundle_and_the_manifest_lists_what_it_holds(
    seed_model: LoggedModel, cache_dir: Path, tmp_path: Path
) -> None:
    """One build in the suite's shared cache dir (its prepared tree made there by whichever
    build came first), one in a fresh cache dir at a longer path that prepares its own tree:
    two cache dirs, each tree installed, pruned and compiled at its own path."""
    uri = f"models:/{seed_model.registered_name}/{seed_model.version}"
    shas, manifests = [], []
    fresh = _fresh_cache(cache_dir, tmp_path / "second-with-a-longer-path" / "cache")
    for name, cache in (("shared", cache_dir), ("fresh", fresh)):
        result, log = _build(uri, tmp_path / name / "out", cache)
        if cache == fresh:
            assert "reusing prepared dependencies" not in log  # it prepared its own tree
        digest = hashlib.sha256(result.artifact_path.read_bytes()).hexdigest()
        assert digest == result.manifest["artifact_sha256"]
        shas.append(digest)
        manifests.append(result.manifest)
        names = zipfile.ZipFile(result.artifact_path).namelist()
        assert not any(n.startswith("bin/") for n in names)
        for record in (n for n in names if n.endswith(".dist-info/RECORD")):
            lines = zipfile.ZipFile(result.artifact_path).read(record).decode().splitlines()
            assert not any(line.startswith("../") for line in lines), record
        assert _zip_distributions(result.artifact_path) == result.manifest["distributions"]
        assert not {"prettytable", "wcwidth", "pandas"} & set(result.manifest["distributions"])
    assert shas[0] == shas[1]
    assert manifests[0]["distributions"] == manifests[1]["distributions"]


def test_an_unsigned_model_fitted_on_a_dataframe_gets_pandas_back_and_says_why(
    mlflow_store: str, cache_dir: Path, tmp_path: Path
) -> None:
    """No signature, no example, but fitted on named columns: MLflow checks each request's
    column names against them, which takes a DataFrame, so the build adds pandas."""
    import mlflow
    from sklearn.ensemble import RandomForestClassifier

    from tests.mlflow_models import TREE_TRUSTED, iris_frame

    X, y = iris_frame()
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="framed", skops_trusted_types=TREE_TRUSTED)
    result, log = _build(info.model_uri, tmp_path / "out", cache_dir)
    assert "the model has no signature and was fitted on a DataFrame (columns" in log
    assert re.search(r"s\] bundling pandas \(28 MB and ~0\.15 s of cold start\): the model has "
                     r"no signature and was fitted on a DataFrame .*to be served without it$", log,
                     re.MULTILINE), log  # fmt: skip
    assert result.manifest["distributions"]["pandas"] == "3.1.1"
    body = json.loads(json.loads((result.outdir / "events/invocations.json").read_text())["body"])
    assert body == {"dataframe_split": {"columns": list(X.columns), "data": [[0.0] * 4]}}
