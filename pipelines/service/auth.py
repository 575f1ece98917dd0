"""The service's keys: every path but ``/health`` and the browser pages needs ``Authorization: Bearer KEY``, else a
bare 401; the key found decides which collections the request may read (:mod:`pipelines.service.keys`).

A middleware rather than a route dependency, so that ``/openapi.json``, ``/mcp`` and unknown paths are covered too:
without the key nothing, not even the list of routes, is given away. The browser pages (the search page, the
Swagger UI shell and its files) are public because a browser must load them before it can send the key, and they
hold no data: they ask for the key and send it with every request they make.

Dify's External Knowledge API (``/retrieval``) is refused in Dify's own words: HTTP 403 with ``error_code`` 1001
(no ``Bearer`` header) or 1002 (a wrong key). 403 rather than 401 because Dify, when the API is registered, posts
to it with the key and reports "Authorization failed" only for a 403: a 401 would let a wrong key be saved.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pipelines.service.keys import ALL, CURRENT, Access, Keys

PUBLIC_PATHS = frozenset({"/health"})
#: Where Dify's External Knowledge API is served (:mod:`pipelines.service.dify`).
DIFY_PATHS = frozenset({"/retrieval", "/v1/retrieval"})


def access_of(scope: Scope) -> Access:
    """The access the middleware found for this request (every collection without keys)."""
    found = scope.get("state", {}).get("access")
    return found if isinstance(found, Access) else ALL


class BearerAuth:
    """ASGI middleware that refuses every request without a key, except HTTP requests for ``PUBLIC_PATHS`` and
    ``pages`` (a websocket on those paths still needs the key); it leaves the key's access in the request's state
    and in :data:`pipelines.service.keys.CURRENT`."""

    def __init__(self, app: ASGIApp, keys: Keys, pages: frozenset[str] = frozenset()) -> None:
        self.app = app
        self._keys = keys
        self._public = PUBLIC_PATHS | pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (scope["type"] == "http" and scope["path"] in self._public):
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        access = self._keys.find(token) if token is not None else None
        if access is not None:
            scope.setdefault("state", {})["access"] = access
            reset = CURRENT.set(access)
            try:
                await self.app(scope, receive, send)
            finally:
                CURRENT.reset(reset)
        elif scope["type"] == "http" and scope["path"] in DIFY_PATHS:
            code, why = (1001, "expected 'Authorization: Bearer KEY'") if token is None else (1002, "wrong API key")
            await JSONResponse({"error_code": code, "error_msg": f"Authorization failed: {why}"}, 403)(
                scope, receive, send
            )
        elif scope["type"] == "http":
            refusal = JSONResponse(
                {"detail": "missing or wrong API key"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await refusal(scope, receive, send)
        else:  # a websocket: refused before it is accepted
            await send({"type": "websocket.close", "code": 1008})


def _bearer(scope: Scope) -> bytes | None:
    """The token of the request's one ``Authorization: Bearer`` header, or None."""
    headers = [value for name, value in scope["headers"] if name == b"authorization"]
    if len(headers) != 1:
        return None
    scheme, _, token = headers[0].partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None
