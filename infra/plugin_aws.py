"""The AWS side of the ``lambda`` deployments plugin: stacks, deploys and direct invokes.

Kept apart from ``infra.plugin`` so the MLflow-facing client can be tested with a fake of
:class:`AwsDeployer` (a real object that records calls) and so this half carries no MLflow
import. A prediction is a direct ``lambda.invoke`` with a scoring body: the handler answers it
with the ``/invocations`` JSON body (``handler.events``), and it needs no public endpoint.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mlflow_lambda.handler.payload import FORMATS
from mlflow_lambda.infra.deploy import DeployResult, deploy
from mlflow_lambda.infra.errors import DeployError
from mlflow_lambda.infra.stack import cfn_client, destroy, find_stack, resolve_region

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient


# `mlflow deployments` has no --region: the region is part of the target URI.
REGION_HINT = (
    "use the target 'lambda:/<region>' (e.g. -t lambda:/eu-west-1), set AWS_REGION, or set "
    "region in your AWS profile (aws configure set region eu-west-1)"
)


def stderr_progress(message: str) -> None:
    # stdout belongs to MLflow's CLI (predict prints the predictions there)
    print(message, file=sys.stderr)


def scoring_body(inputs: Any) -> dict[str, Any]:
    """The ``/invocations`` JSON body for ``inputs``, as ``mlflow models serve`` expects it.

    A DataFrame goes as ``dataframe_split`` (what ``mlflow deployments predict -I`` reads);
    a dict that already has one scoring key is sent as is; arrays and lists go as
    ``inputs`` (TF-serving columnar/tensor format, docs/protocol.md).
    """
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the dev deps

    if isinstance(inputs, pd.Series):
        inputs = inputs.to_frame()
    if isinstance(inputs, pd.DataFrame):
        # pandas' own JSON writer turns numpy scalars, NaN and timestamps into JSON values
        split = json.loads(inputs.to_json(orient="split", index=False, date_format="iso"))
        return {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
    if isinstance(inputs, Mapping):
        if sum(key in inputs for key in FORMATS) == 1:
            return dict(inputs)
        return {"inputs": dict(inputs)}
    if hasattr(inputs, "tolist"):  # numpy arrays
        return {"inputs": inputs.tolist()}
    if isinstance(inputs, list | tuple):
        return {"inputs": list(inputs)}
    raise DeployError(
        f"cannot send inputs of type {type(inputs).__name__!r}; pass a DataFrame, a numpy "
        f"array, a list or a dict with one of {', '.join(FORMATS)}"
    )


class AwsDeployer:
    """Deploys, finds, deletes and invokes mlflow-lambda stacks in one region."""

    def __init__(
        self,
        region: str | None,
        endpoint_url: str | None = None,
        progress: Callable[[str], None] = stderr_progress,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.progress = progress

    def _region(self) -> str:
        """The target URI's region, else the AWS configuration's; else one line on what to set."""
        return resolve_region(self.region, REGION_HINT)

    def _cfn(self) -> CloudFormationClient:
        return cfn_client(self._region(), self.endpoint_url)

    def deploy(
        self, outdir: Path, stack_name: str, s3_bucket: str | None, tags: Mapping[str, str]
    ) -> DeployResult:
        """``infra.deploy.deploy`` for this region."""
        return deploy(
            outdir,
            stack_name=stack_name,
            s3_bucket=s3_bucket,
            region=self._region(),
            endpoint_url=self.endpoint_url,
            tags=tags,
            progress=self.progress,
        )

    def destroy(self, stack_name: str) -> str:
        """``infra.stack.destroy`` for this region."""
        return destroy(
            stack_name,
            region=self._region(),
            endpoint_url=self.endpoint_url,
            progress=self.progress,
        )

    def find(self, stack_name: str) -> dict[str, Any] | None:
        """The stack called ``stack_name`` (as DescribeStacks answers it), or None."""
        try:
            stack = find_stack(self._cfn(), stack_name)
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"cannot look up stack {stack_name!r}: {exc}") from exc
        return dict(stack) if stack else None

    def stacks(self) -> list[dict[str, Any]]:
        """Every stack of the region (all pages of DescribeStacks)."""
        try:
            pages = self._cfn().get_paginator("describe_stacks").paginate()
            return [dict(s) for page in pages for s in page.get("Stacks", [])]
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"cannot list stacks: {exc}") from exc

    def invoke(self, function_name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Invoke the function synchronously with ``body``; return its JSON answer."""
        import boto3

        region = self._region()
        client = boto3.client("lambda", region_name=region, endpoint_url=self.endpoint_url)
        try:
            answer = client.invoke(
                FunctionName=function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(body).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"cannot invoke {function_name!r}: {exc}") from exc
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            # Lambda's error payload: {"errorMessage": ..., "errorType": ...}
            raise DeployError(f"{function_name!r} failed ({answer['FunctionError']}): {payload!r}")
        try:
            data = json.loads(payload)
        except ValueError:
            raise DeployError(f"{function_name!r} answered non-JSON: {payload[:200]!r}") from None
        if not isinstance(data, dict):
            raise DeployError(f"{function_name!r} answered {data!r}, not a JSON object")
        return data
