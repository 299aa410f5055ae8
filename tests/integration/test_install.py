"""Real pip installs of real models' requirements for Lambda targets, from this host.

The wheel cache is shared by the whole session and lives in a fixed directory
(``~/.cache/mlflow-lambda-tests/wheels``, or ``$MLFLOW_LAMBDA_TEST_WHEELS``) so reruns
install offline from it; a cold cache downloads ~75 MB per target from PyPI.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlflow_lambda.packager.elfcheck import check_architecture
from mlflow_lambda.packager.errors import BundleCheckError, DependencyError
from mlflow_lambda.packager.inspection import inspect_model
from mlflow_lambda.packager.install import (
    PipResult,
    RuntimeTooOldError,
    install_requirements,
    run_pip,
)
from mlflow_lambda.packager.plan import BundlePlan, plan_bundle
from mlflow_lambda.packager.platforms import Target, platform_tags
from tests import mlflow_models as mm

pytestmark = pytest.mark.integration

NEVER_BUNDLED = {"mlflow", "mlflow-skinny", "mlflow-tracing", "pytest", "boto3", "botocore"}
NEVER_BUNDLED |= {"pyarrow"}


@pytest.fixture(scope="session")
def wheel_cache() -> Path:
    root = os.environ.get("MLFLOW_LAMBDA_TEST_WHEELS")
    path = Path(root) if root else Path.home() / ".cache" / "mlflow-lambda-tests" / "wheels"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class RecordingPip:
    """The real pip runner, recording each command; optionally refusing downloads."""

    allow_download: bool = True
    calls: list[list[str]] = field(default_factory=list)

    def __call__(
        self, args: Sequence[str], *, markers: Mapping[str, str], on_line: Callable[[str], None]
    ) -> PipResult:
        self.calls.append(list(args))
        if args[0] == "download" and not self.allow_download:
            raise AssertionError(f"unexpected download: {list(args)}")
        return run_pip(args, markers=markers, on_line=on_line)


@dataclass
class Installed:
    plan: BundlePlan
    target: Path
    result: list[tuple[str, str]]
    pip: RecordingPip
    progress: list[str]
    cache: Path

    @property
    def versions(self) -> dict[str, str]:
        return dict(self.result)


def _install(
    plan: BundlePlan, target: Path, wheel_cache: Path, pip: RecordingPip | None = None
) -> Installed:
    recorder = pip or RecordingPip()
    messages: list[str] = []
    cache = wheel_cache / f"{plan.python_version}-{plan.arch}"
    result = install_requirements(
        plan, target, cache_dir=cache, pip=recorder, progress=messages.append
    )
    return Installed(plan, target, result, recorder, messages, cache)


@pytest.fixture(scope="module")
def forest_config(forest: mm.LoggedModel) -> dict[str, Any]:
    return inspect_model(forest.local_dir)


def _expected_pins(plan: BundlePlan) -> dict[str, str]:
    """The exact pins the plan carries (the model's training versions)."""
    return {line.split("==")[0]: line.split("==")[1] for line in plan.requirements if "==" in line}


def _plan(config: dict[str, Any], python: str | None, arch: str) -> BundlePlan:
    warnings: list[str] = []
    return plan_bundle(config, python=python, arch=arch, warn=warnings.append)


@pytest.fixture(scope="module")
def forest_312_x86(
    forest_config: dict[str, Any], wheel_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installed]:
    target = tmp_path_factory.mktemp("forest-312-x86_64")
    yield _install(_plan(forest_config, "3.12", "x86_64"), target, wheel_cache)
    shutil.rmtree(target, ignore_errors=True)


@pytest.fixture(scope="module")
def forest_312_arm(
    forest_config: dict[str, Any], wheel_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installed]:
    target = tmp_path_factory.mktemp("forest-312-arm64")
    yield _install(_plan(forest_config, "3.12", "arm64"), target, wheel_cache)
    shutil.rmtree(target, ignore_errors=True)


def _files(root: Path, pattern: str) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(pattern))


def test_forest_312_x86_64_has_the_models_exact_versions(forest_312_x86: Installed) -> None:
    plan, versions = forest_312_x86.plan, forest_312_x86.versions
    pins = _expected_pins(plan)
    assert pins == {
        "numpy": "2.4.6",
        "scikit-learn": "1.9.1",
        "scipy": "1.17.1",
        "skops": "0.16.0",
    }
    assert {name: versions.get(name) for name in pins} == pins
    assert {"starlette", "mangum", "msgspec", "pysimdjson", "threadpoolctl"} <= versions.keys()
    assert {"fastapi", "pydantic", "pydantic-core"}.isdisjoint(versions)  # plain Starlette
    assert NEVER_BUNDLED & versions.keys() == set()
    assert "pandas" not in versions  # the forest's signature is all numeric
    assert forest_312_x86.result == sorted(forest_312_x86.result)
    assert forest_312_x86.progress[0] == "installing 8 requirements for python3.12 x86_64"
    assert forest_312_x86.progress[-1].startswith(f"installed {len(versions)} distributions (")


def test_cross_python_target_gets_no_host_bytecode_and_target_extensions(
    forest_312_x86: Installed,
) -> None:
    root = forest_312_x86.target
    assert _files(root, "*.pyc") == []
    assert _files(root, "__pycache__") == []
    assert not (root / "bin").exists()  # console scripts with the host's shebang
    assert [f for f in _files(root, "*.so") if "cpython-311" in f] == []
    extensions = _files(root, "*.cpython-312-x86_64-linux-gnu.so")
    assert "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so" in extensions


def test_pip_commands_pin_every_target_flag(forest_312_x86: Installed) -> None:
    calls, cache, root = forest_312_x86.pip.calls, forest_312_x86.cache, forest_312_x86.target
    # Warm cache: one offline install; cold cache: install (miss), download, install.
    assert [c[0] for c in calls] in (["install"], ["install", "download", "install"])
    install = calls[-1]
    platforms = [install[i + 1] for i, arg in enumerate(install) if arg == "--platform"]
    assert platforms == platform_tags(Target("3.12", "x86_64"))
    assert platforms[0] == "manylinux_2_34_x86_64"
    for flag in (
        "--no-index",
        "--no-compile",
        "--only-binary=:all:",
    ):
        assert flag in install
    joined = " ".join(install)
    assert f"--find-links {cache} --target {root}" in joined
    assert "--implementation cp --python-version 3.12" in joined
    requirements = forest_312_x86.plan.requirements
    assert install[-len(requirements) :] == requirements
    if len(calls) == 3:
        download = calls[1]
        assert download[:3] == ["download", "--dest", str(cache)]
        assert "--no-index" not in download
        assert [a for a in download if a.startswith("manylinux")] == platforms


def test_elf_check_passes_for_target_and_fails_for_other_arch(forest_312_x86: Installed) -> None:
    root = forest_312_x86.target
    assert check_architecture(root, "x86_64") > 100
    with pytest.raises(BundleCheckError) as exc:
        check_architecture(root, "arm64")
    message = str(exc.value)
    assert message.startswith(f"{check_architecture(root, 'x86_64')} native file(s) in ")
    assert "(expected ELF aarch64): " in message
    assert ".so (x86_64)" in message


def test_second_build_is_offline_and_identical(
    forest_312_x86: Installed, wheel_cache: Path, tmp_path: Path
) -> None:
    again = _install(
        forest_312_x86.plan, tmp_path / "again", wheel_cache, RecordingPip(allow_download=False)
    )
    assert [c[0] for c in again.pip.calls] == ["install"]
    assert again.result == forest_312_x86.result


def test_forest_312_arm64(forest_312_arm: Installed, forest_312_x86: Installed) -> None:
    root = forest_312_arm.target
    pins = _expected_pins(forest_312_arm.plan)
    assert {name: forest_312_arm.versions.get(name) for name in pins} == pins
    # Same pure-Python resolution as x86_64, only the binaries differ.
    assert forest_312_arm.result == forest_312_x86.result
    assert check_architecture(root, "arm64") > 100
    assert _files(root, "*.pyc") == []
    assert "numpy/_core/_multiarray_umath.cpython-312-aarch64-linux-gnu.so" in _files(root, "*.so")
    with pytest.raises(BundleCheckError, match=r"\(expected ELF x86_64\): .*\(aarch64\)"):
        check_architecture(root, "x86_64")


def test_forest_on_its_training_python_needs_a_newer_glibc(
    forest_config: dict[str, Any], wheel_cache: Path, tmp_path: Path
) -> None:
    """The forest was trained on 3.11 with numpy 2.4.6, whose x86_64 wheels need glibc 2.27+;
    Lambda's python3.11 runs on Amazon Linux 2 (glibc 2.26), so the error says what to do."""
    plan = _plan(forest_config, None, "x86_64")
    assert (plan.python_version, plan.arch) == ("3.11", "x86_64")
    with pytest.raises(RuntimeTooOldError) as exc:
        _install(plan, tmp_path / "t", wheel_cache)
    assert exc.value.suggested_python == "3.12"
    message = str(exc.value)
    assert message.startswith("no wheel for numpy==2.4.6 on manylinux_2_26_x86_64 / cp311; ")
    assert message.endswith(
        "; python3.11 runs on Amazon Linux 2 (glibc 2.26) and numpy==2.4.6 publishes wheels "
        "only for a newer glibc: build with --python 3.12 (Amazon Linux 2023, glibc 2.34)"
    )


def test_host_python_install_has_host_abi_extensions(wheel_cache: Path, tmp_path: Path) -> None:
    """The host's own Python (3.11) on Amazon Linux 2, with a numpy that still ships
    manylinux2014 wheels: exact version, cp311 extensions, nothing compiled."""
    plan = BundlePlan("3.11", "x86_64", ["numpy==2.2.6"], [], False)
    installed = _install(plan, tmp_path / "t", wheel_cache)
    assert installed.result == [("numpy", "2.2.6")]
    so = _files(installed.target, "*.so")
    assert "numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so" in so
    # pip compiled nothing: the only bytecode is what the numpy 2.2.6 wheel itself ships.
    (wheel,) = installed.cache.glob("numpy-2.2.6-cp311-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = sorted(n for n in zf.namelist() if n.endswith(".pyc"))
    assert shipped == ["numpy/distutils/__pycache__/conv_template.cpython-311.pyc"]
    assert _files(installed.target, "*.pyc") == shipped
    assert check_architecture(installed.target, "x86_64") == len(_files(installed.target, "*.so*"))


def test_array_model_bundles_no_pandas(
    array_model: mm.LoggedModel, wheel_cache: Path, tmp_path: Path
) -> None:
    config = inspect_model(array_model.local_dir)
    assert any(r.startswith("pandas==") for r in config["requirements"])
    plan = _plan(config, "3.12", "x86_64")
    assert plan.needs_pandas is False
    installed = _install(plan, tmp_path / "arrays", wheel_cache)
    assert "pandas" not in installed.versions
    assert {"numpy", "scikit-learn", "scipy", "starlette", "mangum"} <= installed.versions.keys()


def test_impossible_pin_names_package_and_target(wheel_cache: Path, tmp_path: Path) -> None:
    plan = BundlePlan("3.12", "x86_64", ["scikit-learn==0.19.0"], [], False)
    with pytest.raises(DependencyError) as exc:
        _install(plan, tmp_path / "t", wheel_cache)
    message = str(exc.value)
    prefix = "no wheel for scikit-learn==0.19.0 on manylinux_2_34_x86_64 / cp312; "
    assert message.startswith(prefix + "versions with a wheel for this target: ")
    assert "1.9.1" in message
    assert message.endswith(
        "; pin a version that publishes manylinux wheels for python3.12 x86_64, "
        "or build with another --python/--arch"
    )
    assert list((tmp_path / "t").iterdir()) == []


def test_conflicting_pins_name_both_sides(wheel_cache: Path, tmp_path: Path) -> None:
    plan = BundlePlan("3.12", "x86_64", ["numpy==1.26.4", "pandas==3.1.1"], [], False)
    with pytest.raises(DependencyError) as exc:
        _install(plan, tmp_path / "t", wheel_cache)
    assert str(exc.value) == (
        "conflicting requirements for python3.12 x86_64 (manylinux_2_34_x86_64 / cp312): "
        "The user requested numpy==1.26.4; pandas 3.1.1 depends on numpy>=2.0.2; "
        'python_version < "3.14". Relax or align these pins'
    )


@pytest.mark.parametrize(
    ("python", "expected"),
    [
        # anyio: exceptiongroup; python_version < "3.11", typing_extensions; < "3.13"
        ("3.10", {"anyio", "exceptiongroup", "idna", "sniffio", "typing-extensions"}),
        ("3.13", {"anyio", "idna", "sniffio"}),
    ],
)
def test_dependency_markers_follow_the_target_python(
    python: str, expected: set[str], wheel_cache: Path, tmp_path: Path
) -> None:
    plan = BundlePlan(python, "x86_64", ["anyio==4.11.0"], [], False)
    assert set(_install(plan, tmp_path / "t", wheel_cache).versions) == expected


def test_unreachable_index_says_so(tmp_path: Path) -> None:
    """pip's own words when the index is unreachable and the cache is empty (canned: a real
    network outage cannot be staged here), turned into a message that names the cause."""
    offline = (
        "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None))"
        " after connection broken by 'NewConnectionError(\"<pip._vendor.urllib3.connection."
        "HTTPSConnection object>: Failed to establish a new connection: [Errno -3] Temporary "
        "failure in name resolution\")': /simple/scikit-learn/\n"
        "ERROR: Could not find a version that satisfies the requirement scikit-learn==1.9.1 "
        "(from versions: none)\n"
        "ERROR: No matching distribution found for scikit-learn==1.9.1\n"
    )
    calls: list[str] = []

    def pip(
        args: Sequence[str], *, markers: Mapping[str, str], on_line: Callable[[str], None]
    ) -> PipResult:
        calls.append(args[0])
        return PipResult(1, offline)

    plan = BundlePlan("3.12", "arm64", ["scikit-learn==1.9.1"], [], False)
    with pytest.raises(DependencyError) as exc:
        install_requirements(plan, tmp_path / "t", cache_dir=tmp_path / "cache", pip=pip)
    assert calls == ["install", "download"]
    assert str(exc.value) == (
        "could not reach the package index to download scikit-learn==1.9.1 for python3.12 "
        f"arm64, and the wheel cache {str(tmp_path / 'cache')!r} does not have it; check the "
        "network or pip's index settings (pip.conf, PIP_INDEX_URL)"
    )
