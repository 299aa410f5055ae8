"""The package pipeline: model URI -> bundle.zip or image context, manifest, template, events.

    resolve -> inspect -> plan -> install -> prune -> stage app -> bytecode
        -> import check -> [--trim: trace, trim, import check again] -> assemble
        -> size check -> manifest, template.yaml, events/

Everything is built in a staging directory next to ``outdir`` and moved into place
only when every step passed, so a failed build never leaves a bundle that looks good.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import handler
from infra.events import write_events
from infra.template import TemplateOptions, suggest_memory_mb, write_template
from packager import assemble, bytecode, sizes, trim
from packager.deps import DepsOptions, prepare_dependencies
from packager.errors import BundleCheckError
from packager.importcheck import ImportCheck, import_check
from packager.inspection import write_model_config
from packager.install import RuntimeTooOldError, cache_root
from packager.manifest import Manifest
from packager.outdir import prepare_outdir, publish
from packager.plan import BundlePlan, plan_bundle
from packager.resolve import resolve_model

Progress = Callable[[str], None]
MIN_MEMORY_MB = 1024


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


@dataclass(frozen=True)
class BuildResult:
    outdir: Path
    manifest: dict[str, Any]
    template_path: Path
    artifact_path: Path  # bundle.zip, or the image context directory
    warnings: list[str] = field(default_factory=list)


def _dependencies(
    config: dict[str, Any],
    plan: BundlePlan,
    deps: Path,
    opts: BuildOptions,
    deps_opts: DepsOptions,
    progress: Progress,
    warn: Progress,
) -> tuple[BundlePlan, dict[str, str], Path | None]:
    """Prepare the plan's dependencies in ``deps``; return the plan actually used.

    When the training Python's Lambda runtime has too old a glibc for the model's pins
    (python3.10/3.11 run on Amazon Linux 2, glibc 2.26; numpy >= 2.3 needs 2.28), keep the
    pins, which the model must load with, and move to the runtime install suggests, unless
    the user chose ``--python``.
    """
    interpreter = bytecode.find_interpreter(plan.python_version)
    try:
        installed = prepare_dependencies(
            plan, deps, deps_opts, interpreter=interpreter, progress=progress
        )
    except RuntimeTooOldError as exc:
        if opts.python is not None:
            raise
        warn(f"{exc}; using python{exc.suggested_python} instead (--python to choose)")
        plan = plan_bundle(
            config, python=exc.suggested_python, arch=plan.arch, warn=warn,
            force_pandas=opts.with_pandas,
        )  # fmt: skip
        interpreter = bytecode.find_interpreter(plan.python_version)
        shutil.rmtree(deps)
        deps.mkdir()
        installed = prepare_dependencies(
            plan, deps, deps_opts, interpreter=interpreter, progress=progress
        )
    return plan, installed, interpreter


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


def serve_cache_dir(model_uri: str, arch: str) -> Path:
    """Where ``serve -m URI`` builds: one directory per URI and architecture, rebuilt each time."""
    import hashlib

    key = hashlib.sha256(f"{model_uri}\0{arch}".encode()).hexdigest()[:16]
    return cache_root() / "serve" / key


def _copy_handler(dest: Path) -> None:
    """Copy the runtime package's sources (not its tests, caches or typing marker)."""
    source = Path(handler.__file__).resolve().parent
    for path in sorted(source.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        target = dest / "handler" / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _upload_model(model_dir: Path, uri: str, files: dict[str, str], progress: Progress) -> None:
    import boto3

    from packager.modelstore import upload_model

    progress(f"uploading the model to {uri}")
    upload_model(model_dir, uri, files, boto3.client("s3"))


def build(opts: BuildOptions, *, progress: Progress = print, warn: Progress = print) -> BuildResult:
    """Build the bundle described by ``opts`` into ``opts.outdir``; see the module docstring.

    ``progress`` gets one line per step, prefixed with the seconds since the start.
    """
    started = time.monotonic()

    def timed(message: str) -> None:
        progress(f"[{time.monotonic() - started:5.1f}s] {message}")

    return _build(opts, timed, warn)


def _build(opts: BuildOptions, progress: Progress, warn: Progress) -> BuildResult:
    outdir = Path(opts.outdir).resolve()
    prepare_outdir(outdir)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    deps_opts = DepsOptions(
        strip=opts.strip, bytecode_mode=_deps_bytecode(opts), cache_root=opts.cache_dir
    )

    def warn_(message: str) -> None:
        warnings.append(message)
        warn(message)

    work = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.build-", dir=outdir.parent))
    try:
        staged = work / "out"
        deps, app = work / "deps", work / "app"
        for d in (staged, deps, app):
            d.mkdir()

        progress(f"resolving {opts.model_uri}")
        resolved = resolve_model(opts.model_uri, work / "download", tracking_uri=opts.tracking_uri)
        config = write_model_config(resolved.local_dir, app / "model.json")
        plan = plan_bundle(
            config, python=opts.python, arch=opts.arch, warn=warn_, force_pandas=opts.with_pandas
        )
        progress(
            f"{config['flavor']} model ({config['serialization_format']}) -> "
            f"{plan.runtime} {plan.arch}, {len(plan.requirements)} requirements"
        )
        for dropped in plan.dropped:
            progress(f"  left out {dropped.requirement}: {dropped.reason}")

        plan, installed, interpreter = _dependencies(
            config, plan, deps, opts, deps_opts, progress, warn_
        )
        if interpreter is None:
            warn_(bytecode.missing_interpreter_message(plan.python_version))

        _copy_handler(app)
        if opts.model_location:
            _upload_model(resolved.local_dir, opts.model_location, config["files"], progress)
        else:
            shutil.copytree(resolved.local_dir, app / "model")
        if interpreter is not None:
            # The handler keeps its sources unless asked otherwise: tracebacks of our own
            # code then show their lines, for 0.2 MB.
            app_mode = opts.bytecode_mode or bytecode.DEFAULT_MODE
            bytecode.compile_tree(app, interpreter, mode=app_mode)

        peak_mb, checked = None, False
        if opts.check_import:
            progress("checking that the bundle imports and predicts on its own")

            def check() -> ImportCheck:
                return import_check(
                    [app, deps],
                    interpreter,
                    plan.python_version,
                    plan.arch,
                    config.get("input_example"),
                    model_dir=resolved.local_dir if opts.model_location else None,
                )

            try:
                result = check()
            except BundleCheckError as exc:
                if plan.needs_pandas:
                    raise
                # The signature is all numeric, but the model itself may want a DataFrame
                # (a ColumnTransformer selecting columns by name): package it with pandas.
                first = str(exc).splitlines()[0]
                warn_(f"without pandas the model failed its check ({first}); adding pandas")
                plan = plan_bundle(
                    config, python=plan.python_version, arch=plan.arch, warn=warn_,
                    force_pandas=True,
                )  # fmt: skip
                shutil.rmtree(deps)
                deps.mkdir()
                installed = prepare_dependencies(
                    plan, deps, deps_opts, interpreter=interpreter, progress=progress
                )
                result = check()
            if result.skipped:
                warn_(result.skipped)
                if not plan.needs_pandas:
                    warn_(
                        "pandas was left out (the signature is all numeric) and the model could "
                        "not be tried without it here; if it selects columns by name, package "
                        "with --with-pandas"
                    )
            peak_mb, checked = result.peak_rss_mb, result.skipped is None

        trimmed = None
        if opts.trim:
            model_dir = resolved.local_dir if opts.model_location else app / "model"
            trimmed = trim.trim_bundle(config, plan, installed, (app, deps, work), interpreter,
                            deps_opts, model_dir, progress)  # fmt: skip
            if checked:  # on this host the check runs: run it on what --trim left
                progress("checking that the trimmed bundle imports and predicts on its own")
                result = check()
                peak_mb = result.peak_rss_mb

        if opts.target == "zip":
            for entry in sorted(app.iterdir()):
                entry.rename(deps / entry.name)
            artifact = staged / "bundle.zip"
            progress("writing bundle.zip")
            artifact_sha = assemble.build_zip(deps, artifact)
            size = sizes.size_report(deps, artifact)
        else:
            artifact = staged / "image"
            progress("writing the image build context")
            assemble.build_image_context(
                deps, app, artifact, python=plan.python_version, arch=plan.arch
            )
            artifact_sha = None
            size = sizes.size_report(artifact)
        progress(size.format())
        for message in sizes.check_limits(size, target=opts.target):
            warn_(message)

        manifest = Manifest(
            model_uri=opts.model_uri,
            run_id=resolved.run_id or config.get("run_id"),
            registered_model=resolved.model_name,
            model_version=resolved.version,
            model_source=resolved.source,
            flavor=config["flavor"],
            serialization_format=config["serialization_format"],
            target=opts.target,
            python_version=plan.python_version,
            arch=plan.arch,
            distributions=installed,
            model_files=config["files"],
            artifact_sha256=artifact_sha,
            sizes={
                "unzipped_bytes": size.unzipped,
                "zipped_bytes": size.zipped,
                "peak_rss_mb": peak_mb,
                "trimmed_bytes": trimmed.bytes_saved if trimmed else None,
            },
            model_location=opts.model_location,
        )
        manifest.write(staged / "manifest.json")
        if opts.target == "image":
            shutil.copyfile(app / "model.json", staged / "model.json")
        else:
            shutil.copyfile(deps / "model.json", staged / "model.json")
        # Lambda gives CPU in proportion to memory, and init (importing numpy, scipy and
        # sklearn) is CPU-bound, so 1024 MB is the floor for a quick cold start; a model
        # whose measured peak needs more gets more. A floor also keeps template.yaml the
        # same from build to build, since a measured peak varies by a few MB.
        memory = max(MIN_MEMORY_MB, suggest_memory_mb(peak_mb, size.unzipped / sizes.MB))
        if peak_mb is not None:
            progress(f"peak memory at import + predict: {peak_mb:.0f} MB; MemorySize {memory}")
        template = write_template(
            staged,
            TemplateOptions(
                function_name=opts.name,
                runtime=plan.runtime,
                arch="arm64" if plan.arch == "arm64" else "x86_64",
                package_type=opts.target,
                docker_context="image",
                memory_mb=memory,
                model_s3_uri=opts.model_location,
            ),
        )
        write_events(staged, config)
        publish(staged, outdir)
        progress(f"built {outdir}")
        return BuildResult(
            outdir=outdir,
            manifest=manifest.to_dict(),
            template_path=outdir / template.name,
            artifact_path=outdir / artifact.name,
            warnings=warnings,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
