"""Helpers for the deploy and plugin tests: a template moto can create, build dirs, moto API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.moto_server import FAKE_AWS_ENV

# What a subprocess needs to reach only the moto server: fake credentials and a region.
FAKE_CREDENTIALS = {**FAKE_AWS_ENV, "AWS_DEFAULT_REGION": "us-east-1"}


# A template moto can create: no transform, no API Gateway v2; same code path as SAM's.
PLAIN_TEMPLATE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "ModelFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": "bundle.zip",
                "Handler": "mlflow_lambda.handler.lambda_function.handler",
                "Runtime": "python3.12",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            },
        },
    },
    "Outputs": {
        "FunctionName": {"Value": {"Ref": "ModelFunction"}},
        "InvocationsUrl": {
            "Value": {"Fn::Sub": "https://${ModelFunction}.example.invalid/invocations"}
        },
    },
}


def moto_api(endpoint: str, path: str, body: Mapping[str, Any]) -> None:
    """POST ``body`` to the moto server's own API (``/moto-api/...``)."""
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/moto-api/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def write_outdir(
    outdir: Path,
    template: Mapping[str, Any],
    *,
    bundle: bytes,
    model: Mapping[str, Any] | None = None,
    target: str = "zip",
    model_uri: str = "models:/churn/3",
) -> Path:
    """A build output directory as ``package`` writes it: template, manifest, bundle.zip.

    The template is written as JSON, which is YAML too (``template.yaml`` may be either).
    """
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "template.yaml").write_text(json.dumps(template, indent=1))
    (outdir / "bundle.zip").write_bytes(bundle)
    manifest = {
        "manifest_version": 1,
        "model": {"uri": model_uri, "location": "bundle", "files": {}, **(model or {})},
        "target": target,
        "runtime": "python3.12",
        "arch": "x86_64",
    }
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return outdir
