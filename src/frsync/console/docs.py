"""`/docs`: Swagger UI 5 over `/openapi.json`, from the assets of the installed
`swagger-ui-py` package. The page, its script and its styles all come from this server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from frsync.console.headers import secure
from frsync.console.templating import templates

# The files the page uses; the package ships more (the editor) that stay unserved.
_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}


def _swagger_ui_static() -> Path:
    # Located without importing the package: its __init__ loads framework adapters.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (pip install 'frsync[server]')")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


STATIC = _swagger_ui_static()


async def docs_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "docs.html", {})


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS:
        raise HTTPException(404)
    return FileResponse(STATIC / name, media_type=_ASSETS[name])


DOCS_ROUTES = [
    Route("/docs", secure(docs_page), methods=["GET"]),
    Route("/docs/assets/{name}", secure(asset), methods=["GET"]),
]
