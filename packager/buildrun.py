"""What one build is asked for and what every step of it shares.

:class:`BuildOptions` is what ``mlflow-lambda package`` (or the deployments plugin) asks for;
:class:`BuildRun` carries those options, the work directories and the warnings through the steps
of ``packager.build``; :class:`Deps` is the plan a build settled on and what installing it gave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlflow_lambda.packager import bytecode
from mlflow_lambda.packager.deps import DepsOptions
from mlflow_lambda.packager.plan import BundlePlan
from mlflow_lambda.packager.surface import Surface

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    """What ``mlflow-lambda package`` was asked to build."""

    model_uri: str
    outdir: Path
    target: Literal["zip", "image"] = "zip"
    arch: str = "x86_64"
    python: str | None = None
    tracking_uri: str | None = None
    name: str | None = None
    model_location: str | None = None  # s3://bucket/prefix: the model stays out of the bundle
    strip: bool = False
    trim: bool = False  # leave out what a traced run never imported (packager.trim)
    bytecode_mode: str | None = None  # None: pyc-only for a zip's dependencies, else unchecked
    cache_dir: Path | None = None  # wheels/ and prepared deps/ [~/.cache/mlflow-lambda]
    check_import: bool = True
    with_pandas: bool = False  # keep pandas even when the signature is all numeric
    surface: Surface = field(
        default_factory=Surface
    )  # endpoint, auth, throttling, capacity, alias and rollout
    allow_secrets: tuple[str, ...] = ()  # model files whose credentials ship (packager.hygiene)
    preload: bool = True  # ship a skops model as a pickle, without skops (packager.preload)


@dataclass(frozen=True)
class BuildResult:
    outdir: Path
    manifest: dict[str, Any]
    template_path: Path
    artifact_path: Path  # bundle.zip, or the image context directory
    warnings: list[str] = field(default_factory=list)


def deps_options(opts: BuildOptions) -> DepsOptions:
    return DepsOptions(
        strip=opts.strip, bytecode_mode=_deps_bytecode(opts), cache_root=opts.cache_dir
    )


def _deps_bytecode(opts: BuildOptions) -> str:
    """Bytecode mode for the dependencies.

    A zip must fit in 250 MB unzipped, and the sources of numpy, scipy, pandas and
    scikit-learn are ~40 MB that Lambda never reads once their bytecode is there, so by
    default a zip ships their ``.pyc`` only (no slower to import; tracebacks inside those
    libraries show file and line but not the source text). An image has room to keep them.
    """
    if opts.bytecode_mode:
        return opts.bytecode_mode
    return "pyc-only" if opts.target == "zip" else bytecode.DEFAULT_MODE


@dataclass
class BuildRun:
    """What every step of one build shares: the options, the work directories, the outputs."""

    opts: BuildOptions
    work: Path
    deps_opts: DepsOptions
    progress: Progress
    warn_to: Progress
    warnings: list[str] = field(default_factory=list)

    @property
    def staged(self) -> Path:  # what is published into OUTDIR
        return self.work / "out"

    @property
    def deps(self) -> Path:  # installed dependencies (the task root of a zip)
        return self.work / "deps"

    @property
    def app(self) -> Path:  # the runtime, the model and model.json
        return self.work / "app"

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.warn_to(message)


@dataclass
class Deps:
    """The plan a build settled on and what installing it produced."""

    plan: BundlePlan
    installed: dict[str, str]
    interpreter: Path | None
