"""The package pipeline: model URI -> bundle.zip or image context, manifest, template, events.

    resolve -> inspect -> hygiene -> document (openapi.json) -> plan -> install (+ prune,
        bytecode) -> stage -> verify -> [--trim: trace, trim, verify again]
        -> assemble (+ size check) -> render -> publish

``_build`` reads as those steps; each is a function of the module that owns it, called through
the small step functions below, which only carry their inputs and outputs.

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

from mlflow_lambda import handler
from mlflow_lambda.handler import BUNDLE_PACKAGE
from mlflow_lambda.handler.config import ModelConfig
from mlflow_lambda.packager import assemble, bytecode, hygiene, preload, sizes, trim
from mlflow_lambda.packager.deps import DepsOptions, prepare_dependencies
from mlflow_lambda.packager.endpoint import describe as describe_endpoint
from mlflow_lambda.packager.errors import BundleCheckError, RuntimeTooOldError
from mlflow_lambda.packager.events import write_events
from mlflow_lambda.packager.importcheck import ImportCheck, import_check, init_warning
from mlflow_lambda.packager.inspection import write_model_config
from mlflow_lambda.packager.install import cache_root, remember_runtime, remembered_runtime
from mlflow_lambda.packager.manifest import Manifest
from mlflow_lambda.packager.openapi import write_openapi
from mlflow_lambda.packager.outdir import prepare_outdir, publish
from mlflow_lambda.packager.plan import (
    WITH_PANDAS_REASON,
    BundlePlan,
    fitted_on_frame_reason,
    pandas_note,
    plan_bundle,
)
from mlflow_lambda.packager.resolve import ResolvedModel, resolve_model
from mlflow_lambda.packager.surface import Surface
from mlflow_lambda.packager.template import (
    TEMPLATE_FILE,
    TemplateOptions,
    suggest_memory_mb,
    write_template,
)

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


def _deps_options(opts: BuildOptions) -> DepsOptions:
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


def serve_cache_dir(model_uri: str, arch: str) -> Path:
    """Where ``serve -m URI`` builds: one directory per URI and architecture, rebuilt each time."""
    import hashlib

    key = hashlib.sha256(f"{model_uri}\0{arch}".encode()).hexdigest()[:16]
    return cache_root() / "serve" / key


def _copy_runtime(app: Path) -> None:
    """Copy the runtime's own sources into ``app/mlflow_lambda/handler/``.

    The sources are found through this package (``mlflow_lambda.handler.__file__``), never by
    importing a name that a user's ``handler.py`` on ``sys.path`` could shadow, and only its
    ``*.py`` files are copied (no caches, no typing marker). An empty ``mlflow_lambda/__init__.py``
    makes the bundle's copy a regular package, which nothing later on ``sys.path`` (a model's
    ``code_paths``, say) can extend.
    """
    source = Path(handler.__file__).resolve().parent
    root = app / BUNDLE_PACKAGE
    (root / "handler").mkdir(parents=True)
    (root / "__init__.py").write_bytes(b"")
    for path in sorted(source.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        target = root / "handler" / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _upload_model(model_dir: Path, uri: str, files: dict[str, str], progress: Progress) -> None:
    import boto3  # only a build with --model-location pays for importing boto3

    from mlflow_lambda.packager.modelstore import upload_model

    progress(f"uploading the model to {uri}")
    upload_model(model_dir, uri, files, boto3.client("s3"))


@dataclass
class _Run:
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
class _Deps:
    """The plan a build settled on and what installing it produced."""

    plan: BundlePlan
    installed: dict[str, str]
    interpreter: Path | None


# -- the steps ------------------------------------------------------------------------------
def _resolve(run: _Run) -> tuple[ResolvedModel, ModelConfig]:
    run.progress(f"resolving {run.opts.model_uri}")
    resolved = resolve_model(
        run.opts.model_uri, run.work / "download", tracking_uri=run.opts.tracking_uri
    )
    return resolved, write_model_config(resolved.local_dir, run.app / "model.json")


def _document(run: _Run, config: ModelConfig, resolved: ResolvedModel) -> None:
    """openapi.json beside model.json in the bundle (served as is) and in OUTDIR."""
    title = resolved.model_name or f"MLflow {config['flavor']} model"
    version = resolved.version or handler.__version__
    write_openapi(config, (run.app, run.staged), title=title, version=version)


def _plan(
    run: _Run, config: ModelConfig, *, python: str | None, force_pandas: bool | str
) -> BundlePlan:
    return plan_bundle(
        config, python=python, arch=run.opts.arch, warn=run.warn, force_pandas=force_pandas
    )


def _install(run: _Run, config: ModelConfig, plan: BundlePlan) -> _Deps:
    """Install (prune, compile) ``plan`` into ``run.deps``, replacing what was there."""
    if any(run.deps.iterdir()):
        shutil.rmtree(run.deps)
        run.deps.mkdir()
    interpreter = bytecode.find_interpreter(plan.python_version)
    installed = prepare_dependencies(
        plan, run.deps, run.deps_opts, interpreter=interpreter, progress=run.progress
    )
    return _Deps(plan, installed, interpreter)


def _replan(run: _Run, config: ModelConfig, *, python: str, force_pandas: bool | str) -> _Deps:
    """Plan again with another Python or with pandas, and install that plan instead."""
    return _install(run, config, _plan(run, config, python=python, force_pandas=force_pandas))


def _plan_and_install(run: _Run, config: ModelConfig) -> _Deps:
    """Plan the bundle and install it.

    When the training Python's Lambda runtime has too old a glibc for the model's pins
    (python3.10/3.11 run on Amazon Linux 2, glibc 2.26; numpy >= 2.3 needs 2.28), keep the
    pins, which the model must load with, and move to the runtime install suggests, unless
    the user chose ``--python``.
    """
    opts = run.opts
    with_pandas = WITH_PANDAS_REASON if opts.with_pandas else False
    plan = _plan(run, config, python=opts.python, force_pandas=with_pandas)
    run.progress(
        f"{config['flavor']} model ({config['serialization_format']}) -> "
        f"{plan.runtime} {plan.arch}, {len(plan.requirements)} requirements"
    )
    for dropped in plan.dropped:
        run.progress(f"  left out {dropped.requirement}: {dropped.reason}")
    # An earlier build found these pins need a newer runtime: go there without asking pip.
    memo = None if opts.python is not None else remembered_runtime(plan, opts.cache_dir)
    if memo is not None:
        python, why = memo
        run.warn(f"{why}; using python{python} instead (--python to choose)")
        return _checked(run, _replan(run, config, python=python, force_pandas=with_pandas))
    try:
        deps = _install(run, config, plan)
    except RuntimeTooOldError as exc:
        if opts.python is not None:
            raise
        remember_runtime(plan, exc.suggested_python, str(exc), opts.cache_dir)
        run.warn(f"{exc}; using python{exc.suggested_python} instead (--python to choose)")
        deps = _replan(run, config, python=exc.suggested_python, force_pandas=with_pandas)
    return _checked(run, deps)


def _checked(run: _Run, deps: _Deps) -> _Deps:
    if deps.interpreter is None:
        run.warn(bytecode.missing_interpreter_message(deps.plan.python_version))
    return deps


def _stage(
    run: _Run, config: ModelConfig, model_dir: Path, deps: _Deps
) -> tuple[ModelConfig, Path]:
    """The runtime and the model (or its upload to S3) into ``run.app``, compiled; a skops
    model is preloaded as a pickle first (``packager.preload``): what the bundle then holds."""
    _copy_runtime(run.app)
    config, model_dir = preload.stage_preloaded(
        config, model_dir, deps.plan, deps.installed, interpreter=deps.interpreter,
        app=run.app, deps=run.deps, work=run.work, checked=run.opts.check_import,
        enabled=run.opts.preload, progress=run.progress, warn=run.warn,
    )  # fmt: skip
    if run.opts.model_location:
        _upload_model(model_dir, run.opts.model_location, config["files"], run.progress)
    else:
        shutil.copytree(model_dir, run.app / "model")
    if deps.interpreter is not None:
        # The runtime keeps its sources unless asked otherwise: tracebacks of our own code
        # then show their lines, for 0.2 MB.
        mode = run.opts.bytecode_mode or bytecode.DEFAULT_MODE
        bytecode.compile_tree(run.app, deps.interpreter, mode=mode)
    return config, model_dir


def _check(run: _Run, config: ModelConfig, model_dir: Path, deps: _Deps) -> ImportCheck:
    return import_check(
        [run.app, run.deps],
        deps.interpreter,
        deps.plan.python_version,
        deps.plan.arch,
        config.get("input_example"),
        model_dir=model_dir if run.opts.model_location else None,
    )


def _verify(
    run: _Run, config: ModelConfig, model_dir: Path, deps: _Deps
) -> tuple[_Deps, ImportCheck | None]:
    """Import the staged bundle in the target Python and score the input example.

    A model whose signature is all numeric is planned without pandas; if it still wants a
    DataFrame (a ColumnTransformer selecting columns by name), it is planned again with it.
    So is a model without a signature or example whose estimator turns out to have been
    fitted on named columns (``feature_names_in_``, read by the check). Without an input
    example the check scores a row of zeros of the fitted width; its failure is a warning.
    """
    if not run.opts.check_import:
        return deps, None
    run.progress("checking that the bundle imports and predicts on its own")
    try:
        result: ImportCheck | None = _check(run, config, model_dir, deps)
        failure = result.probe_error if result is not None else None
    except BundleCheckError as exc:
        if deps.plan.needs_pandas:
            raise
        result, failure = None, str(exc).splitlines()[0]
    names = result.facts.feature_names if result is not None else None
    unsigned = not (config.get("signature") or {}).get("inputs")
    if not deps.plan.needs_pandas and unsigned and names is not None:
        reason: bool | str = fitted_on_frame_reason(names)
        run.warn(f"{reason}; adding pandas")
    elif not deps.plan.needs_pandas and failure:
        reason = True
        run.warn(f"without pandas the model failed its check ({failure}); adding pandas")
    else:
        reason = False
    if reason:
        deps = _replan(run, config, python=deps.plan.python_version, force_pandas=reason)
        result = _check(run, config, model_dir, deps)
    assert result is not None
    if result.probe_error:
        run.warn(f"{result.probe_error} (the model has no input example; a row of zeros was sent)")
    if result.skipped:
        run.warn(result.skipped)
        if not deps.plan.needs_pandas:
            run.warn(
                f"pandas was left out ({deps.plan.pandas_reason}) and the model could not be "
                "tried without it here; if it selects columns by name or was fitted on a "
                "DataFrame, package with --with-pandas"
            )
    return deps, result


def _trim(
    run: _Run, config: ModelConfig, model_dir: Path, deps: _Deps, check: ImportCheck | None
) -> tuple[trim.TrimReport | None, ImportCheck | None]:
    """``--trim``: leave out what a traced run never imported, then verify again."""
    if not run.opts.trim:
        return None, check
    traced_model = model_dir if run.opts.model_location else run.app / "model"
    facts = check.facts if check is not None and check.skipped is None else None
    report = trim.trim_bundle(
        config, deps.plan, deps.installed, (run.app, run.deps, run.work), deps.interpreter,
        run.deps_opts, traced_model, run.progress, facts=facts,
    )  # fmt: skip
    if check is not None and check.skipped is None:  # the check runs on this host
        run.progress("checking that the trimmed bundle imports and predicts on its own")
        check = _check(run, config, model_dir, deps)
    return report, check


def _assemble(run: _Run, deps: _Deps) -> tuple[Path, str | None, sizes.SizeReport]:
    """bundle.zip (dependencies and app in one task root) or the image build context."""
    if run.opts.target == "zip":
        app_names = {entry.name for entry in run.app.iterdir()}  # the model: never cached
        for entry in sorted(run.app.iterdir()):
            entry.rename(run.deps / entry.name)
        artifact = run.staged / "bundle.zip"
        run.progress("writing bundle.zip")
        sha: str | None = assemble.build_zip(
            run.deps,
            artifact,
            cache=(run.opts.cache_dir or cache_root()) / "deflated",
            uncached=app_names,
        )
        size = sizes.size_report(run.deps, artifact)
        shutil.copyfile(run.deps / "model.json", run.staged / "model.json")
    else:
        artifact = run.staged / "image"
        run.progress("writing the image build context")
        assemble.build_image_context(
            run.deps, run.app, artifact, python=deps.plan.python_version, arch=deps.plan.arch
        )
        sha = None
        size = sizes.size_report(artifact)
        shutil.copyfile(run.app / "model.json", run.staged / "model.json")
    run.progress(size.format())
    for message in sizes.check_limits(size, target=run.opts.target):
        run.warn(message)
    return artifact, sha, size


def _render(
    run: _Run,
    config: ModelConfig,
    resolved: ResolvedModel,
    deps: _Deps,
    built: tuple[Path, str | None, sizes.SizeReport],
    check: ImportCheck | None,
    trimmed: trim.TrimReport | None,
) -> Manifest:
    """What ``package`` writes beside the artifact: manifest.json, template.yaml, events/."""
    opts, (_, sha, size) = run.opts, built
    peak_mb = check.peak_rss_mb if check is not None else None
    manifest = Manifest(
        model_uri=opts.model_uri,
        run_id=resolved.run_id or config.get("run_id"),
        registered_model=resolved.model_name,
        model_version=resolved.version,
        model_source=resolved.source,
        flavor=config["flavor"],
        serialization_format=config["serialization_format"],
        target=opts.target,
        python_version=deps.plan.python_version,
        arch=deps.plan.arch,
        distributions=deps.installed,
        model_files=config["files"],
        artifact_sha256=sha,
        sizes={
            "unzipped_bytes": size.unzipped,
            "zipped_bytes": size.zipped,
            "peak_rss_mb": peak_mb,
            "trimmed_bytes": trimmed.bytes_saved if trimmed else None,
        },
        model_location=opts.model_location,
    )
    manifest.write(run.staged / "manifest.json")
    # Lambda gives CPU in proportion to memory, and init (importing numpy, scipy and
    # sklearn) is CPU-bound, so 1024 MB is the floor for a quick cold start; a model whose
    # measured peak needs more gets more. A floor also keeps template.yaml the same from
    # build to build, since a measured peak varies by a few MB.
    memory = max(MIN_MEMORY_MB, suggest_memory_mb(peak_mb, size.unzipped / sizes.MB))
    if peak_mb is not None:
        run.progress(f"peak memory at import + predict: {peak_mb:.0f} MB; MemorySize {memory}")
    template = _template_options(opts, deps, memory)
    write_template(run.staged, template)
    slow_init = init_warning(check.init_s if check is not None else None, template.memory_mb)
    if slow_init:
        run.warn(slow_init)
    for line in describe_endpoint(template):  # public or not, throttled or not: said aloud
        run.progress(line)
    facts = check.facts if check is not None else None
    write_events(run.staged, config, facts)
    return manifest


def _template_options(opts: BuildOptions, deps: _Deps, memory: int) -> TemplateOptions:
    """What the build settled on, with the user's deploy surface (``opts.surface``) over it."""
    built = TemplateOptions(
        function_name=opts.name,
        runtime=deps.plan.runtime,
        arch="arm64" if deps.plan.arch == "arm64" else "x86_64",
        package_type=opts.target,
        docker_context="image",
        memory_mb=memory,
        model_s3_uri=opts.model_location,
    )
    return opts.surface.template_options(built, opts.model_uri)


# -- the pipeline ---------------------------------------------------------------------------
def build(opts: BuildOptions, *, progress: Progress = print, warn: Progress = print) -> BuildResult:
    """Build the bundle described by ``opts`` into ``opts.outdir``; see the module docstring.

    ``progress`` gets one line per step, prefixed with the seconds since the start.
    """
    started = time.monotonic()

    def timed(message: str) -> None:
        progress(f"[{time.monotonic() - started:5.1f}s] {message}")

    outdir = Path(opts.outdir).resolve()
    prepare_outdir(outdir)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.build-", dir=outdir.parent))
    try:
        run = _Run(opts, work, _deps_options(opts), timed, warn)
        for d in (run.staged, run.deps, run.app):
            d.mkdir()
        manifest = _build(run)
        publish(run.staged, outdir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timed(f"built {outdir}")
    artifact = "bundle.zip" if opts.target == "zip" else "image"
    return BuildResult(
        outdir=outdir,
        manifest=manifest.to_dict(),
        template_path=outdir / TEMPLATE_FILE,
        artifact_path=outdir / artifact,
        warnings=run.warnings,
    )


def _build(run: _Run) -> Manifest:
    resolved, config = _resolve(run)
    model_dir, config = hygiene.check_model(
        resolved.local_dir, config, run.app / "model.json", run.work / "model-clean",
        allowed=run.opts.allow_secrets, progress=run.progress,
    )  # fmt: skip
    _document(run, config, resolved)
    deps = _plan_and_install(run, config)
    config, model_dir = _stage(run, config, model_dir, deps)
    deps, check = _verify(run, config, model_dir, deps)
    note = pandas_note(deps.plan)
    if note:
        run.progress(note)
    trimmed, check = _trim(run, config, model_dir, deps, check)
    built = _assemble(run, deps)
    return _render(run, config, resolved, deps, built, check, trimmed)
