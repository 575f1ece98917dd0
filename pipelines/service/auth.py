"""The service's API key: every path but ``/health`` and the browser pages needs ``Authorization: Bearer KEY``, else
a bare 401.

A middleware rather than a route dependency, so that ``/openapi.json``, ``/mcp`` and unknown paths are covered too:
without the key nothing, not even the list of routes, is given away. The browser pages (the search page, the
Swagger UI shell and its files) are public because a browser must load them before it can send the key, and they
hold no data: they ask for the key and send it with every request they make.
"""

from __future__ import annotations

import hmac

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/health"})


class BearerAuth:
    """ASGI middleware that refuses every request without the key, except HTTP requests for ``PUBLIC_PATHS`` and
    ``pages`` (a websocket on those paths still needs the key)."""

    def __init__(self, app: ASGIApp, key: str, pages: frozenset[str] = frozenset()) -> None:
        self.app = app
        self._key = key.encode()
        self._public = PUBLIC_PATHS | pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        public = scope["type"] == "http" and scope["path"] in self._public
        if scope["type"] == "lifespan" or public or self._authorised(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            refusal = JSONResponse(
                {"detail": "missing or wrong API key"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await refusal(scope, receive, send)
        else:  # a websocket: refused before it is accepted
            await send({"type": "websocket.close", "code": 1008})

    def _authorised(self, scope: Scope) -> bool:
        headers = [value for name, value in scope["headers"] if name == b"authorization"]
        if len(headers) != 1:
            return False
        scheme, _, token = headers[0].partition(b" ")
        # compare_digest: the time taken does not tell how much of a guessed key was right.
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key)
