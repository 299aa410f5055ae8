"""``mlflow-lambda package`` end to end on real models: outputs, reproducibility, the bundle
running on its own and through the local Lambda runtime, the other targets, and bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlflow_lambda.packager.bytecode import find_interpreter
from mlflow_lambda.packager.inspection import hash_model_files
from mlflow_lambda.packager.preload import PRELOADED_FILE
from tests.integration.conftest import run_cli
from tests.mlflow_models import LoggedModel

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"
NEVER_BUNDLED = {"mlflow", "mlflow-skinny", "mlflow-tracing", "pytest", "boto3", "botocore"}
NEVER_BUNDLED |= {"pyarrow"}

# Third-party top-level modules the forest bundle (all-numeric signature: no pandas) may load
# at import + predict. Anything else is a cold-start regression or a packaging surprise.
ALLOWED_THIRD_PARTY = {
    "anyio",
    "cloudpickle",
    "cython_runtime",
    "mlflow_lambda",
    "idna",
    "joblib",
    "mangum",
    "msgspec",  # the request and response JSON
    "simdjson",  # rows of numbers straight to float64 (handler.numeric)
    "csimdjson",
    "narwhals",
    "numpy",
    "scipy",
    "sklearn",  # not skops: the build preloads the model as a pickle (packager.preload)
    "sniffio",
    "starlette",
    "threadpoolctl",
    "typing_extensions",
}


def package(*args: str | Path) -> int:
    return run_cli(*args)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_outputs_and_manifest(forest_build: Path, forest: LoggedModel) -> None:
    names = sorted(p.name for p in forest_build.iterdir())
    assert names == [
        "bundle.zip",
        "events",
        "manifest.json",
        "model.json",
        "openapi.json",
        "template.yaml",
    ]
    manifest = json.loads((forest_build / "manifest.json").read_text())
    assert manifest["model"]["uri"] == f"models:/MyRandomForest/{forest.version}"
    assert manifest["model"]["registered_model"] == "MyRandomForest"
    assert manifest["model"]["version"] == forest.version
    assert manifest["model"]["run_id"] == forest.run_id
    # The same files and the build's pickle of the model (packager.preload); the bundled
    # MLmodel lacks the logging host's artifact_path (hygiene).
    files, logged = manifest["model"]["files"], hash_model_files(forest.local_dir)
    assert files.keys() == logged.keys() | {PRELOADED_FILE}
    assert files["model.skops"] == logged["model.skops"]
    assert {k: v for k, v in files.items() if k not in ("MLmodel", PRELOADED_FILE)} == {
        k: v for k, v in logged.items() if k != "MLmodel"
    }
    # numpy 2.4.6 has no wheel for python3.11's Amazon Linux 2, so the build moved on
    assert (manifest["runtime"], manifest["arch"]) == ("python3.12", "x86_64")
    dists = manifest["distributions"]
    assert dists["scikit-learn"] == "1.9.1"
    assert dists["numpy"] == "2.4.6"
    assert "skops" not in dists  # the model ships as a pickle of the bundle's scikit-learn
    assert NEVER_BUNDLED.isdisjoint(dists)
    assert manifest["artifact_sha256"] == sha256(forest_build / "bundle.zip")
    assert manifest["sizes"]["unzipped_bytes"] < 250 * 1024 * 1024
    events = sorted(p.name for p in (forest_build / "events").iterdir())
    assert "invocations-v1.json" in events and "invocations-direct.json" in events
    template = yaml.safe_load((forest_build / "template.yaml").read_text())
    function = template["Resources"]["ModelFunction"]["Properties"]
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "mlflow_lambda.handler.lambda_function.handler"
    assert function["CodeUri"] == "bundle.zip"


def test_template_matches_the_golden_file(forest_build: Path) -> None:
    """The repo's template.yaml is the one `make demo` generates for the README forest."""
    golden = Path(__file__).resolve().parent.parent.parent / "template.yaml"
    assert (forest_build / "template.yaml").read_text() == golden.read_text()


def test_zip_layout(forest_build: Path) -> None:
    with zipfile.ZipFile(forest_build / "bundle.zip") as zf:
        names = zf.namelist()
        infos = zf.infolist()
    assert names == sorted(names)
    assert {"mlflow_lambda/handler/lambda_function.py", "model/MLmodel", "model.json"} <= set(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    # dependencies ship bytecode only (pyc-only default for zips), pruned of tests and caches
    assert not [n for n in names if n.startswith(("numpy/", "sklearn/")) and n.endswith(".py")]
    assert "numpy/__init__.pyc" in names
    # test modules stay only where run-time code imports them (numpy's _natype; a scipy
    # script importing test_hyp2f1): a few KB, not the ~100 MB of test suites
    kept_tests = [i for i in infos if "/tests/" in i.filename]
    assert sum(i.file_size for i in kept_tests) < 200_000, [i.filename for i in kept_tests]
    assert not [n for n in names if n.startswith(("mlflow/", "boto3/", "pyarrow/", "yaml/"))]


def test_rebuild_is_byte_identical(
    forest_build: Path, forest: LoggedModel, cache_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "again"
    uri = f"models:/{forest.registered_name}/{forest.version}"
    assert package("package", "-m", uri, "-o", out, "--cache-dir", cache_dir) == 0
    assert sha256(out / "bundle.zip") == sha256(forest_build / "bundle.zip")
    assert (out / "template.yaml").read_text() == (forest_build / "template.yaml").read_text()

    # a rebuild into the same directory replaces the build and keeps what `sam deploy` wrote
    (out / "samconfig.toml").write_text("version = 0.1\n")
    (out / ".aws-sam").mkdir()
    (out / ".aws-sam" / "build.toml").write_text("# sam\n")
    (out / "events" / "stale.json").write_text("{}")
    assert package("package", "-m", uri, "-o", out, "--cache-dir", cache_dir) == 0
    assert (out / "samconfig.toml").read_text() == "version = 0.1\n"
    assert (out / ".aws-sam" / "build.toml").is_file()
    assert not (out / "events" / "stale.json").exists()
    assert sha256(out / "bundle.zip") == sha256(forest_build / "bundle.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]  # no staging left behind


def run_isolated(root: Path, code: str) -> Any:
    """Run ``code`` in Python 3.12 that sees only ``root`` and the stdlib (-I -S)."""
    python = find_interpreter("3.12")
    assert python is not None, "these tests need a Python 3.12 on the host (pyenv has one)"
    done = subprocess.run(
        [str(python), "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(root)!r})\n{code}"],
        env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_bundle_runs_alone_and_loads_only_what_it_needs(forest_build: Path, tmp_path: Path) -> None:
    root = tmp_path / "task"
    with zipfile.ZipFile(forest_build / "bundle.zip") as zf:
        zf.extractall(root)
    event = json.loads((FIXTURES / "apigw-v2.json").read_text())
    answer = run_isolated(
        root,
        f"""
import json
import mlflow_lambda.handler.lambda_function as lf
response = lf.handler(json.loads({json.dumps(json.dumps(event))}), None)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} - set(sys.stdlib_module_names))
print(json.dumps({{"response": response, "loaded": loaded}}))
""",
    )
    assert answer["response"]["statusCode"] == 200
    assert json.loads(answer["response"]["body"]) == {"predictions": [0, 2]}
    third_party = {n for n in answer["loaded"] if not n.startswith("_") and n != "__main__"}
    assert third_party <= ALLOWED_THIRD_PARTY, sorted(third_party - ALLOWED_THIRD_PARTY)
    assert {"mlflow", "yaml", "click", "boto3", "packager", "infra"}.isdisjoint(third_party)
    assert {"pandas", "fastapi", "pydantic", "pyarrow"}.isdisjoint(third_party)


def test_invoke_through_the_lambda_runtime(
    forest_build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = FIXTURES / "apigw-v1.json"
    assert package("invoke", forest_build, "--event", event) == 0
    out, err = capsys.readouterr()
    assert out.startswith("HTTP 200 application/json")
    assert json.loads(out.split("\n", 1)[1]) == {"predictions": [0, 2]}
    assert "REPORT Duration:" in err and "Init Duration:" in err

    bad = forest_build.parent / "bad.json"
    bad.write_text(json.dumps({"dataframe_split": {"data": [[1.0]]}}))
    assert package("invoke", forest_build, "--data", bad, "--event-type", "direct") == 1
    out, _ = capsys.readouterr()
    assert json.loads(out)["error_code"] == "INVALID_PARAMETER_VALUE"


def test_image_target_runs_through_the_same_runtime(
    forest: LoggedModel, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "image-out"
    uri = f"runs:/{forest.run_id}/forest"
    assert (
        package("package", "-m", uri, "-o", out, "--target", "image", "--cache-dir", cache_dir) == 0
    )
    dockerfile = (out / "image" / "Dockerfile").read_text()
    assert "FROM --platform=linux/amd64 public.ecr.aws/lambda/python:3.12" in dockerfile
    assert 'CMD ["mlflow_lambda.handler.lambda_function.handler"]' in dockerfile
    assert dockerfile.index("deps") < dockerfile.index("app")  # model changes rebuild little
    template = yaml.safe_load((out / "template.yaml").read_text())
    assert template["Resources"]["ModelFunction"]["Properties"]["PackageType"] == "Image"
    capsys.readouterr()
    payload = Path(__file__).parent.parent.parent / "examples" / "payload.csv"
    assert package("invoke", out, "--data", payload) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == {"predictions": [0, 1, 2]}


def test_arm64_build(forest: LoggedModel, cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "arm"
    uri = f"models:/{forest.registered_name}/{forest.version}"
    assert (
        package("package", "-m", uri, "-o", out, "--arch", "arm64", "--cache-dir", cache_dir) == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arch"] == "arm64"
    template = yaml.safe_load((out / "template.yaml").read_text())
    assert template["Resources"]["ModelFunction"]["Properties"]["Architectures"] == ["arm64"]
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        sos = [n for n in zf.namelist() if n.endswith(".so")]
        head = zf.read(next(n for n in sos if "_multiarray_umath" in n))[:20]
    assert "aarch64" in next(n for n in sos if "_multiarray_umath" in n)
    assert int.from_bytes(head[18:20], "little") == 183  # ELF e_machine EM_AARCH64
    # this x86_64 host cannot run the arm64 bundle's Python: the model stays skops, with skops
    assert json.loads((out / "model.json").read_text())["preloaded"] is None
    assert manifest["distributions"]["skops"] == "0.16.0"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("ftp://host/model", "cannot resolve 'ftp://host/model'"),
        ("models:/NoSuchModel/1", "registered model 'NoSuchModel' not found"),
        ("models:/MyRandomForest/99", "has no version 99"),
    ],
)
def test_bad_uris_fail_with_one_line(
    uri: str,
    expected: str,
    forest: LoggedModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    assert package("package", "-m", uri, "-o", out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("Error: ") and expected in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging directory left behind


def test_refuses_to_overwrite_a_directory_that_is_not_a_build(
    forest: LoggedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert package("package", "-m", str(forest.local_dir), "-o", out) == 1
    assert "holds no previous build" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_unsupported_flavor_fails_before_installing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    # no python_function flavor: neither a native loader nor MLflow's own pyfunc can serve it
    (model / "MLmodel").write_text("flavors:\n  h2o: {}\n")
    assert package("package", "-m", model, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "unsupported model flavor 'h2o'" in err and "supported flavors: catboost" in err
    assert not (tmp_path / "out").exists()


def test_model_that_needs_a_dataframe_gets_pandas_back(
    mlflow_store: str, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """All-numeric signature, but the pipeline selects columns by name: the pandas-free
    bundle fails its build check, and the build adds pandas instead of shipping it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from tests.mlflow_models import _log, mixed_frame

    X, y = mixed_frame()
    X = X[["age", "income"]]
    model = Pipeline(
        [
            ("prep", ColumnTransformer([("num", StandardScaler(), ["age", "income"])])),
            ("reg", LinearRegression()),
        ]
    ).fit(X, y)
    logged = _log("by-name", model, X, serialization_format="cloudpickle")
    out = tmp_path / "out"
    assert package("package", "-m", logged.model_uri, "-o", out, "--cache-dir", cache_dir) == 0
    assert "without pandas the model failed its check" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["distributions"]["pandas"] == "3.1.1"
    assert (
        package(
            "invoke",
            out,
            "--event-type",
            "direct",
            "--event",
            out / "events" / "invocations-direct.json",
        )
        == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer["predictions"] == pytest.approx(model.predict(X.head(2)).tolist())


def test_model_on_s3_stays_out_of_the_bundle_and_is_fetched_at_cold_start(
    forest: LoggedModel, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from tests.moto_server import moto_server

    out = tmp_path / "out"
    with moto_server(extra_env={"AWS_ENDPOINT_URL": None}) as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models-pkg")
        location = "s3://models-pkg/forest/v1"
        args = ("-o", out, "--model-location", location, "--cache-dir", cache_dir)
        assert package("package", "-m", forest.local_dir, *args) == 0
        with zipfile.ZipFile(out / "bundle.zip") as zf:
            assert not [n for n in zf.namelist() if n.startswith("model/")]
        keys = {
            o["Key"]
            for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="models-pkg")[
                "Contents"
            ]
        }
        uploaded = {*hash_model_files(forest.local_dir), PRELOADED_FILE}  # + the build's pickle
        assert keys == {f"forest/v1/{rel}" for rel in uploaded}
        template = yaml.safe_load((out / "template.yaml").read_text())
        function = template["Resources"]["ModelFunction"]["Properties"]
        assert function["Environment"]["Variables"]["MODEL_S3_URI"] == location
        capsys.readouterr()
        event = out / "events" / "invocations-direct.json"
        assert package("invoke", out, "--event", event) == 0
        assert json.loads(capsys.readouterr().out) == {"predictions": [0, 0]}

        # the pickle is unpickled only after the fetch checked its sha256: a tampered one is
        # refused at init, naming the file
        s3 = boto3.client("s3", endpoint_url=endpoint)
        key = f"forest/v1/{PRELOADED_FILE}"
        pickled = s3.get_object(Bucket="models-pkg", Key=key)["Body"].read()
        s3.put_object(Bucket="models-pkg", Key=key, Body=pickled + b".")
        assert package("invoke", out, "--event", event) == 1
        out_text, err_text = capsys.readouterr()
        assert f"model file {PRELOADED_FILE!r} has sha256" in out_text + err_text


def test_the_import_checks_peak_is_the_bundles_own_not_the_builders(
    forest_build: Path, tmp_path: Path
) -> None:
    """Linux carries getrusage's ru_maxrss over fork + exec: a large building process (a
    notebook, this test run) must not inflate the peak and with it the template's MemorySize."""
    from mlflow_lambda.packager.importcheck import import_check

    with zipfile.ZipFile(forest_build / "bundle.zip") as zf:
        zf.extractall(tmp_path)
    config = json.loads((tmp_path / "model.json").read_text())
    ballast = b"\x01" * (800 * 2**20)  # resident in this process while the check runs
    result = import_check(
        [tmp_path], find_interpreter("3.12"), "3.12", "x86_64", config["input_example"]
    )
    assert len(ballast) and result.skipped is None
    assert result.peak_rss_mb is not None and 50 < result.peak_rss_mb < 500
