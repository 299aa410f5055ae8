"""``mlflow-lambda invoke``: run a built bundle once, as ``sam local invoke`` would, without Docker.

The build output (``bundle.zip`` or the image context ``image/``) is unpacked into a temporary,
read-only task root and run by ``infra.local.LocalLambda``. Memory, timeout, handler and
environment come from the build's ``template.yaml`` when there is one; ``manifest.json`` says
which Python and architecture the bundle needs, and we refuse plainly when the host cannot
provide them.
"""

from __future__ import annotations

import base64
import json
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlflow_lambda.handler import ENTRY_POINT
from mlflow_lambda.infra.errors import LocalInvokeError
from mlflow_lambda.infra.local import LocalLambda
from mlflow_lambda.infra.results import InvocationError, InvokeResult
from mlflow_lambda.infra.runtime_dir import find_python
from mlflow_lambda.packager.events import make_event
from mlflow_lambda.packager.manifest import read_manifest
from mlflow_lambda.packager.platforms import host_arch

_DATA_TYPES = {".json": "application/json", ".csv": "text/csv"}


@dataclass(frozen=True)
class FunctionConfig:
    """What the deployed function would be configured with."""

    handler: str = ENTRY_POINT
    memory_mb: int = 1024
    timeout_s: int = 30
    env: dict[str, str] = field(default_factory=dict)
    python_version: str | None = None
    arch: str | None = None


def unpack_bundle(outdir: Path, task_root: Path) -> None:
    """Lay the build in ``outdir`` out as Lambda's ``/var/task`` in ``task_root``.

    ``bundle.zip`` is extracted with its file modes; an image context's ``deps/`` and ``app/``
    are both copied to the root (the Dockerfile copies both into ``${LAMBDA_TASK_ROOT}``).
    """
    zip_path = outdir if outdir.suffix == ".zip" else outdir / "bundle.zip"
    if zip_path.is_file():
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                out = Path(zf.extract(info, task_root))
                mode = info.external_attr >> 16
                if mode and not info.is_dir():
                    out.chmod(stat.S_IMODE(mode))
        return
    image = outdir / "image"
    if (image / "deps").is_dir() or (image / "app").is_dir():
        for part in ("deps", "app"):
            if (image / part).is_dir():
                shutil.copytree(image / part, task_root, dirs_exist_ok=True, symlinks=True)
        return
    raise LocalInvokeError(
        f"{str(outdir)!r} holds neither bundle.zip nor image/deps + image/app; "
        "build it first with `mlflow-lambda package -m <model-uri> -o <outdir>`"
    )


def read_function_config(outdir: Path) -> FunctionConfig:
    """Read handler, memory, timeout and variables from ``template.yaml``, Python and arch
    from ``manifest.json``; anything missing keeps its default."""
    manifest = read_manifest(outdir) if outdir.is_dir() else None
    values: dict[str, Any] = {}
    if manifest:
        values["python_version"] = manifest.get("python_version")
        values["arch"] = manifest.get("arch")
    template = outdir / "template.yaml"
    if template.is_file():
        doc = yaml.safe_load(template.read_text()) or {}
        params = doc.get("Parameters") or {}
        for key, name in (("memory_mb", "MemorySize"), ("timeout_s", "Timeout")):
            default = (params.get(name) or {}).get("Default")
            if isinstance(default, int):
                values[key] = default
        for resource in (doc.get("Resources") or {}).values():
            props = resource.get("Properties") or {}
            if resource.get("Type") == "AWS::Serverless::Function":
                values["handler"] = props.get("Handler") or ENTRY_POINT
                variables = (props.get("Environment") or {}).get("Variables") or {}
                values["env"] = {k: str(v) for k, v in variables.items()}
                break
    return FunctionConfig(**values)


def check_runnable(config: FunctionConfig) -> None:
    """Raise LocalInvokeError when this host cannot run the bundle's architecture."""
    host = host_arch()
    if config.arch and host_arch(config.arch) != host:
        raise LocalInvokeError(
            f"the bundle was built for {config.arch} (manifest.json) but this host is {host}: "
            f"its compiled libraries cannot load here. Rebuild with --arch {host} to run it "
            f"locally, or run it on an {config.arch} machine"
        )


def _localize(env: Mapping[str, str], task_root: Path, tmp_hint: str) -> dict[str, str]:
    # Paths in the template point into Lambda's file system; point them into ours.
    out = {}
    for key, value in env.items():
        if value == "/var/task" or value.startswith("/var/task/"):
            value = str(task_root) + value[len("/var/task") :]
        elif value == "/tmp" or value.startswith("/tmp/"):
            value = tmp_hint + value[len("/tmp") :]
        out[key] = value
    return out


@contextmanager
def open_bundle(
    outdir: Path,
    *,
    emulator: str = "auto",
    memory_mb: int | None = None,
    timeout_s: int | None = None,
    env: Mapping[str, str] | None = None,
    log_sink: Callable[[str], None] | None = None,
) -> Iterator[LocalLambda]:
    """Unpack ``outdir`` into a read-only temp task root and yield a started LocalLambda."""
    outdir = Path(outdir)
    config = read_function_config(outdir)
    check_runnable(config)
    python = find_python(config.python_version)
    work = Path(tempfile.mkdtemp(prefix="mlflow-lambda-"))
    task_root, tmp = work / "task", work / "tmp"
    try:
        task_root.mkdir()
        tmp.mkdir()
        unpack_bundle(outdir, task_root)
        _make_read_only(task_root)
        variables = _localize(config.env, task_root, str(tmp))
        variables.update(env or {})
        fn = LocalLambda(
            task_root, handler=config.handler, python=python, emulator=emulator,
            memory_mb=memory_mb or config.memory_mb, timeout_s=timeout_s or config.timeout_s,
            env=variables, log_sink=log_sink, tmp_dir=tmp,
        )  # fmt: skip
        with fn:
            yield fn
    finally:
        _remove_tree(work)


def load_event(
    outdir: Path,
    *,
    event_file: Path | None = None,
    data_file: Path | None = None,
    event_type: str = "v2",
) -> dict[str, Any]:
    """The event for ``invoke``: a file as is, a scoring payload wrapped as ``event_type``,
    or the build's ``events/invocations.json``."""
    if event_file is not None and data_file is not None:
        raise LocalInvokeError("pass either --event or --data, not both")
    if data_file is not None:
        content_type = _DATA_TYPES.get(data_file.suffix.lower())
        if content_type is None:
            raise LocalInvokeError(
                f"--data {str(data_file)!r}: use a .json or .csv file (the scoring payload)"
            )
        try:
            return make_event(event_type, data_file.read_bytes(), content_type=content_type)
        except ValueError as exc:
            raise LocalInvokeError(f"--data {str(data_file)!r}: {exc}") from None
    path = event_file or outdir / "events" / "invocations.json"
    if not path.is_file():
        raise LocalInvokeError(
            f"no event file {str(path)!r}; pass --event FILE or --data PAYLOAD.json"
        )
    try:
        event: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise LocalInvokeError(f"{str(path)!r} is not JSON: {exc}") from None
    return event


def invoke_bundle(
    outdir: Path,
    *,
    event: dict[str, Any],
    emulator: str = "auto",
    memory_mb: int | None = None,
    timeout_s: int | None = None,
    env: Mapping[str, str] | None = None,
    log_sink: Callable[[str], None] | None = None,
) -> InvokeResult:
    """Cold-start the bundle in ``outdir``, invoke it once with ``event`` and return the result.

    Raises InvocationError (a LocalInvokeError, with ``.result``) when the function fails.
    """
    with open_bundle(
        outdir, emulator=emulator, memory_mb=memory_mb, timeout_s=timeout_s, env=env,
        log_sink=log_sink,
    ) as fn:  # fmt: skip
        result = fn.invoke(event)
        timeout = fn.timeout_s
    if not result.ok:
        raise InvocationError(describe_failure(result, timeout), result)
    return result


def describe_failure(result: InvokeResult, timeout_s: int) -> str:
    """One clear paragraph about why an invocation failed and what to do next."""
    kind, message = result.error_type, result.error_message
    if kind == "Runtime.ImportModuleError":
        return (
            f"the handler failed to import ({kind}): {message}. On Lambda the function sees only "
            "the bundle, the standard library and boto3/botocore; add the missing package to "
            "the model's requirements and rebuild"
        )
    if kind == "Sandbox.Timedout":
        return f"{message}: raise the timeout (--timeout, or the template's Timeout parameter)"
    if kind == "Function.ResponseSizeTooLarge":
        return f"{message} Lambda answers at most 6 MB: send fewer rows per request"
    if kind and kind.startswith("Runtime."):
        return f"the Lambda runtime failed ({kind}): {message}; see the function's log above"
    trace = ""
    try:
        stack = json.loads(result.payload).get("stackTrace") or []
        trace = "\n" + "".join(stack[-3:]).rstrip() if stack else ""
    except (ValueError, AttributeError):
        pass
    return f"the function raised {kind}: {message}{trace}"


def format_report(result: InvokeResult) -> str:
    """Lambda's REPORT line for ``result`` (durations in ms, memory in MB)."""
    parts = []
    if result.duration_ms is not None:
        parts.append(f"Duration: {result.duration_ms:.2f} ms")
    parts.append(f"Memory Size: {result.memory_size_mb} MB")
    if result.max_memory_mb is not None:
        parts.append(f"Max Memory Used: {result.max_memory_mb:.0f} MB")
    if result.init_ms is not None:
        parts.append(f"Init Duration: {result.init_ms:.2f} ms")
    emulator = "aws-lambda-rie" if result.emulator == "rie" else "stdlib Runtime API emulator"
    line = "REPORT " + "  ".join(parts) + f"  ({emulator})"
    if result.max_memory_mb is not None and result.max_memory_mb > result.memory_size_mb:
        line += (
            f"\nwarning: {result.max_memory_mb:.0f} MB used is over the {result.memory_size_mb}"
            " MB configured; on Lambda this fails with Runtime.OutOfMemory (raise MemorySize)"
        )
    return line


def format_response(result: InvokeResult, *, raw: bool = False) -> str:
    """The response payload, pretty-printed when it is JSON.

    An HTTP-shaped answer (API Gateway, Function URL, ALB) is shown as its status line and
    decoded body, since that is what a client sees; ``raw`` shows the Lambda payload as is.
    """
    try:
        payload = result.json()
    except ValueError:
        return result.payload.decode("utf-8", "replace")
    if raw or not (isinstance(payload, dict) and "statusCode" in payload and "body" in payload):
        return json.dumps(payload, indent=2, sort_keys=True)
    body = payload.get("body") or ""
    if payload.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    headers = {k.lower(): v for k, v in (payload.get("headers") or {}).items()}
    status = f"HTTP {payload['statusCode']} {headers.get('content-type', '')}".rstrip()
    try:
        body = json.dumps(json.loads(body), indent=2)
    except ValueError:
        pass
    return f"{status}\n{body}"


def _make_read_only(root: Path) -> None:
    # ``chmod -R a-w``: Lambda mounts /var/task read-only (so no bytecode is cached there).
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _remove_tree(root: Path) -> None:
    # Restore the owner's write bit on directories first, or non-root users cannot delete.
    if root.exists():
        for path in [root, *root.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
    shutil.rmtree(root, ignore_errors=True)
