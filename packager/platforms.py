"""AWS Lambda Python runtimes: which Pythons, which glibc, which wheel tags.

Everything here is a pure function of the *target* (a Lambda runtime and an
architecture), never of the host, so a bundle built on macOS, Windows or an arm64
laptop gets the same wheels as one built on an x86_64 Linux CI runner.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from packaging.tags import Tag, compatible_tags, cpython_tags

# Lambda Python runtime -> glibc (major, minor) of the Amazon Linux it runs on.
# - Runtimes and their OS: https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html
#   (python3.10, python3.11: Amazon Linux 2; python3.12, python3.13, python3.14: Amazon Linux 2023).
# - AL2023 ships glibc 2.34: https://docs.aws.amazon.com/linux/al2023/ug/core-glibc.html
# - AL2 ships glibc 2.26: https://docs.aws.amazon.com/linux/al2023/ug/compare-with-al2.html
#   (the AL2 -> AL2023 toolchain change; also quoted in apache/arrow#38373).
# A wheel tagged manylinux_2_X runs on glibc >= 2.X (PEP 600), so these numbers cap the tags.
_RUNTIME_GLIBC: dict[str, tuple[int, int]] = {
    "python3.10": (2, 26),
    "python3.11": (2, 26),
    "python3.12": (2, 34),
    "python3.13": (2, 34),
    "python3.14": (2, 34),
}

# The two operating systems behind those runtimes, by glibc (same sources as above).
_GLIBC_OS: dict[tuple[int, int], str] = {(2, 26): "Amazon Linux 2", (2, 34): "Amazon Linux 2023"}

SUPPORTED_PYTHONS: tuple[str, ...] = tuple(name.removeprefix("python") for name in _RUNTIME_GLIBC)

# Lambda's architecture names -> the machine name in wheel tags and `uname -m`.
ARCHITECTURES: dict[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}

# Lowest glibc each architecture's manylinux tags go down to: PEP 513 (manylinux1, glibc 2.5)
# only defined x86_64/i686; aarch64 first appears with manylinux2014 (PEP 599, glibc 2.17).
_MIN_GLIBC_MINOR: dict[str, int] = {"x86_64": 5, "aarch64": 17}

# The legacy aliases of PEP 513/571/599 name the same glibc baselines as PEP 600 tags; wheels
# built before PEP 600 carry only the alias, so both spellings must be accepted.
_LEGACY_ALIASES: dict[int, str] = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class Target:
    """A Lambda runtime and architecture to build for, e.g. ``Target("3.12", "x86_64")``."""

    python_version: str  # "3.12"
    arch: str  # Lambda's name: "x86_64" | "arm64"

    @property
    def runtime(self) -> str:
        """Lambda's runtime identifier, e.g. ``python3.12``."""
        return f"python{self.python_version}"

    @property
    def machine(self) -> str:
        """The machine name used in wheel tags: ``x86_64`` or ``aarch64``."""
        return ARCHITECTURES[self.arch]

    @property
    def glibc(self) -> tuple[int, int]:
        """The runtime's glibc version."""
        return _RUNTIME_GLIBC[self.runtime]

    @property
    def os_name(self) -> str:
        """The Amazon Linux release the runtime runs on."""
        return _GLIBC_OS[self.glibc]

    @property
    def interpreter(self) -> str:
        """The CPython interpreter/ABI tag, e.g. ``cp312``."""
        return "cp" + self.python_version.replace(".", "")

    def describe(self) -> str:
        """Human-readable name for messages, e.g. ``python3.12 x86_64``."""
        return f"{self.runtime} {self.arch}"


def normalize_python(python: str) -> str:
    """``"python3.12"``, ``"3.12"`` or ``"3.12.4"`` -> ``"3.12"``; ValueError if not X.Y."""
    text = python.strip().removeprefix("python")
    parts = text.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise ValueError(f"not a Python version: {python!r} (expected e.g. '3.12')")
    return f"{int(parts[0])}.{int(parts[1])}"


def host_arch(machine: str | None = None) -> str:
    """This host's architecture (or ``machine``'s) under Lambda's name; unknown ones lowercased."""
    value = machine or platform.machine()
    try:
        return normalize_arch(value)
    except ValueError:
        return value.strip().lower()


def normalize_arch(arch: str) -> str:
    """Lambda's architecture name for ``arch`` (``aarch64`` is accepted as ``arm64``)."""
    value = arch.strip().lower()
    if value == "aarch64":
        return "arm64"
    if value in {"amd64", "x86-64"}:
        return "x86_64"
    if value not in ARCHITECTURES:
        raise ValueError(
            f"unsupported architecture {arch!r}; Lambda supports {', '.join(ARCHITECTURES)}"
        )
    return value


def nearest_supported_python(python_version: str) -> str:
    """The supported runtime closest to ``python_version`` (ties go to the newer one)."""
    major, minor = (int(p) for p in normalize_python(python_version).split("."))

    def distance(candidate: str) -> tuple[int, int]:
        c_major, c_minor = (int(p) for p in candidate.split("."))
        return (abs((c_major - major) * 100 + (c_minor - minor)), -c_minor)

    return min(SUPPORTED_PYTHONS, key=distance)


def manylinux_platforms(glibc: tuple[int, int], machine: str) -> list[str]:
    """Every manylinux platform tag a glibc ``glibc`` system on ``machine`` accepts, best first.

    PEP 600 tags from the runtime's glibc down to the architecture's oldest, each legacy alias
    (PEP 513/571/599) right after the PEP 600 tag it equals — the order ``packaging.tags``
    itself uses. ``linux_<machine>`` is left out on purpose: such wheels are built for one
    machine's libraries and are not portable to Lambda.
    """
    major, top = glibc
    tags: list[str] = []
    for minor in range(top, _MIN_GLIBC_MINOR[machine] - 1, -1):
        tags.append(f"manylinux_{major}_{minor}_{machine}")
        alias = _LEGACY_ALIASES.get(minor)
        if alias and (alias != "manylinux1" or machine == "x86_64"):
            tags.append(f"{alias}_{machine}")
    return tags


def platform_tags(target: Target) -> list[str]:
    """The ``--platform`` values to pass to pip for ``target``, best first.

    All of them are needed: pip only expands the legacy ``manylinux2014``/``manylinux2010``
    aliases, so a single PEP 600 tag silently hides wheels tagged for older glibc (and a single
    old tag silently picks older versions; see docs/findings.md).
    """
    return manylinux_platforms(target.glibc, target.machine)


def supported_tags(target: Target) -> list[Tag]:
    """Every wheel tag the target runtime accepts, most specific first (``packaging.tags``)."""
    major, minor = (int(p) for p in target.python_version.split("."))
    platforms = platform_tags(target)
    return [
        *cpython_tags(python_version=(major, minor), platforms=platforms),
        *compatible_tags(
            python_version=(major, minor), interpreter=target.interpreter, platforms=platforms
        ),
    ]


def oldest_python_with_glibc(glibc: tuple[int, int]) -> str:
    """The oldest supported runtime whose glibc is at least ``glibc`` (else the newest)."""
    for python in SUPPORTED_PYTHONS:
        if _RUNTIME_GLIBC[f"python{python}"] >= glibc:
            return python
    return SUPPORTED_PYTHONS[-1]


def runtime_glibc(python_version: str) -> tuple[int, int]:
    """glibc of the Lambda runtime for ``python_version``; KeyError if Lambda lacks it."""
    return _RUNTIME_GLIBC[f"python{normalize_python(python_version)}"]


def marker_environment(target: Target) -> dict[str, str]:
    """PEP 508 environment-marker values on the target Lambda runtime.

    pip evaluates markers against the *host* interpreter even with ``--platform`` and
    ``--python-version`` (pypa/pip#11664, open), which on a 3.11 host building for 3.10
    would skip ``exceptiongroup; python_version < "3.11"``. The plan and the install use
    these values instead. The patch release is unknown until deploy time, so ``.0`` stands in;
    the kernel release and version are left empty for the same reason.
    """
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{target.python_version}.0",
        "os_name": "posix",
        "platform_machine": target.machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{target.python_version}.0",
        "python_version": target.python_version,
        "sys_platform": "linux",
    }
