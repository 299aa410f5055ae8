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
