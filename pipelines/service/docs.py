"""The API docs at ``/docs``: Swagger UI served by the service itself, so that they work on a closed network.

Offline: Swagger UI's script, stylesheet and icon come from the ``fastapi-offline`` wheel, served under
``/docs/static/``. It ships Swagger UI 5, which reads the OpenAPI 3.1 that FastAPI writes (``swagger-ui-bundle``
stops at Swagger UI 4, which refuses 3.1 specs). Nothing comes from a CDN, and the page's CSP lets it load nothing
from anywhere but the service. ReDoc is left out: the wheel ships it too, but its bundle loads its logo from a CDN.

With an API key. A browser sends no ``Authorization`` header on a navigation or a ``<script src>``: behind the key,
neither the search page nor a docs page could load in a browser at all. So the pages a browser loads before it can
send the key are public, and everything that tells something about the service or its data stays behind the key:

- public: ``/`` (the search page), ``/docs`` (a shell: Swagger UI and a key form) and the files under
  ``/docs/static/`` (Swagger UI's own files and the shell's script). None holds data, routes or settings beyond
  whether a key is needed.
- keyed: ``/openapi.json`` (the routes and schemas), the API and every other path but ``/health``.

The shell's script (``static/docs.js``) asks for the key (the search page's: both keep it in the tab's
``sessionStorage`` under one name), fetches the spec with it and starts Swagger UI on that spec. The spec declares a
bearer security scheme when the service has a key, and the script fills it in, so that "Try it out" sends the key.

>>> from fastapi import FastAPI
>>> app = FastAPI(docs_url=None, redoc_url=None)
>>> sorted(add_docs(app, keyed=True))[:2]
['/docs', '/docs/static/docs.css']
>>> app.openapi()["components"]["securitySchemes"]
{'bearer': {'type': 'http', 'scheme': 'bearer', 'description': "The service's API key (`serve --api-key`)."}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, Response

from pipelines.service.auth import PUBLIC_PATHS
from pipelines.service.page import STATIC, with_config

DOCS = "/docs"
ASSETS_AT = "/docs/static/"
_SWAGGER_UI = Path(fastapi_offline.__file__).with_name("static")
#: What ``/docs/static/`` serves, by name: exactly these files, nothing else from either folder.
ASSETS: dict[str, Path] = {
    "swagger-ui-bundle.js": _SWAGGER_UI / "swagger-ui-bundle.js",
    "swagger-ui.css": _SWAGGER_UI / "swagger-ui.css",
    "favicon.png": _SWAGGER_UI / "favicon.png",
    "docs.js": STATIC / "docs.js",
    "docs.css": STATIC / "docs.css",
}
# Nothing inline and nothing from elsewhere: Swagger UI sets its styles through the DOM, which 'self' allows.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_BEARER = {"type": "http", "scheme": "bearer", "description": "The service's API key (`serve --api-key`)."}
_HEADERS = {"Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def add_docs(app: FastAPI, *, keyed: bool) -> frozenset[str]:
    """Serve the docs on ``app`` (made with ``docs_url=None, redoc_url=None``) and, if ``keyed``, declare the bearer
    scheme in its spec; return the paths a browser must load without the key (the shell and its files)."""
    assert app.openapi_url, "the docs show the app's OpenAPI spec"
    # Relative, as every URL in the shell: the service may sit under a prefix behind a proxy.
    shell = with_config(STATIC / "docs.html", {"needs_key": keyed, "openapi_url": app.openapi_url.lstrip("/")})

    @app.get(DOCS, include_in_schema=False)
    def docs() -> Response:
        return Response(shell, media_type="text/html; charset=utf-8", headers=_HEADERS)

    @app.get(ASSETS_AT + "{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404)
        # no-cache: revalidated by ETag on each load, so an upgraded Swagger UI is never mixed with a cached one.
        return FileResponse(ASSETS[name], headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    if keyed:
        _declare_bearer(app)
    return frozenset({DOCS, *(ASSETS_AT + name for name in ASSETS)})


def _declare_bearer(app: FastAPI) -> None:
    """The spec says that every operation but the public ones (``/health``) takes ``Authorization: Bearer KEY``:
    Swagger UI gets an Authorize button (the shell fills it in), and clients generated from the spec send the key."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = build()  # FastAPI's own, which keeps it as app.openapi_schema: the edits below go there
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["bearer"] = dict(_BEARER)
            schema["security"] = [{"bearer": []}]
            for path in PUBLIC_PATHS & schema["paths"].keys():
                for operation in schema["paths"][path].values():
                    operation["security"] = []
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the spec
