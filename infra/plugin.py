"""MLflow deployments plugin for target ``lambda`` (``mlflow deployments ... -t lambda``).

Registered through the ``mlflow.deployments`` entry point (``lambda = "infra.plugin"``).
A deployment is a CloudFormation stack named after the deployment, built by
``packager.build`` and deployed by ``infra.deploy``; the stack's tags remember the model URI,
so ``update`` without ``-m`` rebuilds the same model and ``list`` finds our stacks only.

Target URI: ``lambda`` (region from the AWS configuration) or ``lambda:/<region>``. The AWS
endpoint comes from ``AWS_ENDPOINT_URL`` as for any boto3 program. MLflow's contract
(``mlflow.deployments.base``): one ``BaseDeploymentClient`` subclass, ``run_local`` and
``target_help`` at module level; errors are ``MlflowException``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from click import ClickException
from mlflow.deployments import BaseDeploymentClient, PredictionsResponse
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)

from mlflow_lambda.handler.flavors import FLAVORS
from mlflow_lambda.infra.deploy import MODEL_URI_TAG, DeployResult
from mlflow_lambda.infra.plugin_aws import AwsDeployer, scoring_body, stderr_progress
from mlflow_lambda.packager.errors import MlflowLambdaError
from mlflow_lambda.packager.surface import SURFACE_KEYS, Surface, parse_surface

# Statuses of a stack that holds nothing: deleted, or created by a change set never executed.
_GONE = ("DELETE_COMPLETE", "REVIEW_IN_PROGRESS")
# `mlflow deployments create --flavor`: none, the generic pyfunc, or a flavor the runtime loads
ACCEPTED_FLAVORS = (None, "python_function", *FLAVORS)
# -C key=value options of create/update (values are strings, as MLflow's CLI passes them).
CONFIG_KEYS: dict[str, str] = {
    "s3_bucket": "bucket for the bundle [default: mlflow-lambda-<account>-<region>]",
    "arch": "x86_64 (default) or arm64",
    "python": "Lambda Python version, e.g. 3.12 [default: the model's]",
    "model_location": "s3://bucket/prefix: keep the model on S3, out of the bundle",
    "tracking_uri": "MLflow tracking URI to resolve models:/ and runs:/ [default: env]",
    "outdir": "keep the build here instead of a temporary directory",
    **SURFACE_KEYS,  # the deploy surface, as `mlflow-lambda package --endpoint ...` has it
    "allow_secret": "comma-separated model files that may ship although they hold credentials",
}


class PluginError(MlflowException, ClickException):  # type: ignore[misc]
    """An ``MlflowException`` that MLflow's CLI prints as one line.

    ``mlflow deployments`` lets a plugin's exceptions escape as a full traceback; click, which
    runs that CLI, prints a ``ClickException`` as ``Error: <message>`` and exits 1. Python
    callers still catch ``mlflow.exceptions.MlflowException`` (with its error code).
    """


class Deployer(Protocol):
    """What the client needs from AWS; ``infra.plugin_aws.AwsDeployer`` is the real one."""

    def deploy(
        self, outdir: Path, stack_name: str, s3_bucket: str | None, tags: Mapping[str, str]
    ) -> DeployResult: ...

    def destroy(self, stack_name: str) -> str: ...

    def find(self, stack_name: str) -> dict[str, Any] | None: ...

    def stacks(self) -> list[dict[str, Any]]: ...

    def invoke(self, function_name: str, body: Mapping[str, Any]) -> dict[str, Any]: ...


Builder = Callable[..., Any]  # packager.build.build(BuildOptions, progress=...)


def _default_build(opts: Any) -> Any:
    from mlflow_lambda.packager.build import build

    return build(opts, progress=stderr_progress, warn=stderr_progress)


def target_help() -> str:
    """Help for ``mlflow deployments help -t lambda``."""
    options = "\n".join(f"    {key}: {text}" for key, text in CONFIG_KEYS.items())
    return (
        "Deploy MLflow models to AWS Lambda behind an API Gateway HTTP API (mlflow-lambda),\n"
        "or a REST API, a Function URL or no endpoint (-C endpoint=...).\n\n"
        "Target URI: 'lambda' (region from the AWS configuration) or 'lambda:/<region>'.\n"
        "Set AWS_ENDPOINT_URL to use an emulator. Each deployment is a CloudFormation stack\n"
        "named after the deployment.\n\n"
        "Config options for create and update (-C key=value):\n"
        f"{options}\n\n"
        "Example:\n"
        "    mlflow deployments create -t lambda --name churn -m models:/churn/3\n"
        "    mlflow deployments predict -t lambda --name churn -I input.json\n"
        "    mlflow deployments create -t lambda --name churn -m models:/churn@champion \\\n"
        "        -C auth=iam -C rollout=canary-10-5m\n"
        "Moving the MLflow alias (champion) and running `mlflow deployments update -t lambda\n"
        "--name churn` rolls the newly aliased version out that way, rolled back on alarm.\n"
        "update builds with the -C options it is given, not those of create: repeat them.\n"
    )


def _build_options(model_uri: str, outdir: Path, config: Mapping[str, str]) -> Any:
    from mlflow_lambda.packager.build import BuildOptions

    return BuildOptions(
        model_uri=model_uri,
        outdir=outdir,
        target="zip",
        arch=config.get("arch", "x86_64"),
        python=config.get("python"),
        tracking_uri=config.get("tracking_uri"),
        model_location=config.get("model_location"),
        surface=_surface(config),
        allow_secrets=tuple(
            p.strip() for p in config.get("allow_secret", "").split(",") if p.strip()
        ),
    )


def _surface(config: Mapping[str, str]) -> Surface:
    try:
        return parse_surface(config)
    except MlflowLambdaError as exc:
        raise PluginError(str(exc), INVALID_PARAMETER_VALUE) from exc


def run_local(
    target: str,
    name: str,
    model_uri: str,
    flavor: str | None = None,
    config: Mapping[str, str] | None = None,
) -> None:
    """Build the model like ``create`` would and serve it on 127.0.0.1 (``-C port=5000``)."""
    from mlflow_lambda.infra.serve import bind, serve_bundle
    from mlflow_lambda.packager.build import serve_cache_dir

    _check_flavor(flavor)
    config = dict(config or {})
    port = int(config.pop("port", "5000"))
    cfg = _check_config(config)
    outdir = Path(cfg.get("outdir") or serve_cache_dir(model_uri, cfg.get("arch", "x86_64")))
    try:
        server = bind("127.0.0.1", port)  # a busy port fails before the build
        _default_build(_build_options(model_uri, outdir, cfg))
        serve_bundle(outdir, host="127.0.0.1", port=port, server=server)
    except MlflowLambdaError as exc:
        raise PluginError(str(exc), INVALID_PARAMETER_VALUE) from None


def _check_flavor(flavor: str | None) -> None:
    if flavor not in ACCEPTED_FLAVORS:
        raise PluginError(
            f"flavor {flavor!r} is not supported by the lambda target; leave it out or use "
            "python_function",
            INVALID_PARAMETER_VALUE,
        )


def _check_config(config: Mapping[str, str] | None) -> dict[str, str]:
    config = dict(config or {})
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise PluginError(
            f"unknown config option(s) {', '.join(map(repr, unknown))} for the lambda target; "
            f"known: {', '.join(CONFIG_KEYS)} (see `mlflow deployments help -t lambda`)",
            INVALID_PARAMETER_VALUE,
        )
    return config


def _check_surface(model_uri: str, config: Mapping[str, str]) -> None:
    """Refuse an impossible deploy surface before building (a build takes minutes)."""
    try:
        _surface(config).check(model_uri, python=config.get("python"))
    except MlflowLambdaError as exc:
        raise PluginError(str(exc), INVALID_PARAMETER_VALUE) from exc


def _region(target_uri: str) -> str | None:
    """``lambda`` -> None, ``lambda:/eu-west-1`` -> ``eu-west-1``."""
    _, _, rest = target_uri.partition(":")
    return rest.strip("/") or None


def _tags(stack: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in stack.get("Tags", [])}


def _outputs(stack: Mapping[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _describe(stack: Mapping[str, Any]) -> dict[str, Any]:
    from mlflow_lambda.infra.stack import endpoint_from_outputs

    outputs = _outputs(stack)
    return {
        "name": stack["StackName"],
        "flavor": "python_function",
        "model_uri": _tags(stack).get(MODEL_URI_TAG),
        "status": stack["StackStatus"],
        "stack_id": stack.get("StackId"),
        "endpoint_url": endpoint_from_outputs(outputs),
        "outputs": outputs,
    }


def _ours(stack: Mapping[str, Any] | None) -> bool:
    """A live stack that mlflow-lambda deployed (it carries the model URI tag)."""
    return (
        stack is not None
        and stack.get("StackStatus") not in _GONE
        and MODEL_URI_TAG in _tags(stack)
    )


class LambdaDeploymentClient(BaseDeploymentClient):
    """Deployments of MLflow models as Lambda functions, one CloudFormation stack each.

    ``deployer`` and ``build`` are seams for tests; MLflow constructs the client with the
    target URI only.
    """

    def __init__(
        self, target_uri: str, deployer: Deployer | None = None, build: Builder | None = None
    ) -> None:
        super().__init__(target_uri)  # type: ignore[no-untyped-call]
        self.deployer: Deployer = deployer or AwsDeployer(_region(target_uri))
        self._build = build

    def _find(self, name: str) -> dict[str, Any] | None:
        try:
            return self.deployer.find(name)
        except MlflowLambdaError as exc:
            raise PluginError(str(exc)) from exc

    def _existing(self, name: str) -> dict[str, Any]:
        stack = self._find(name)
        if stack is None or not _ours(stack):
            raise PluginError(
                f"no lambda deployment named {name!r} (no mlflow-lambda stack of that name); "
                "see `mlflow deployments list -t lambda`",
                RESOURCE_DOES_NOT_EXIST,
            )
        return stack

    def _ship(self, name: str, model_uri: str, config: dict[str, str]) -> dict[str, Any]:
        build = self._build or _default_build
        with tempfile.TemporaryDirectory(prefix="mlflow-lambda-") as tmp:
            outdir = Path(config.get("outdir") or Path(tmp) / "build")
            try:
                build(_build_options(model_uri, outdir, config))
                # No tags of our own beyond deploy's model URI tag: a later
                # `mlflow-lambda deploy` of the same build then reports no change.
                result = self.deployer.deploy(outdir, name, config.get("s3_bucket"), {})
            except MlflowLambdaError as exc:
                raise PluginError(f"deployment {name!r} failed: {exc}") from exc
        return {
            "name": name,
            "flavor": "python_function",
            "model_uri": model_uri,
            "status": result.status,
            "stack_id": result.stack_id,
            "endpoint_url": result.endpoint_url,
            "outputs": result.outputs,
        }

    def create_deployment(
        self,
        name: str,
        model_uri: str,
        flavor: str | None = None,
        config: Mapping[str, str] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """Package ``model_uri`` and deploy it as stack ``name``; block until it serves."""
        _check_flavor(flavor)
        cfg = _check_config(config)
        _check_surface(model_uri, cfg)
        stack = self._find(name)
        if _ours(stack):
            raise PluginError(
                f"lambda deployment {name!r} already exists; use `mlflow deployments update`",
                RESOURCE_ALREADY_EXISTS,
            )
        if stack is not None and stack.get("StackStatus") not in _GONE:
            raise PluginError(
                f"a stack named {name!r} exists and was not deployed by mlflow-lambda; "
                "choose another deployment name",
                RESOURCE_ALREADY_EXISTS,
            )
        return self._ship(name, model_uri, cfg)

    def update_deployment(
        self,
        name: str,
        model_uri: str | None = None,
        flavor: str | None = None,
        config: Mapping[str, str] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """Rebuild and redeploy ``name`` (with its current model when ``model_uri`` is None)."""
        _check_flavor(flavor)
        cfg = _check_config(config)
        stack = self._existing(name)
        model_uri = model_uri or _tags(stack)[MODEL_URI_TAG]
        _check_surface(model_uri, cfg)
        return self._ship(name, model_uri, cfg)

    def delete_deployment(
        self, name: str, config: Mapping[str, str] | None = None, endpoint: str | None = None
    ) -> None:
        """Delete stack ``name``; nothing to do when it does not exist."""
        stack = self._find(name)
        if stack is None or stack.get("StackStatus") in _GONE:
            return
        if not _ours(stack):
            raise PluginError(
                f"stack {name!r} was not deployed by mlflow-lambda (no {MODEL_URI_TAG!r} tag); "
                "refusing to delete it",
                INVALID_PARAMETER_VALUE,
            )
        try:
            self.deployer.destroy(name)
        except MlflowLambdaError as exc:
            raise PluginError(str(exc)) from exc

    def list_deployments(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Every mlflow-lambda stack in the region."""
        try:
            stacks = self.deployer.stacks()
        except MlflowLambdaError as exc:
            raise PluginError(str(exc)) from exc
        return [_describe(s) for s in stacks if _ours(s)]

    def get_deployment(self, name: str, endpoint: str | None = None) -> dict[str, Any]:
        """The deployment's stack status, model URI, endpoint URL and Outputs."""
        return _describe(self._existing(name))

    def predict(
        self, deployment_name: str | None = None, inputs: Any = None, endpoint: str | None = None
    ) -> PredictionsResponse:
        """Score ``inputs`` (DataFrame, array, list or scoring dict) with a direct invoke."""
        stack = self._existing(str(deployment_name))
        function = _outputs(stack).get("FunctionName")
        if not function:
            raise PluginError(
                f"stack {deployment_name!r} has no FunctionName output; deploy it again",
                RESOURCE_DOES_NOT_EXIST,
            )
        try:
            answer = self.deployer.invoke(function, scoring_body(inputs))
        except MlflowLambdaError as exc:
            raise PluginError(str(exc)) from exc
        if "error_code" in answer:
            raise PluginError(
                f"{deployment_name!r} answered {answer['error_code']}: {answer.get('message')}",
                INVALID_PARAMETER_VALUE,
            )
        return PredictionsResponse(answer)
