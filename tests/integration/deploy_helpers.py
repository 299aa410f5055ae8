"""Helpers for the deploy and plugin tests: a moto server with fake credentials, build dirs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

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
                "Handler": "handler.lambda_function.handler",
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


@contextmanager
def moto_env() -> Iterator[str]:
    """Run a moto server on 127.0.0.1 (a free port) with fake credentials; yield its URL.

    The credentials are set in ``os.environ`` for the duration, so boto3 clients made by
    the code under test never find real ones.
    """
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in (*FAKE_CREDENTIALS, "AWS_ENDPOINT_URL")}
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
