"""The ``mlflow-lambda`` command line. It parses options and calls the library; nothing else.

Every error the tool raises on purpose (``MlflowLambdaError``, the root of the tree drawn in
``packager/errors.py``) becomes one line on stderr and exit code 1 here, once.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from mlflow_lambda.infra.cli_surface import surface_from_options, surface_options
from mlflow_lambda.packager.errors import MlflowLambdaError

ARCHES = click.Choice(["x86_64", "arm64"])
EVENT_TYPES = click.Choice(["v1", "v2", "url", "alb", "direct"])


def _info(message: str) -> None:
    click.echo(message, err=True)


def _warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["--help"], "max_content_width": 100})
@click.version_option(package_name="mlflow-lambda", prog_name="mlflow-lambda")  # metadata
def cli() -> None:
    """Serve an MLflow model from AWS Lambda, speaking MLflow's scoring protocol.

    \b
      mlflow-lambda package -m models:/MyRandomForest/latest -o build/
      mlflow-lambda invoke build/ --data payload.json
      mlflow-lambda serve build/ -p 5000
      cd build && sam deploy --guided      # or: mlflow-lambda deploy build/ --stack-name NAME
    """


@cli.command()
@click.option(
    "-m",
    "--model-uri",
    required=True,
    help="runs:/<run_id>/<path>, "
    "models:/<name>/<version|latest|stage>, models:/<name>@<alias>, s3://..., "
    "mlflow-artifacts:/..., file://... or a local path.",
)
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory to write bundle.zip (or image/), manifest.json, template.yaml "
    "and events/ into. A previous build there is replaced; other files (samconfig.toml, "
    ".aws-sam/) are kept.",
)
@click.option(
    "--target",
    type=click.Choice(["zip", "image"]),
    default="zip",
    show_default=True,
    help="A zip for Lambda (250 MB unzipped limit) or a container build context.",
)
@click.option(
    "--arch",
    type=ARCHES,
    default="x86_64",
    show_default=True,
    help="Lambda architecture; wheels are installed for it whatever this host is.",
)
@click.option(
    "--python",
    "python",
    metavar="X.Y",
    help="Lambda Python version [default: the model's training Python, "
    "or the nearest one Lambda supports].",
)
@click.option(
    "--tracking-uri",
    metavar="URI",
    help="MLflow tracking server or store [default: $MLFLOW_TRACKING_URI].",
)
@click.option("--name", help="Lambda function name (FunctionName in template.yaml).")
@click.option(
    "--model-location",
    metavar="s3://BUCKET/PREFIX",
    help="Upload the model there and fetch it to /tmp at cold start, instead of "
    "bundling it (for models too large for a zip).",
)
@click.option(
    "--strip",
    is_flag=True,
    help="Strip symbols from every shared object (never in *.libs/). Off by default: only "
    "the handler's own extension (pysimdjson's) is stripped.",
)
@click.option(
    "--trim",
    is_flag=True,
    help="Also leave out every dependency module that a traced run (loading the model, "
    "answering its input example in each format) never imported: 10-20 MB for the README "
    "example. An input that needs one of them then fails with a 500 naming it. Off by default.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    help="Cache reused by later builds: wheels, prepared dependencies, compressed zip entries, "
    "the build's pickle of a skops model, and a sqlite registry's answers while its file is "
    "unchanged [default: ~/.cache/mlflow-lambda].",
)
@click.option(
    "--bytecode",
    type=click.Choice(["pyc-only", "unchecked-hash", "checked-hash"]),
    default=None,
    help="How dependencies' bytecode ships [default: pyc-only for a zip (sources left out, "
    "~40 MB smaller), unchecked-hash for an image (sources kept)].",
)
@click.option(
    "--with-pandas",
    is_flag=True,
    help="Bundle pandas even when the model's signature is all numeric (it is left out then, "
    "28 MB and ~0.15 s of cold start, unless the model fails without it at the build check).",
)
@surface_options
@click.option(
    "--allow-secret",
    "allow_secrets",
    multiple=True,
    metavar="PATH",
    help="Ship this model file although it holds credentials (a path relative to the model "
    "directory; repeat for more). Without it, credentials in the model stop the build.",
)
def package(
    model_uri: str,
    outdir: Path,
    target: str,
    arch: str,
    python: str | None,
    tracking_uri: str | None,
    name: str | None,
    model_location: str | None,
    strip: bool,
    trim: bool,
    cache_dir: Path | None,
    bytecode: str | None,
    with_pandas: bool,
    allow_secrets: tuple[str, ...],
    **surface_values: Any,
) -> None:
    """Package an MLflow model into a Lambda bundle, a SAM template and sample events.

    The endpoint options (--endpoint ... --rollout) choose what the template deploys; the
    README's "Choose your endpoint" says what each means on AWS.
    """
    from mlflow_lambda.packager.build import BuildOptions, build

    surface = surface_from_options(surface_values)
    surface.check(model_uri, target=target, python=python)  # before a minutes-long build
    result = build(
        BuildOptions(
            model_uri=model_uri,
            outdir=outdir,
            target="image" if target == "image" else "zip",
            arch=arch,
            python=python,
            tracking_uri=tracking_uri,
            name=name,
            model_location=model_location,
            strip=strip,
            trim=trim,
            cache_dir=cache_dir,
            bytecode_mode=bytecode,
            with_pandas=with_pandas,
            surface=surface,
            allow_secrets=allow_secrets,
        ),
        progress=_info,
        warn=_warn,
    )
    click.echo(f"{result.artifact_path}")


def _is_error_answer(payload: bytes) -> bool:
    """An HTTP answer with status >= 400, or a direct invoke's error body."""
    try:
        answer = json.loads(payload)
    except ValueError:
        return False
    if not isinstance(answer, dict):
        return False
    if "statusCode" in answer:
        return int(answer["statusCode"]) >= 400
    return "error_code" in answer


@cli.command()
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--event",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Lambda event JSON file, e.g. OUTDIR/events/invocations-v2.json.",
)
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A scoring payload (.json or .csv), wrapped into an event of --event-type.",
)
@click.option(
    "--event-type",
    type=EVENT_TYPES,
    default="v2",
    show_default=True,
    help="Event shape for --data: API Gateway REST (v1), HTTP API (v2), Function "
    "URL, ALB, or a direct invoke.",
)
@click.option("--timeout", type=int, default=None, help="Seconds [default: from template.yaml].")
@click.option("--memory", type=int, default=None, help="MB [default: from template.yaml].")
@click.option("--raw", is_flag=True, help="Print the Lambda response payload as is.")
def invoke(
    outdir: Path,
    event: Path | None,
    data: Path | None,
    event_type: str,
    timeout: int | None,
    memory: int | None,
    raw: bool,
) -> None:
    """Run a built bundle once through the real Lambda runtime, without Docker.

    The bundle runs under the AWS Lambda Runtime Interface Emulator and awslambdaric in a
    fresh Python that sees only the bundle and the standard library. Prints the response
    on stdout and a REPORT line (init, duration, max memory) on stderr. Exits 1 when the
    function fails or answers with an error (HTTP status >= 400, or an error body).
    """
    from mlflow_lambda.infra.invoke import format_report, format_response, invoke_bundle, load_event
    from mlflow_lambda.infra.results import InvocationError

    payload = load_event(outdir, event_file=event, data_file=data, event_type=event_type)
    try:
        result = invoke_bundle(
            outdir, event=payload, timeout_s=timeout, memory_mb=memory, log_sink=_info
        )
    except InvocationError as exc:
        _info(format_report(exc.result))
        raise
    click.echo(format_response(result, raw=raw))
    _info(format_report(result))
    if _is_error_answer(result.payload):
        sys.exit(1)  # the function ran, but answered with an error: scripts should notice


@cli.command()
@click.argument("outdir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("-m", "--model-uri", help="Package this model first (into a cache directory).")
@click.option("-p", "--port", type=int, default=5000, show_default=True)
@click.option("-h", "--host", default="127.0.0.1", show_default=True)
@click.option("--arch", type=ARCHES, default=None, help="With -m: see `package --arch`.")
@click.option("--tracking-uri", metavar="URI", help="With -m: see `package --tracking-uri`.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Warm Lambda environments answering requests concurrently, one request at a time "
    "each, as Lambda scales [default: one per CPU].",
)
def serve(
    outdir: Path | None,
    model_uri: str | None,
    port: int,
    host: str,
    arch: str | None,
    tracking_uri: str | None,
    workers: int | None,
) -> None:
    """Serve a bundle over HTTP like `mlflow models serve`, through the Lambda runtime.

    Each request becomes an API Gateway HTTP API event run by the same emulator as
    `invoke`, so what answers here is what answers on Lambda (6 MB payload limit included).
    """
    from mlflow_lambda.infra.serve import bind, serve_bundle

    if (outdir is None) == (model_uri is None):
        _fail("give either OUTDIR (a built bundle) or -m MODEL_URI")
    server = bind(host, port)  # a busy port fails now, not after a build and a cold start
    if model_uri:
        from mlflow_lambda.packager.build import BuildOptions, build, serve_cache_dir

        outdir = serve_cache_dir(model_uri, arch or "x86_64")
        build(
            BuildOptions(
                model_uri=model_uri,
                outdir=outdir,
                arch=arch or "x86_64",
                tracking_uri=tracking_uri,
            ),
            progress=_info,
            warn=_warn,
        )
    assert outdir is not None
    serve_bundle(outdir, host=host, port=port, workers=workers, server=server)


@cli.command()
@click.argument("outdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--stack-name", required=True)
@click.option(
    "--s3-bucket",
    help="Bucket for the artifact [default: one named after the "
    "account and region, created if missing].",
)
@click.option("--region", help="AWS region [default: from the AWS configuration].")
@click.option("--endpoint-url", help="AWS endpoint (e.g. a local emulator).")
@click.option("--delete", is_flag=True, help="Delete the stack instead.")
def deploy(
    outdir: Path,
    stack_name: str,
    s3_bucket: str | None,
    region: str | None,
    endpoint_url: str | None,
    delete: bool,
) -> None:
    """Deploy a built bundle with CloudFormation (SAM transform), without the SAM CLI."""
    from mlflow_lambda.infra.deploy import deploy as run_deploy
    from mlflow_lambda.infra.deploy import destroy

    if delete:
        destroy(stack_name, region=region, endpoint_url=endpoint_url, progress=_info)
        return
    result = run_deploy(
        outdir,
        stack_name=stack_name,
        s3_bucket=s3_bucket,
        region=region,
        endpoint_url=endpoint_url,
        progress=_info,
    )
    click.echo(result.endpoint_url or json.dumps(result.outputs))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors and exit status 1 for the tool's own errors."""
    try:
        cli.main(args=argv, prog_name="mlflow-lambda", standalone_mode=False)
    except click.exceptions.Abort:
        _info("Aborted.")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MlflowLambdaError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        _info("Interrupted.")
        sys.exit(130)


def console_main() -> None:
    """The ``mlflow-lambda`` console script: :func:`main`, then the process ends.

    Python's shutdown collects garbage across everything a command imported (MLflow,
    SQLAlchemy, pandas): about 2-3 s after a ``package`` from a registry, measured. Nothing
    here needs that collection (the steps close their files and remove their work
    directories themselves), so the objects that exist are frozen out of the collector's
    reach; atexit handlers and weakref finalizers still run. Tests call :func:`main`, which
    leaves their process's collector alone.
    """
    try:
        main()
    finally:
        gc.freeze()
