"""One pin per distribution: requirement lines merged, and GPU builds swapped for CPU twins.

The plan (:mod:`packager.plan`) reads the model's requirement lines and the handler's own,
and merges them here into one specifier per distribution, refusing what a bundle cannot honour
(pip options, URLs, pins that contradict each other). A GPU build is replaced by its CPU twin
of the same version where the index publishes one, and the swap is said aloud as a dropped line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mlflow_lambda.packager.errors import DependencyError
from mlflow_lambda.packager.platforms import Target


@dataclass(frozen=True)
class Dropped:
    """A requirement line left out of the bundle, and why."""

    requirement: str
    reason: str


@dataclass(frozen=True)
class CpuTwin:
    """The CPU-only build of a GPU distribution, published with the same version numbers."""

    name: str
    since: str  # the first version published under ``name``
    why: str


# Lambda has no GPU (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
# a CUDA build only costs size. Each twin is the same library, built without CUDA.
CPU_TWINS: dict[str, CpuTwin] = {
    # xgboost 3.x's manylinux_2_28 wheel is ~58 MB zipped and pulls nvidia-nccl-cu12/13;
    # xgboost-cpu (~6 MB) exists from 2.1.0 (https://github.com/dmlc/xgboost/pull/10112)
    "xgboost": CpuTwin("xgboost-cpu", "2.1.0", "without CUDA and nvidia-nccl"),
    "onnxruntime-gpu": CpuTwin("onnxruntime", "0", "without the CUDA/TensorRT providers"),
    "tensorflow": CpuTwin("tensorflow-cpu", "2.1.0", "without CUDA"),
}


def parse_requirement(line: str, target: Target) -> Requirement:
    if line.startswith("-"):
        raise DependencyError(
            f"requirement line {line!r} is a pip option, which a bundle cannot honour; "
            "log the model with plain 'name==version' requirements"
        )
    try:
        req = Requirement(line)
    except InvalidRequirement as exc:
        raise DependencyError(f"cannot parse model requirement {line!r}: {exc}") from None
    if req.url:
        raise DependencyError(
            f"model requirement {line!r} points at a URL; bundles install only wheels from the "
            f"package index for {target.describe()}: publish a wheel and pin 'name==version'"
        )
    return req


@dataclass
class Merged:
    name: str
    extras: set[str] = field(default_factory=set)
    specifier: SpecifierSet = field(default_factory=SpecifierSet)
    sources: list[str] = field(default_factory=list)

    def add(self, req: Requirement, source: str) -> None:
        self.extras |= req.extras
        self.specifier &= req.specifier
        self.sources.append(f"{req} ({source})")

    def render(self, target: Target) -> str:
        pins = [s.version for s in self.specifier if s.operator in ("==", "===")]
        if any(not self.specifier.contains(pin, prereleases=True) for pin in pins):
            raise DependencyError(
                f"conflicting requirements for {self.name} on {target.describe()}: "
                f"{'; '.join(self.sources)}. Log the model with one compatible pin for "
                f"{self.name}"
            )
        specifier = f"=={pins[0]}" if pins else str(self.specifier)
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras}{specifier}"


def at_least(pin: str, since: str) -> bool:
    try:
        return Version(pin) >= Version(since)
    except InvalidVersion:  # a wildcard pin such as ==3.2.*: compare its release part
        return Version(pin.rstrip(".*") or "0") >= Version(since)


def use_cpu_twins(merged: dict[str, Merged], dropped: list[Dropped], target: Target) -> None:
    """Replace each GPU distribution in ``merged`` by its CPU twin, same version, saying so."""
    for name, twin in CPU_TWINS.items():
        gpu = merged.get(name)
        if gpu is None:
            continue
        pinned = gpu.render(target)
        pins = [s.version for s in gpu.specifier if s.operator in ("==", "===")]
        if pins and not at_least(pins[0], twin.since):
            continue  # no CPU twin of that version: keep the pin the model needs
        del merged[name]
        cpu = merged.setdefault(canonicalize_name(twin.name), Merged(twin.name))
        cpu.extras |= gpu.extras
        cpu.specifier &= gpu.specifier
        cpu.sources += gpu.sources
        dropped.append(
            Dropped(
                pinned,
                f"Lambda has no GPU: installing its CPU build {cpu.render(target)} instead, "
                f"the same library {twin.why}",
            )
        )
