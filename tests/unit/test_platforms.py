"""Lambda runtime table, version/arch normalisation and wheel tags for a target."""

from __future__ import annotations

import pytest
from packaging.tags import Tag

from mlflow_lambda.packager.platforms import (
    SUPPORTED_PYTHONS,
    Target,
    manylinux_platforms,
    marker_environment,
    nearest_supported_python,
    normalize_arch,
    normalize_python,
    oldest_python_with_glibc,
    platform_tags,
    runtime_glibc,
    supported_tags,
)


def test_runtime_table() -> None:
    assert SUPPORTED_PYTHONS == ("3.10", "3.11", "3.12", "3.13", "3.14")
    assert {py: runtime_glibc(py) for py in SUPPORTED_PYTHONS} == {
        "3.10": (2, 26),
        "3.11": (2, 26),
        "3.12": (2, 34),
        "3.13": (2, 34),
        "3.14": (2, 34),
    }
    with pytest.raises(KeyError):
        runtime_glibc("3.9")


def test_target_properties() -> None:
    target = Target("3.12", "arm64")
    assert (target.runtime, target.machine, target.glibc, target.interpreter) == (
        "python3.12",
        "aarch64",
        (2, 34),
        "cp312",
    )
    assert target.describe() == "python3.12 arm64"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("3.12", "3.12"), ("python3.12", "3.12"), ("3.11.7", "3.11"), (" 3.10 ", "3.10")],
)
def test_normalize_python(given: str, expected: str) -> None:
    assert normalize_python(given) == expected


@pytest.mark.parametrize("bad", ["3", "three.twelve", "", "python"])
def test_normalize_python_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Python version"):
        normalize_python(bad)


def test_normalize_arch() -> None:
    assert [normalize_arch(a) for a in ("x86_64", "arm64", "aarch64", "AMD64", "ARM64")] == [
        "x86_64",
        "arm64",
        "arm64",
        "x86_64",
        "arm64",
    ]
    with pytest.raises(ValueError, match=r"unsupported architecture 'armv7l'; .*x86_64, arm64"):
        normalize_arch("armv7l")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("3.8", "3.10"), ("3.9.18", "3.10"), ("3.11", "3.11"), ("3.15", "3.14"), ("4.0", "3.14")],
)
def test_nearest_supported_python(given: str, expected: str) -> None:
    assert nearest_supported_python(given) == expected


def test_platform_tags_al2023_x86_64() -> None:
    tags = platform_tags(Target("3.12", "x86_64"))
    expected_pep600 = [f"manylinux_2_{m}_x86_64" for m in range(34, 4, -1)]
    assert [t for t in tags if t.startswith("manylinux_")] == expected_pep600
    # Legacy aliases sit right after the PEP 600 tag they equal.
    assert tags[tags.index("manylinux_2_17_x86_64") + 1] == "manylinux2014_x86_64"
    assert tags[tags.index("manylinux_2_12_x86_64") + 1] == "manylinux2010_x86_64"
    assert tags[-2:] == ["manylinux_2_5_x86_64", "manylinux1_x86_64"]
    assert len(tags) == 30 + 3


def test_platform_tags_al2_aarch64_stop_at_manylinux2014() -> None:
    assert platform_tags(Target("3.11", "arm64")) == [
        *(f"manylinux_2_{m}_aarch64" for m in range(26, 16, -1)),
        "manylinux2014_aarch64",
    ]


def test_manylinux_platforms_never_include_host_linux_tag() -> None:
    tags = manylinux_platforms((2, 34), "x86_64")
    assert "linux_x86_64" not in tags
    assert not any("2_35" in t for t in tags)


def test_supported_tags_best_first_and_complete() -> None:
    tags = supported_tags(Target("3.13", "x86_64"))
    assert tags[0] == Tag("cp313", "cp313", "manylinux_2_34_x86_64")
    assert Tag("cp313", "abi3", "manylinux2014_x86_64") in tags
    assert Tag("cp311", "abi3", "manylinux2014_x86_64") in tags  # abi3 from older Pythons
    assert Tag("py3", "none", "any") in tags
    assert Tag("cp313", "cp313", "manylinux_2_35_x86_64") not in tags
    assert Tag("cp312", "cp312", "manylinux_2_34_x86_64") not in tags
    assert Tag("cp313", "cp313", "manylinux_2_34_aarch64") not in tags
    assert Tag("cp313", "cp313", "macosx_11_0_arm64") not in tags


def test_os_names_and_oldest_runtime_on_a_glibc() -> None:
    assert [Target(py, "x86_64").os_name for py in SUPPORTED_PYTHONS] == [
        "Amazon Linux 2",
        "Amazon Linux 2",
        "Amazon Linux 2023",
        "Amazon Linux 2023",
        "Amazon Linux 2023",
    ]
    assert oldest_python_with_glibc((2, 34)) == "3.12"
    assert oldest_python_with_glibc((2, 17)) == "3.10"
    assert oldest_python_with_glibc((2, 39)) == "3.14"


def test_marker_environment_describes_the_target_not_the_host() -> None:
    assert marker_environment(Target("3.10", "arm64")) == {
        "implementation_name": "cpython",
        "implementation_version": "3.10.0",
        "os_name": "posix",
        "platform_machine": "aarch64",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": "3.10.0",
        "python_version": "3.10",
        "sys_platform": "linux",
    }
