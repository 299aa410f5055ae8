"""What ``package`` writes beside the artifact: ``manifest.json``, ``template.yaml``, ``events/``.

The template's ``MemorySize`` comes from the build's own measurement (peak RSS of the import
check) with a floor; the user's deploy surface (endpoint, auth, capacity, rollout) is laid over
what the build settled on.
"""

from __future__ import annotations

from mlflow_lambda.handler.config import ModelConfig
from mlflow_lambda.packager import sizes, trim
from mlflow_lambda.packager.buildrun import BuildOptions, BuildRun, Deps
from mlflow_lambda.packager.endpoint import describe as describe_endpoint
from mlflow_lambda.packager.events import write_events
from mlflow_lambda.packager.importcheck import ImportCheck, init_warning
from mlflow_lambda.packager.manifest import Manifest
from mlflow_lambda.packager.resolve import ResolvedModel
from mlflow_lambda.packager.stage import Built
from mlflow_lambda.packager.template import TemplateOptions, suggest_memory_mb, write_template

# Lambda gives CPU in proportion to memory, and init (importing numpy, scipy and sklearn) is
# CPU-bound, so 1024 MB is the floor for a quick cold start; a model whose measured peak needs
# more gets more. A floor also keeps template.yaml the same from build to build, since a
# measured peak varies by a few MB.
MIN_MEMORY_MB = 1024


def render(
    run: BuildRun,
    config: ModelConfig,
    resolved: ResolvedModel,
    deps: Deps,
    built: Built,
    check: ImportCheck | None,
    trimmed: trim.TrimReport | None,
) -> Manifest:
    """Write manifest.json, template.yaml and events/ into ``run.staged``."""
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
    memory = max(MIN_MEMORY_MB, suggest_memory_mb(peak_mb, size.unzipped / sizes.MB))
    if peak_mb is not None:
        run.progress(f"peak memory at import + predict: {peak_mb:.0f} MB; MemorySize {memory}")
    template = template_options(opts, deps, memory)
    write_template(run.staged, template)
    slow_init = init_warning(check.init_s if check is not None else None, template.memory_mb)
    if slow_init:
        run.warn(slow_init)
    for line in describe_endpoint(template):  # public or not, throttled or not: said aloud
        run.progress(line)
    facts = check.facts if check is not None else None
    write_events(run.staged, config, facts)
    return manifest


def template_options(opts: BuildOptions, deps: Deps, memory: int) -> TemplateOptions:
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
