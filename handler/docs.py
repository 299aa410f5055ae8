"""The ``/docs`` page: Swagger UI rendering the bundle's ``openapi.json``."""

from __future__ import annotations

# Swagger UI for /docs, loaded from a CDN as FastAPI does (fastapi/openapi/docs.py): its
# bundle is 1.73 MB of JavaScript and 0.19 MB of CSS (0.48 MB gzipped; swagger-ui-dist
# 5.35.0 from npm), ten times the rest of this runtime, and every page load would cost
# Lambda invocations to send it. Pinned to one version with Subresource Integrity
# (https://www.w3.org/TR/SRI/), so a changed file on the CDN is refused by the browser.
# Version 5 is the first to render OpenAPI 3.1.
SWAGGER_UI_VERSION = "5.35.0"
SWAGGER_UI_BASE = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}/"
SWAGGER_UI_ASSETS = {  # file -> its sha384, base64 (openssl dgst -sha384 -binary | base64)
    "swagger-ui-bundle.js": "gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9",
    "swagger-ui.css": "WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I",
}
# "openapi.json" is relative, so the page finds the document under an API Gateway stage
# (/Prod/docs -> /Prod/openapi.json) as well as at the root. validatorUrl null: Swagger UI
# would otherwise send the document's URL to swagger.io's online validator for a badge.
_DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{base}swagger-ui.css" integrity="sha384-{css}" crossorigin="anonymous">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}swagger-ui-bundle.js" integrity="sha384-{js}" crossorigin="anonymous"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
}});
</script>
</body>
</html>
"""


def docs_html(title: str = "Model API") -> str:
    """The ``/docs`` page: Swagger UI rendering the ``openapi.json`` next to it."""
    return _DOCS_HTML.format(
        title=title.replace("&", "&amp;").replace("<", "&lt;"),
        base=SWAGGER_UI_BASE,
        css=SWAGGER_UI_ASSETS["swagger-ui.css"],
        js=SWAGGER_UI_ASSETS["swagger-ui-bundle.js"],
    )


__all__ = ["SWAGGER_UI_ASSETS", "SWAGGER_UI_BASE", "SWAGGER_UI_VERSION", "docs_html"]
