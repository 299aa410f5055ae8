"""``/docs`` in a real headless Chromium: ``mlflow-lambda serve`` on the README forest's bundle,
Swagger UI's "Try it out" -> "Execute" on the example request, and the predictions on the page.

Offline: the page loads Swagger UI from a CDN (handler/app.py says why); here every request to
it is answered from swagger-ui-dist of the same version out of the npm registry's tarball, and
the browser's Subresource Integrity check proves those are the bytes the page pins. Any other
request leaving 127.0.0.1 fails the test. Chromium is Debian's (``make`` installs it).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from mlflow_lambda.handler.docs import SWAGGER_UI_ASSETS, SWAGGER_UI_BASE, SWAGGER_UI_VERSION

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
_TYPES = {".js": "application/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def swagger_dist(cache_dir: Path) -> Path:
    """swagger-ui-dist at the version /docs pins, from npm, kept in the test cache."""
    folder = cache_dir / f"swagger-ui-dist-{SWAGGER_UI_VERSION}"
    if not (folder / "package" / "swagger-ui-bundle.js").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        spec = f"swagger-ui-dist@{SWAGGER_UI_VERSION}"
        subprocess.run(
            ["npm", "pack", spec, "--pack-destination", str(folder), "--silent"],
            check=True, timeout=300, capture_output=True,
        )  # fmt: skip
        [tgz] = folder.glob("swagger-ui-dist-*.tgz")
        with tarfile.open(tgz) as tar:
            tar.extractall(folder, filter="data")
    package = folder / "package"
    for name, sha in SWAGGER_UI_ASSETS.items():  # the pinned hashes are npm's files
        digest = hashlib.sha384((package / name).read_bytes()).digest()
        assert base64.b64encode(digest).decode() == sha, name
    return package


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request("POST" if body is not None else "GET", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def served(forest_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``mlflow-lambda serve OUTDIR -p PORT`` as a user runs it; stopped at the end."""
    port = _free_port()
    cli = Path(sys.executable).with_name("mlflow-lambda")
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(cli), "serve", str(forest_build), "-p", str(port)], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"serve exited with {proc.returncode}"
            try:
                if _get(port, "/ping")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "serve did not answer /ping within 120 s"
            time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_the_document_is_in_outdir_and_the_bundle_and_served(
    forest_build: Path, served: int
) -> None:
    in_outdir = (forest_build / "openapi.json").read_bytes()
    with zipfile.ZipFile(forest_build / "bundle.zip") as bundle:
        assert bundle.read("openapi.json") == in_outdir
    status, body = _get(served, "/openapi.json")
    assert (status, body) == (200, in_outdir)
    doc = json.loads(body)
    validate(doc)
    model = json.loads((forest_build / "model.json").read_text())
    names = [c["name"] for c in model["signature"]["inputs"]]
    split = doc["components"]["schemas"]["Request_dataframe_split"]["properties"]
    assert split["dataframe_split"]["properties"]["columns"]["items"]["enum"] == names
    assert doc["info"]["title"] == "MyRandomForest"


def test_try_it_out_in_chromium(served: int, swagger_dist: Path) -> None:
    from playwright.sync_api import Route, sync_playwright

    doc = json.loads(_get(served, "/openapi.json")[1])
    example = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"][
        "example"
    ]
    status, direct = _get(served, "/invocations", json.dumps(example).encode())
    assert status == 200
    expected = json.loads(direct)["predictions"]

    local = f"http://127.0.0.1:{served}/"
    outside: list[str] = []
    assets: list[str] = []

    def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(SWAGGER_UI_BASE):
            path = swagger_dist / url.removeprefix(SWAGGER_UI_BASE).split("?")[0]
            assets.append(path.name)
            route.fulfill(
                path=path,
                content_type=_TYPES.get(path.suffix, "application/octet-stream"),
                headers={"Access-Control-Allow-Origin": "*"},  # the page asks CORS (SRI)
            )
        elif url.startswith(local):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.route("**/*", route)
            page.goto(f"{local}docs", timeout=60_000)
            operation = page.locator(".opblock-post").filter(has_text="/invocations")
            operation.locator(".opblock-summary").click(timeout=30_000)
            operation.get_by_role("button", name="Try it out").click()
            operation.get_by_role("button", name="Execute").click()
            # the live response: a header row ("Code", "Details"), then the answer's row
            answer = operation.locator(".live-responses-table tr.response")
            answer.wait_for(timeout=60_000)
            html = answer.inner_html()
            shown_status = answer.locator(".response-col_status").inner_text().strip()
            shown = answer.locator(".response-col_description pre").first.inner_text()
            sent = operation.locator(".curl-command").inner_text()
        finally:
            browser.close()
    assert errors == [] and outside == []
    assert sorted(set(assets)) == sorted(SWAGGER_UI_ASSETS)
    assert shown_status == "200", html
    assert json.loads(shown) == {"predictions": expected}
    assert f"{local}invocations" in sent  # the request the page sent, as curl shows it
    assert isinstance(expected, list) and expected  # the example scored to something
