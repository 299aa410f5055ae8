"""Artifact hygiene at ``package`` (``packager/hygiene.py``), on copies of a real logged model.

Links and paths out of the model directory are refused; credentials stop the build with the file
and what was found unless allowed per file; and a build by a user whose home and name are
distinctive ships neither (the built zip is searched for both).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from mlflow_lambda.handler.config import verify_model_files
from mlflow_lambda.packager.errors import ModelHygieneError
from mlflow_lambda.packager.hygiene import check_links, check_model, check_paths, check_secrets
from mlflow_lambda.packager.inspection import inspect_model
from tests.integration.conftest import run_cli
from tests.mlflow_models import LoggedModel, log_forest, use_tracking_store

pytestmark = pytest.mark.integration

# Made-up credentials in the shapes AWS documents (IAM User Guide's example key pair).
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"


@pytest.fixture
def model(forest: LoggedModel, tmp_path: Path) -> Path:
    """A private copy of the README forest's model directory."""
    return Path(shutil.copytree(forest.local_dir, tmp_path / "model"))


def _refused(model: Path, allowed: tuple[str, ...] = ()) -> str:
    with pytest.raises(ModelHygieneError) as info:
        check_secrets(model, allowed)
    return str(info.value)


def test_symlink_out_of_the_model_is_refused_one_inside_is_fine(model: Path) -> None:
    (model / "inside").symlink_to("model.skops")
    (model / "sub").mkdir()
    (model / "sub" / "up").symlink_to("../requirements.txt")
    check_links(model)
    outside = model.parent / "host-file"
    outside.write_text("not the model's")
    (model / "sub" / "leak").symlink_to(outside)
    with pytest.raises(ModelHygieneError, match=r"model file 'sub/leak' is a symlink to '/.*host"):
        check_links(model)
    (model / "sub" / "leak").unlink()
    (model / "dir").symlink_to(model.parent, target_is_directory=True)
    with pytest.raises(ModelHygieneError, match="'dir' is a symlink"):
        check_links(model)


@pytest.mark.parametrize(
    "path", ["../model.skops", "sub/../../x.pkl", "/etc/passwd", "..\\x.pkl", "C:\\x.pkl"]
)
def test_a_path_out_of_the_model_is_refused(model: Path, path: str) -> None:
    config = inspect_model(model)
    mlmodel = yaml.safe_load((model / "MLmodel").read_text())
    check_paths(config, mlmodel)  # the real model names only paths inside it
    bad = {**mlmodel, "flavors": {**mlmodel["flavors"], "sklearn": {"pickled_model": path}}}
    with pytest.raises(ModelHygieneError, match=r"flavors\.sklearn\.pickled_model names"):
        check_paths(config, bad)
    files = {**config["files"], path: "0" * 64}
    with pytest.raises(ModelHygieneError, match=r"model\.json files names"):
        check_paths({**config, "files": files}, mlmodel)


@pytest.mark.parametrize(
    ("rel", "content", "what"),
    [
        ("notes.txt", f"key = {ACCESS_KEY}\n", "an AWS access key id (AKIA...MPLE, byte 6)"),
        ("conf.ini", f"aws_secret_access_key = {SECRET_KEY}\n", "an AWS secret access key"),
        ("keys/deploy", PRIVATE_KEY, "a private key"),
        (".env", "DEBUG=1\n", "a dotenv file"),
        (".env.production", "DEBUG=1\n", "a dotenv file"),
        (".aws/credentials", "[default]\n", "an AWS shared credentials file"),
        (".netrc", "machine example.com\n", "a .netrc file"),
    ],
)
def test_credentials_stop_the_build_naming_file_and_finding(
    model: Path, rel: str, content: str, what: str
) -> None:
    check_secrets(model)  # the model itself holds none
    (model / rel).parent.mkdir(parents=True, exist_ok=True)
    (model / rel).write_text(content)
    message = _refused(model)
    assert f"{rel!r}: {what}" in message
    assert "--allow-secret PATH" in message
    assert SECRET_KEY not in message and ACCESS_KEY not in message  # masked
    check_secrets(model, (rel,))  # allowed explicitly: that file only
    (model / "other" / rel).parent.mkdir(parents=True)
    (model / "other" / rel).write_text(content)
    assert f"'other/{rel}': {what}" in _refused(model, (rel,))


@pytest.mark.parametrize("after", [b"\x00", b"q", b"_"])
def test_credentials_inside_a_binary_artifact_are_found(model: Path, after: bytes) -> None:
    # the byte after the key as binary formats put it: NUL, pickle protocol 2's "q" opcode;
    # the random bytes around stay clear of key characters, so the test cannot flake
    noise = bytes(b & 0x7F | 0x80 for b in os.urandom(1 << 20))  # all >= 0x80
    blob = noise + b"\x14" + ACCESS_KEY.encode() + after + noise[:4096]
    (model / "extra.bin").write_bytes(blob)
    offset = (1 << 20) + 1
    assert f"'extra.bin': an AWS access key id (AKIA...MPLE, byte {offset})" in _refused(model)


def test_a_key_inside_a_pickle_is_found(model: Path) -> None:
    (model / "params.pkl").write_bytes(pickle.dumps({"key": ACCESS_KEY}, protocol=2))
    assert "'params.pkl': an AWS access key id (AKIA...MPLE" in _refused(model)


def test_allowing_a_file_the_model_lacks_is_an_error(model: Path) -> None:
    with pytest.raises(ModelHygieneError, match=r"--allow-secret names \['nope/.env'\]"):
        check_secrets(model, ("nope/.env",))


def test_the_logging_hosts_artifact_path_is_left_out(model: Path, tmp_path: Path) -> None:
    original = (model / "MLmodel").read_bytes()
    assert re.search(rb"^artifact_path: /", original, re.M)  # MLflow 3: the store's path
    config = inspect_model(model)
    clean, new_config = check_model(
        model, config, tmp_path / "model.json", tmp_path / "clean", progress=lambda _: None
    )
    assert clean == tmp_path / "clean"
    assert (model / "MLmodel").read_bytes() == original  # the user's file is untouched
    text = (clean / "MLmodel").read_text()
    assert not re.search(r"^artifact_path:", text, re.M) and str(tmp_path) not in text
    assert yaml.safe_load(text)["flavors"] == yaml.safe_load(original)["flavors"]
    assert json.loads((tmp_path / "model.json").read_text())["files"] == new_config["files"]
    verify_model_files(clean, new_config["files"])
    assert new_config["files"]["model.skops"] == config["files"]["model.skops"]


def test_package_refuses_credentials_then_ships_nothing_of_the_host(
    forest: LoggedModel, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import mlflow

    user = "hygienistuser"
    home = tmp_path / f"home-of-{user}"
    home.mkdir()
    for name in ("USER", "LOGNAME", "USERNAME"):
        monkeypatch.setenv(name, user)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)  # MLflow's default artifact root is relative to the working dir
    monkeypatch.setenv("MLFLOW_TRACKING_URI", os.environ.get("MLFLOW_TRACKING_URI", ""))
    previous = mlflow.get_tracking_uri()
    try:
        uri = use_tracking_store(home / "mlruns")  # a store in the user's home, as by default
        logged = log_forest(registered_name=None)
    finally:
        mlflow.set_tracking_uri(previous)
    assert str(home) in (logged.local_dir / "MLmodel").read_text()
    (logged.local_dir / "settings").mkdir()
    (logged.local_dir / "settings" / ".env").write_text(f"TOKEN={ACCESS_KEY}\n")

    out = tmp_path / "out"
    base = ("package", "-m", logged.model_uri, "--tracking-uri", uri, "-o", out,
            "--cache-dir", cache_dir)  # fmt: skip
    assert run_cli(*base) == 1
    err = capsys.readouterr().err
    assert "'settings/.env': a dotenv file (environment secrets), an AWS access key id (AKIA" in err
    assert not out.exists()

    assert run_cli(*base, "--allow-secret", "settings/.env") == 0
    with zipfile.ZipFile(out / "bundle.zip") as bundle:
        names = bundle.namelist()
        assert "model/settings/.env" in names  # allowed, so shipped
        for name in names:
            data = bundle.read(name)
            assert str(home).encode() not in data, name
            assert user.encode() not in data, name
        assert not re.search(rb"^artifact_path:", bundle.read("model/MLmodel"), re.M)


def test_the_plugin_passes_allow_secret_to_the_build() -> None:
    from mlflow_lambda.infra.plugin import CONFIG_KEYS, _build_options

    assert "allow_secret" in CONFIG_KEYS
    options = _build_options("models:/m/1", Path("out"), {"allow_secret": "a/.env, .netrc"})
    assert options.allow_secrets == ("a/.env", ".netrc")
    assert _build_options("models:/m/1", Path("out"), {}).allow_secrets == ()
