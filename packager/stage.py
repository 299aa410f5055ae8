"""Staging and assembling a bundle: the runtime and the model beside the installed dependencies,
then ``bundle.zip`` (one task root) or the image build context.

The runtime's sources are copied from this installation, never found by a name a user's
files could shadow; the model is copied, or uploaded when ``--model-location`` keeps it in S3.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlflow_lambda import handler
from mlflow_lambda.handler import BUNDLE_PACKAGE
from mlflow_lambda.handler.config import ModelConfig
from mlflow_lambda.packager import assemble, bytecode, preload, sizes
from mlflow_lambda.packager.buildrun import BuildRun, Deps, Progress
from mlflow_lambda.packager.cachedirs import cache_root


def copy_runtime(app: Path) -> None:
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


def upload_model(model_dir: Path, uri: str, files: dict[str, str], progress: Progress) -> None:
    import boto3  # only a build with --model-location pays for importing boto3

    from mlflow_lambda.packager.modelstore import upload_model as upload

    progress(f"uploading the model to {uri}")
    upload(model_dir, uri, files, boto3.client("s3"))


def stage(
    run: BuildRun, config: ModelConfig, model_dir: Path, deps: Deps
) -> tuple[ModelConfig, Path]:
    """The runtime and the model (or its upload to S3) into ``run.app``, compiled; a skops
    model is preloaded as a pickle first (``packager.preload``): what the bundle then holds."""
    copy_runtime(run.app)
    config, model_dir = preload.stage_preloaded(
        config, model_dir, deps.plan, deps.installed, interpreter=deps.interpreter,
        app=run.app, deps=run.deps, work=run.work, checked=run.opts.check_import,
        enabled=run.opts.preload, cache=(run.opts.cache_dir or cache_root()) / "preloaded",
        progress=run.progress, warn=run.warn,
    )  # fmt: skip
    if run.opts.model_location:
        upload_model(model_dir, run.opts.model_location, config["files"], run.progress)
    else:
        shutil.copytree(model_dir, run.app / "model")
    if deps.interpreter is not None:
        # The runtime keeps its sources unless asked otherwise: tracebacks of our own code
        # then show their lines, for 0.2 MB.
        mode = run.opts.bytecode_mode or bytecode.DEFAULT_MODE
        bytecode.compile_tree(run.app, deps.interpreter, mode=mode)
    return config, model_dir


Built = tuple[Path, str | None, sizes.SizeReport]  # the artifact, its sha256 (a zip), its sizes


def assemble_artifact(run: BuildRun, deps: Deps) -> Built:
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
