"""``package --trim`` end to end: the README forest, traced, trimmed, and run by the real RIE."""

from __future__ import annotations

import json
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest

from mlflow_lambda.infra.invoke import invoke_bundle
from mlflow_lambda.packager.bytecode import find_interpreter
from mlflow_lambda.packager.events import make_event
from tests.integration.conftest import run_cli
from tests.mlflow_models import LoggedModel
from tests.parity_corpus import ARRAY, FOREST, IRIS, PIPELINE, REGRESSOR, Case

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).parent.parent.parent / "examples"


@pytest.fixture(scope="module")
def trimmed_build(
    forest: LoggedModel, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("trimmed") / "out"
    uri = f"models:/{forest.registered_name}/{forest.version}"
    assert run_cli("package", "-m", uri, "-o", out, "--trim", "--cache-dir", cache_dir) == 0
    return out


def _names(zip_path: Path) -> dict[str, int]:
    with zipfile.ZipFile(zip_path) as zf:
        return {i.filename: i.file_size for i in zf.infolist()}


def test_trim_leaves_out_what_the_trace_never_imported(
    trimmed_build: Path, forest_build: Path
) -> None:
    full, trimmed = _names(forest_build / "bundle.zip"), _names(trimmed_build / "bundle.zip")
    record = json.loads(zipfile.ZipFile(trimmed_build / "bundle.zip").read("trimmed.json"))
    manifest = json.loads((trimmed_build / "manifest.json").read_text())
    gone = set(full) - set(trimmed)
    assert set(trimmed) - set(full) == {"trimmed.json"}
    assert manifest["sizes"]["trimmed_bytes"] == sum(full[n] for n in gone) > 10 * 2**20
    # Modules the README forest never needs; and what it does need stays.
    assert {
        "scipy.signal",
        "scipy.io._fast_matrix_market._fmm_core",
        "anyio._backends._trio",
    } <= set(record["modules"])
    assert not any(
        n.startswith(("scipy/signal/", "scipy/io/_fast_matrix_market/_fmm_core")) for n in trimmed
    )
    kept_names = ("sklearn/ensemble/_forest.pyc", "scipy.libs/", "numpy.libs/")
    for kept in (*kept_names, "mlflow_lambda/handler/app.py"):
        assert any(n.startswith(kept) for n in trimmed), kept
    assert all(n.startswith(("mlflow_lambda/", "model/", "model.json")) is False for n in gone)


def test_a_trimmed_bundle_answers_through_the_lambda_runtime(trimmed_build: Path) -> None:
    for body, ctype in (
        ((EXAMPLES / "payload.json").read_text(), "application/json"),
        ((EXAMPLES / "payload.csv").read_text(), "text/csv"),
    ):
        result = invoke_bundle(trimmed_build, event=make_event("v2", body, content_type=ctype))
        answer = result.json()
        assert (answer["statusCode"], json.loads(answer["body"])) == (
            200,
            {"predictions": [0, 1, 2]},
        )


def test_importing_a_trimmed_module_says_why_and_what_to_do(
    trimmed_build: Path, tmp_path: Path
) -> None:
    python = find_interpreter(
        json.loads((trimmed_build / "manifest.json").read_text())["python_version"]
    )
    assert python is not None
    with zipfile.ZipFile(trimmed_build / "bundle.zip") as zf:
        zf.extractall(tmp_path)
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "import mlflow_lambda.handler.lambda_function\n"
        "try:\n    import scipy.signal\nexcept ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [str(python), "-I", "-S", "-c", code, str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=True,
        env={"MODEL_CONFIG": str(tmp_path / "model.json"), "MODEL_DIR": str(tmp_path / "model"),
             "LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    assert done.stdout.strip() == (
        "No module named 'scipy.signal': `mlflow-lambda package --trim` left it out because the "
        "traced run (importing the model and scoring its input example) never imported it; "
        "package again without --trim"
    )


def test_arm64_is_trimmed_with_the_trace_of_its_x86_64_twin(
    forest: LoggedModel, cache_dir: Path, tmp_path: Path
) -> None:
    from mlflow_lambda.packager.build import BuildOptions, build

    out = tmp_path / "arm"
    uri = f"models:/{forest.registered_name}/{forest.version}"
    args = ("package", "-m", uri, "-o", out, "--trim", "--arch", "arm64", "--cache-dir", cache_dir)
    assert run_cli(*args) == 0
    arm = zipfile.ZipFile(out / "bundle.zip")
    # This host cannot run the arm64 bundle's Python, so its model stays skops (no preload,
    # packager.preload): compare with the x86_64 build that keeps skops too.
    assert json.loads(arm.read("model.json"))["preloaded"] is None
    opts = BuildOptions(uri, tmp_path / "x86", trim=True, cache_dir=cache_dir, preload=False)
    x86 = zipfile.ZipFile(build(opts, progress=lambda _: None, warn=lambda _: None).artifact_path)
    # Same pins, same Python, same trace: the same modules left out on both architectures.
    assert (
        json.loads(arm.read("trimmed.json"))["modules"]
        == json.loads(x86.read("trimmed.json"))["modules"]
    )
    arm_names = {n.replace("aarch64", "x86_64") for n in arm.namelist() if n.endswith(".so")}
    x86_names = {n for n in x86.namelist() if n.endswith(".so") and ".libs/" not in n}
    assert x86_names <= arm_names


def test_trim_without_an_input_example_traces_a_row_from_the_signature(
    forest: LoggedModel, cache_dir: Path, tmp_path: Path
) -> None:
    import shutil

    import yaml

    model = tmp_path / "model"
    shutil.copytree(forest.local_dir, model)
    mlmodel = yaml.safe_load((model / "MLmodel").read_text())
    mlmodel.pop("saved_input_example_info")
    (model / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    for name in ("input_example.json", "serving_input_example.json"):
        (model / name).unlink()
    out = tmp_path / "out"
    assert run_cli("package", "-m", model, "-o", out, "--trim", "--cache-dir", cache_dir) == 0
    event = json.loads((out / "events" / "invocations.json").read_text())
    assert json.loads(event["body"]) == {
        "dataframe_split": {"columns": IRIS, "data": [[0.0, 0.0, 0.0, 0.0]]}
    }
    record = json.loads(zipfile.ZipFile(out / "bundle.zip").read("trimmed.json"))
    assert "scipy.signal" in record["modules"]


# Every request of the parity corpus, through the bundle's own handler, in one process per bundle.
_ANSWER_ALL = """
import json, sys
sys.path[:0] = [sys.argv[1]]
import mlflow_lambda.handler.lambda_function as lf
events = json.load(open(sys.argv[2]))
print(json.dumps([lf.handler(event, None) for event in events]))
"""
CORPUS = {"forest": FOREST, "regressor": REGRESSOR, "pipeline": PIPELINE, "array_model": ARRAY}


def _answers(outdir: Path, cases: list[Case], tmp: Path) -> list[dict[str, object]]:
    root = Path(tempfile.mkdtemp(prefix="task-", dir=tmp))  # a fresh one per bundle
    with zipfile.ZipFile(outdir / "bundle.zip") as zf:
        zf.extractall(root)
    python = find_interpreter(json.loads((outdir / "manifest.json").read_text())["python_version"])
    assert python is not None
    events = root.with_suffix(".events.json")
    events.write_text(json.dumps([
        make_event("v2", c.raw_body(), content_type=c.content_type) for c in cases
    ]))  # fmt: skip
    done = subprocess.run(
        [str(python), "-I", "-S", "-c", _ANSWER_ALL, str(root), str(events)],
        capture_output=True, text=True, timeout=300, check=True,
        env={"MODEL_CONFIG": str(root / "model.json"), "MODEL_DIR": str(root / "model"),
             "LOG_LEVEL": "CRITICAL"},
    )  # fmt: skip
    answers: list[dict[str, object]] = json.loads(done.stdout.splitlines()[-1])
    # The answers come from this bundle alone: trimmed exactly when it says so.
    assert (root / "trimmed.json").is_file() == (not (root / "scipy" / "signal").exists())
    return answers


# regressor and pipeline each cost a full and a trimmed build of their own (about 2.5 min of a
# worker each): `make test-all` runs them; the forest and the array model cover trim in `make test`.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param("regressor", marks=pytest.mark.slow),
        pytest.param("pipeline", marks=pytest.mark.slow),
        "array_model",
    ],
)
def test_a_trimmed_bundle_answers_the_whole_parity_corpus_like_the_full_one(
    name: str, request: pytest.FixtureRequest, cache_dir: Path, tmp_path: Path
) -> None:
    """The trace sees only the input example; the corpus has every format, type error, params
    case and CSV quirk of docs/protocol.md for that model. Same answers, byte for byte."""
    model: LoggedModel = request.getfixturevalue(name)
    builds = {}
    for flags in ((), ("--trim",)):
        out = tmp_path / ("trimmed" if flags else "full")
        assert run_cli("package", "-m", model.model_uri, "-o", out, *flags,
                       "--cache-dir", cache_dir) == 0  # fmt: skip
        builds[out.name] = out
    full = _answers(builds["full"], CORPUS[name], tmp_path)
    trimmed = _answers(builds["trimmed"], CORPUS[name], tmp_path)
    assert len(full) == len(CORPUS[name]) and 200 in {a["statusCode"] for a in full}
    for case, a, b in zip(CORPUS[name], full, trimmed, strict=True):
        assert (case.id, b) == (case.id, a)


def test_the_trimmed_forest_answers_its_parity_corpus_like_the_full_one(
    forest_build: Path, trimmed_build: Path, tmp_path: Path
) -> None:
    full = _answers(forest_build, FOREST, tmp_path)
    trimmed = _answers(trimmed_build, FOREST, tmp_path)
    assert {a["statusCode"] for a in full} >= {200, 400, 415}
    for case, a, b in zip(FOREST, full, trimmed, strict=True):
        assert (case.id, b) == (case.id, a)
