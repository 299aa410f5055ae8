"""A real S3 (moto) on 127.0.0.1 for tests that need another client or process to reach it.

Use the in-process ``moto.mock_aws`` when only this process talks to S3 through a client you
pass in. Use this server when something builds its own client from the environment (MLflow's
``S3ArtifactRepository`` reads ``MLFLOW_S3_ENDPOINT_URL``) or runs in a subprocess.

As a context manager::

    from tests.moto_server import moto_server

    with moto_server() as endpoint:  # "http://127.0.0.1:<port>"
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="models")

As a fixture, made once per module (or session) by the factory::

    from tests.moto_server import moto_server_fixture

    moto_endpoint = moto_server_fixture(
        "moto_endpoint", scope="module", extra_env={"MLFLOW_S3_ENDPOINT_URL": None}
    )

``extra_env`` values of ``None`` mean "the endpoint URL" (handy for ``MLFLOW_S3_ENDPOINT_URL``
or ``AWS_ENDPOINT_URL_S3``). While the server runs, ``os.environ`` holds fake credentials and
a region (so boto3 never reads ``~/.aws`` or reaches AWS); every variable is restored on exit.
The server binds port 0 (the OS picks a free port, no race) and is stopped and closed on exit.
moto keeps one in-memory state per process: buckets live until the server stops, and
``mock_aws`` used while a server runs shares that state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

# Fake credentials: botocore refuses to sign without some. The config/credential file paths
# point nowhere so a developer's ~/.aws profile cannot leak into a test.
FAKE_AWS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")


@contextmanager
def patched_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (``str``) or remove (``None``) environment variables; restore all of them on exit."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@contextmanager
def moto_server(
    *, region: str = "us-east-1", extra_env: Mapping[str, str | None] | None = None
) -> Iterator[str]:
    """Run moto's threaded server on 127.0.0.1 and yield its endpoint URL.

    Sets fake AWS credentials and ``region`` (AWS_DEFAULT_REGION and AWS_REGION) for the
    duration, plus ``extra_env`` (a ``None`` value is replaced by the endpoint URL).
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env: dict[str, str | None] = {name: None for name in _UNSET_AWS_ENV}
        env.update(FAKE_AWS_ENV)
        env.update({"AWS_DEFAULT_REGION": region, "AWS_REGION": region})
        env.update({k: endpoint if v is None else v for k, v in (extra_env or {}).items()})
        with patched_environ(env):
            yield endpoint
    finally:
        server.stop()
        # stop() shuts the serve loop down but leaves the listening socket open.
        werkzeug_server: Any = getattr(server, "_server", None)
        if werkzeug_server is not None:
            werkzeug_server.server_close()


def moto_server_fixture(
    name: str,
    *,
    scope: Any = "module",
    region: str = "us-east-1",
    extra_env: Mapping[str, str | None] | None = None,
) -> Callable[..., Any]:
    """A pytest fixture called ``name`` yielding a moto endpoint URL.

    Assign it to a module-level variable of the same name (pytest collects fixtures from the
    test module's or a conftest's globals).
    """

    @pytest.fixture(scope=scope, name=name)
    def _moto_endpoint() -> Iterator[str]:
        with moto_server(region=region, extra_env=extra_env) as endpoint:
            yield endpoint

    return _moto_endpoint
