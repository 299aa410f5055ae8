"""ELF architecture check on real shared objects from this venv and on crafted headers."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import numpy
import pytest

from mlflow_lambda.packager.elfcheck import check_architecture, describe_object, find_native_files
from mlflow_lambda.packager.errors import BundleCheckError

HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine())
OTHER_ARCH = {"x86_64": "arm64", "arm64": "x86_64"}.get(HOST_ARCH or "")


def _real_shared_object() -> Path:
    """A real CPython extension module of this host (numpy's core)."""
    found = sorted(Path(numpy.__file__).parent.glob("_core/_multiarray_umath*.so"))
    assert found, "numpy's _multiarray_umath extension not found"
    return found[0]


def _with_machine(src: Path, dest: Path, machine: int) -> Path:
    """Copy the first page of ``src`` (all the check reads) with ``e_machine`` rewritten."""
    with src.open("rb") as f:
        data = bytearray(f.read(4096))
    data[18:20] = machine.to_bytes(2, "little")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(bytes(data))
    return dest


# A 64-bit little-endian Mach-O header (MH_MAGIC_64, CPU_TYPE_ARM64), as in a macOS wheel.
MACHO_ARM64 = bytes.fromhex("cffaedfe0c000001000000000600000000000000")


def test_find_native_files_matches_versioned_names_only(tmp_path: Path) -> None:
    names = [
        "pkg/_ext.cpython-312-x86_64-linux-gnu.so",
        "pkg.libs/libgfortran-040039e1.so.5.0.0",
        "pkg/libfoo.so.1",
        "pkg/helper.dylib",
        "pkg/sort.py",
        "pkg/resource.sox",
        "pkg/notes.so.txt",
    ]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_native_files(tmp_path)]
    assert found == [
        "pkg/_ext.cpython-312-x86_64-linux-gnu.so",
        "pkg/helper.dylib",
        "pkg/libfoo.so.1",
        "pkg.libs/libgfortran-040039e1.so.5.0.0",
    ]


@pytest.mark.skipif(HOST_ARCH is None, reason="host is neither x86_64 nor aarch64")
def test_real_extension_passes_for_host_arch_and_fails_for_the_other(tmp_path: Path) -> None:
    assert HOST_ARCH is not None and OTHER_ARCH is not None
    so = shutil.copy(_real_shared_object(), tmp_path / "numpy_core.so")
    assert check_architecture(tmp_path, HOST_ARCH) == 1
    with pytest.raises(BundleCheckError) as exc:
        check_architecture(tmp_path, OTHER_ARCH)
    expected = "aarch64" if OTHER_ARCH == "arm64" else "x86_64"
    assert str(exc.value).startswith(
        f"1 native file(s) in {str(tmp_path)!r} will not load on Lambda {OTHER_ARCH} "
        f"(expected ELF {expected}): numpy_core.so ({platform.machine()})."
    )
    assert describe_object(Path(so)).machine == {"x86_64": 62, "arm64": 183}[HOST_ARCH]


def test_header_machine_values(tmp_path: Path) -> None:
    src = _real_shared_object()
    x86 = _with_machine(src, tmp_path / "x.so", 62)
    arm = _with_machine(src, tmp_path / "a.so", 183)
    assert (describe_object(x86).kind, describe_object(x86).machine) == ("x86_64", 62)
    assert (describe_object(arm).kind, describe_object(arm).machine) == ("aarch64", 183)


def test_macho_and_non_elf_files_fail_with_their_names(tmp_path: Path) -> None:
    src = _real_shared_object()
    _with_machine(src, tmp_path / "good/ok.cpython-312-aarch64-linux-gnu.so", 183)
    (tmp_path / "mac").mkdir()
    (tmp_path / "mac/_ext.cpython-312-darwin.so").write_bytes(MACHO_ARM64)
    (tmp_path / "mac/libomp.dylib").write_bytes(MACHO_ARM64)
    (tmp_path / "text.so").write_bytes(b"INPUT(-lfoo)\n")  # a linker script, not an object
    (tmp_path / "empty.so.1").write_bytes(b"")
    with pytest.raises(BundleCheckError) as exc:
        check_architecture(tmp_path, "arm64")
    message = str(exc.value)
    assert message.split(": ", 1)[1].split(". ", 1)[0] == (
        "empty.so.1 (not an object file); "
        "mac/_ext.cpython-312-darwin.so (Mach-O 64-bit (macOS)); "
        "mac/libomp.dylib (Mach-O 64-bit (macOS)); "
        "text.so (not an object file)"
    )
    assert message.startswith("4 native file(s)")


def test_long_lists_are_truncated(tmp_path: Path) -> None:
    src = _real_shared_object()
    for i in range(12):
        _with_machine(src, tmp_path / f"m{i:02d}.so", 62)
    with pytest.raises(BundleCheckError) as exc:
        check_architecture(tmp_path, "aarch64")  # the uname spelling is accepted too
    message = str(exc.value)
    assert message.startswith("12 native file(s)")
    assert "m09.so (x86_64); and 2 more." in message
    assert "m10.so" not in message


def test_empty_tree_checks_nothing(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text("", encoding="utf-8")
    assert check_architecture(tmp_path, "x86_64") == 0


def test_unknown_arch_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unsupported architecture 'ppc64le'"):
        check_architecture(tmp_path, "ppc64le")
