"""The package pipeline: model URI -> bundle.zip or image context, manifest, template, events.

    resolve -> inspect -> hygiene -> document (openapi.json) -> plan -> install (+ prune,
        bytecode) -> stage -> verify -> [--trim: trace, trim, verify again]
        -> assemble (+ size check) -> render -> publish

``_build`` reads as those steps; each is a function of the module that owns it (staging and
assembling in ``packager.stage``, what is written beside the artifact in ``packager.render``),
called through the small step functions below, which only carry their inputs and outputs.
What the steps share (the options, the work directories, the warnings) is ``packager.buildrun``.

Everything is built in a staging directory next to ``outdir`` and moved into place
only when every step passed, so a failed build never leaves a bundle that looks good.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from mlflow_lambda import handler
from mlflow_lambda.handler.config import ModelConfig
from mlflow_lambda.packager import bytecode, hygiene, trim
from mlflow_lambda.packager.buildrun import (
    BuildOptions,
    BuildResult,
    BuildRun,
    Deps,
    Progress,
    deps_options,
)
from mlflow_lambda.packager.cachedirs import cache_root, remember_runtime, remembered_runtime
from mlflow_lambda.packager.deps import prepare_dependencies
from mlflow_lambda.packager.errors import BundleCheckError, RuntimeTooOldError
from mlflow_lambda.packager.importcheck import ImportCheck, import_check
from mlflow_lambda.packager.inspection import write_model_config
from mlflow_lambda.packager.manifest import Manifest
from mlflow_lambda.packager.openapi import write_openapi
from mlflow_lambda.packager.outdir import prepare_outdir, publish
from mlflow_lambda.packager.pandas_choice import (
    WITH_PANDAS_REASON,
    fitted_on_frame_reason,
    pandas_note,
)
from mlflow_lambda.packager.plan import BundlePlan, plan_bundle
from mlflow_lambda.packager.render import render
from mlflow_lambda.packager.resolve import ResolvedModel, resolve_model
from mlflow_lambda.packager.stage import assemble_artifact, stage
from mlflow_lambda.packager.template import TEMPLATE_FILE

# what callers of build() name; they live in buildrun with what the steps share
__all__ = ["BuildOptions", "BuildResult", "Progress", "build", "serve_cache_dir"]


def serve_cache_dir(model_uri: str, arch: str) -> Path:
    """Where ``serve -m URI`` builds: one directory per URI and architecture, rebuilt each time."""
    key = hashlib.sha256(f"{model_uri}\0{arch}".encode()).hexdigest()[:16]
    return cache_root() / "serve" / key


# -- the steps ------------------------------------------------------------------------------
def _resolve(run: BuildRun) -> tuple[ResolvedModel, ModelConfig]:
    run.progress(f"resolving {run.opts.model_uri}")
    resolved = resolve_model(
        run.opts.model_uri,
        run.work / "download",
        tracking_uri=run.opts.tracking_uri,
        memo=(run.opts.cache_dir or cache_root()) / "resolved",
    )
    if resolved.version is not None:
        earlier = " (the registry's answer to an earlier build: its store is unchanged)"
        run.progress(
            f"{resolved.model_name} version {resolved.version}"
            + (earlier if resolved.remembered else "")
        )
    return resolved, write_model_config(resolved.local_dir, run.app / "model.json")


def _document(run: BuildRun, config: ModelConfig, resolved: ResolvedModel) -> None:
    """openapi.json beside model.json in the bundle (served as is) and in OUTDIR."""
    title = resolved.model_name or f"MLflow {config['flavor']} model"
    version = resolved.version or handler.__version__
    write_openapi(config, (run.app, run.staged), title=title, version=version)


def _plan(
    run: BuildRun, config: ModelConfig, *, python: str | None, force_pandas: bool | str
) -> BundlePlan:
    return plan_bundle(
        config, python=python, arch=run.opts.arch, warn=run.warn, force_pandas=force_pandas
    )


def _install(run: BuildRun, config: ModelConfig, plan: BundlePlan) -> Deps:
    """Install (prune, compile) ``plan`` into ``run.deps``, replacing what was there."""
    if any(run.deps.iterdir()):
        shutil.rmtree(run.deps)
        run.deps.mkdir()
    interpreter = bytecode.find_interpreter(plan.python_version)
    installed = prepare_dependencies(
        plan, run.deps, run.deps_opts, interpreter=interpreter, progress=run.progress
    )
    return Deps(plan, installed, interpreter)


def _replan(run: BuildRun, config: ModelConfig, *, python: str, force_pandas: bool | str) -> Deps:
    """Plan again with another Python or with pandas, and install that plan instead."""
    return _install(run, config, _plan(run, config, python=python, force_pandas=force_pandas))


def _plan_and_install(run: BuildRun, config: ModelConfig) -> Deps:
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


def _checked(run: BuildRun, deps: Deps) -> Deps:
    if deps.interpreter is None:
        run.warn(bytecode.missing_interpreter_message(deps.plan.python_version))
    return deps


def _check(run: BuildRun, config: ModelConfig, model_dir: Path, deps: Deps) -> ImportCheck:
    return import_check(
        [run.app, run.deps],
        deps.interpreter,
        deps.plan.python_version,
        deps.plan.arch,
        config.get("input_example"),
        model_dir=model_dir if run.opts.model_location else None,
    )


def _verify(
    run: BuildRun, config: ModelConfig, model_dir: Path, deps: Deps
) -> tuple[Deps, ImportCheck | None]:
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
    run: BuildRun, config: ModelConfig, model_dir: Path, deps: Deps, check: ImportCheck | None
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
        run = BuildRun(opts, work, deps_options(opts), timed, warn)
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


def _build(run: BuildRun) -> Manifest:
    resolved, config = _resolve(run)
    model_dir, config = hygiene.check_model(
        resolved.local_dir, config, run.app / "model.json", run.work / "model-clean",
        allowed=run.opts.allow_secrets, progress=run.progress,
    )  # fmt: skip
    _document(run, config, resolved)
    deps = _plan_and_install(run, config)
    config, model_dir = stage(run, config, model_dir, deps)
    deps, check = _verify(run, config, model_dir, deps)
    note = pandas_note(deps.plan)
    if note:
        run.progress(note)
    trimmed, check = _trim(run, config, model_dir, deps, check)
    built = assemble_artifact(run, deps)
    return render(run, config, resolved, deps, built, check, trimmed)
