"""The API's documentation pages, /docs (Swagger UI) and /redoc, off unless API_DOCS=1.

Their scripts come from this installation (the fastapi-offline package ships Swagger UI's and
ReDoc's files), never from a CDN: the pages share an origin with the clinic pages, so a
script from elsewhere could act for a signed-in staff member.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"
OWN_ASSETS = "/docs/own"
_VENDOR = Path(str(files("fastapi_offline") / "static"))
_OWN = Path(__file__).parent / "static"
# Scripts from this site only. Swagger UI and ReDoc style elements inline and draw icons from
# data: URLs; ReDoc renders in a worker it starts from a blob.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

_SWAGGER = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{title}} · API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{OWN_ASSETS}/swagger-init.js"></script>
</body>
</html>
"""

_REDOC = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{title}} · API</title>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS}/redoc.standalone.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their files from this installation."""
    app.mount(ASSETS, StaticFiles(directory=_VENDOR), name="docs-assets")
    app.mount(OWN_ASSETS, StaticFiles(directory=_OWN), name="docs-own")
    headers = {"Content-Security-Policy": DOCS_CSP}

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(_SWAGGER.format(title=app.title), headers=headers)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(_REDOC.format(title=app.title), headers=headers)
