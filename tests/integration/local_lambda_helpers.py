"""Tiny task roots and build outputs for the local Lambda tests (no real model needed)."""

from __future__ import annotations

import json
import platform
import sys
import zipfile
from pathlib import Path
from typing import Any

import yaml

# Echoes what the function sees: the event, the context, sys.path, the environment, files.
ECHO = """
import os, sys, time

def handler(event, context):
    if isinstance(event, dict) and event.get("sleep"):
        time.sleep(event["sleep"])
    tmp = os.path.join(os.environ["TMPDIR"], "probe.txt")
    with open(tmp, "w") as f:
        f.write("ok")
    names = ["LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_HANDLER", "AWS_LAMBDA_FUNCTION_NAME",
             "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_TIMEOUT", "AWS_REGION",
             "TZ", "LANG", "TMPDIR", "MODEL_DIR", "VIRTUAL_ENV", "PYTHONHOME"]
    root = os.environ["LAMBDA_TASK_ROOT"]
    return {
        "event": event,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "function_name": context.function_name,
        "remaining_ms_le_timeout": context.get_remaining_time_in_millis()
        <= 1000 * int(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"]),
        "sys_path": sys.path,
        "python": "%d.%d" % sys.version_info[:2],
        "cwd": os.getcwd(),
        "env": {k: os.environ.get(k) for k in names},
        "task_root_writable_bits": oct(os.stat(root).st_mode & 0o222),
        "tmp_written": open(tmp).read(),
    }
"""
RAISES = """
def handler(event, context):
    raise ValueError("bad input: %r" % (event,))
"""
# yaml (and pandas) are on the host's venv, never in these task roots: must fail as on Lambda.
IMPORTS_HOST_ONLY = """
import yaml

def handler(event, context):
    return yaml.__version__
"""
IMPORTS_PANDAS = """
import pandas

def handler(event, context):
    return pandas.__version__
"""
# A hand-written payload 2.0 HTTP handler: echoes the request back as JSON.
HTTP_ECHO = """
import base64, json

def handler(event, context):
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("latin-1")
    path = event["rawPath"]
    if path == "/binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if path == "/plain":
        return {"hello": "world"}
    if path == "/boom":
        raise RuntimeError("boom")
    status = 404 if path == "/missing" else 200
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "x-echo": "1"},
        "cookies": ["a=1", "b=2"],
        "body": json.dumps({
            "method": event["requestContext"]["http"]["method"],
            "path": path,
            "query": event.get("rawQueryString"),
            "params": event.get("queryStringParameters"),
            "content_type": event["headers"].get("content-type"),
            "body": body,
            "body_len": len(body or ""),
        }),
    }
"""


def host_arch() -> str:
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def host_python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def write_task_root(root: Path, source: str, extra: dict[str, str] | None = None) -> Path:
    """A task root with ``mlflow_lambda/handler/lambda_function.py`` (and ``extra`` files)."""
    package = root / "mlflow_lambda" / "handler"
    package.mkdir(parents=True)
    (root / "mlflow_lambda" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "lambda_function.py").write_text(source)
    for rel, text in (extra or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def write_build(
    outdir: Path,
    source: str,
    *,
    target: str = "zip",
    manifest: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """A build output dir like ``mlflow-lambda package`` writes: bundle.zip or image/."""
    outdir.mkdir(parents=True)
    stage = write_task_root(outdir / ".stage", source, extra)
    if target == "zip":
        with zipfile.ZipFile(outdir / "bundle.zip", "w") as zf:
            for path in sorted(stage.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(stage).as_posix())
    else:  # image context: the app (handler) and the dependencies (everything else)
        (outdir / "image" / "app").mkdir(parents=True)
        stage.joinpath("mlflow_lambda").rename(outdir / "image" / "app" / "mlflow_lambda")
        stage.rename(outdir / "image" / "deps")
    if manifest is not None:
        (outdir / "manifest.json").write_text(json.dumps(manifest))
    if template is not None:
        (outdir / "template.yaml").write_text(yaml.safe_dump(template))
    return outdir


def sam_template(memory: int, timeout: int, variables: dict[str, str]) -> dict[str, Any]:
    """The parts of the generated SAM template that ``invoke`` reads."""
    return {
        "Parameters": {
            "MemorySize": {"Type": "Number", "Default": memory},
            "Timeout": {"Type": "Number", "Default": timeout},
        },
        "Resources": {
            "ModelFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "mlflow_lambda.handler.lambda_function.handler",
                    "Environment": {"Variables": variables},
                },
            }
        },
    }
