"""Check that every shared object in a bundle is built for the Lambda architecture.

A wheel for the wrong platform (a macOS or x86_64 wheel in an arm64 bundle) installs
without complaint and only fails at cold start with ``ImportError: ... wrong ELF class``
or ``invalid ELF header``. Reading 20 bytes of each ``*.so*`` file catches it at build
time, with the stdlib only (no ``file``, ``readelf`` or ``pyelftools``).

ELF header layout (System V gABI, "ELF Header"; also ``man 5 elf``): ``e_ident`` is
16 bytes (magic ``\\x7fELF``, ``EI_CLASS`` at 4, ``EI_DATA`` at 5: 1 little-endian,
2 big-endian), then ``e_type`` (2 bytes) and ``e_machine`` (2 bytes) at offset 18.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlflow_lambda.packager.errors import BundleCheckError
from mlflow_lambda.packager.platforms import normalize_arch

ELF_MAGIC = b"\x7fELF"
# e_machine values (ELF gABI / glibc elf.h) for the machines a wheel may plausibly carry.
ELF_MACHINES: dict[int, str] = {
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390",
    40: "arm",
    62: "x86_64",
    183: "aarch64",
    243: "riscv",
}
# Lambda architecture -> the e_machine its shared objects must carry.
EXPECTED_MACHINE: dict[str, int] = {"x86_64": 62, "arm64": 183}

# Magic numbers of other object formats, to name them in the error (Mach-O: <mach-o/loader.h>,
# fat/universal binaries: <mach-o/fat.h>; PE: "MZ" DOS stub).
_OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"\xcf\xfa\xed\xfe", "Mach-O 64-bit (macOS)"),
    (b"\xce\xfa\xed\xfe", "Mach-O 32-bit (macOS)"),
    (b"\xca\xfe\xba\xbe", "Mach-O universal (macOS)"),
    (b"MZ", "PE (Windows)"),
)

# `foo.so`, `foo.cpython-312-x86_64-linux-gnu.so`, `libgfortran-040039e1.so.5.0.0`.
_SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")
# Native libraries that can never load on Linux, wherever they sit in the tree.
_FOREIGN_SUFFIXES = (".dylib", ".pyd", ".dll")

_MAX_LISTED = 10


@dataclass(frozen=True)
class ObjectInfo:
    """What the header of one native file says it is."""

    path: Path
    kind: str  # "x86_64", "aarch64", "Mach-O 64-bit (macOS)", "not an object file", ...
    machine: int | None  # e_machine for ELF files, None otherwise


def describe_object(path: Path) -> ObjectInfo:
    """Read ``path``'s header and say which format and machine it is for."""
    with path.open("rb") as f:
        header = f.read(20)
    if header.startswith(ELF_MAGIC) and len(header) >= 20:
        big_endian = header[5] == 2  # EI_DATA: ELFDATA2MSB
        machine = int.from_bytes(header[18:20], "big" if big_endian else "little")
        return ObjectInfo(path, ELF_MACHINES.get(machine, f"ELF machine {machine}"), machine)
    for magic, kind in _OTHER_FORMATS:
        if header.startswith(magic):
            return ObjectInfo(path, kind, None)
    return ObjectInfo(path, "not an object file", None)


def find_native_files(root: Path) -> list[Path]:
    """Every shared object (``*.so``, ``*.so.N``) and foreign native library under ``root``."""
    found = [
        p
        for p in root.rglob("*")
        if (_SHARED_OBJECT.search(p.name) or p.name.endswith(_FOREIGN_SUFFIXES)) and p.is_file()
    ]
    return sorted(found)


def check_architecture(root: Path, arch: str) -> int:
    """Fail unless every native file under ``root`` is an ELF object for ``arch``.

    ``arch`` is Lambda's name (``x86_64`` or ``arm64``). Returns how many files were
    checked. Raises :class:`BundleCheckError` naming the offending files (relative to
    ``root``) and what each one is.
    """
    arch = normalize_arch(arch)
    expected = EXPECTED_MACHINE[arch]
    files = find_native_files(root)
    bad = [info for info in map(describe_object, files) if info.machine != expected]
    if bad:
        listed = "; ".join(
            f"{info.path.relative_to(root).as_posix()} ({info.kind})" for info in bad[:_MAX_LISTED]
        )
        more = f"; and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        raise BundleCheckError(
            f"{len(bad)} native file(s) in {str(root)!r} will not load on Lambda {arch} "
            f"(expected ELF {ELF_MACHINES[expected]}): {listed}{more}. "
            "A wheel for another platform got in: install with the target's --platform tags "
            "and --only-binary=:all:, or rebuild for the matching --arch"
        )
    return len(files)
