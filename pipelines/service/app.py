"""The HTTP retrieval service: ``POST /v1/retrieve``, ``GET /v1/collections``, Dify's External Knowledge API at
``POST /retrieval`` (:mod:`pipelines.service.dify`), ``GET /health``, a search page at ``/``, docs at ``/docs``, and
the MCP tools over streamable HTTP at ``/mcp``.

Every collection of the store can be searched (``collection`` in a request; default: the service's). One warm
retriever per collection serves every request (:mod:`pipelines.retrieve.warm`, the most recently used kept); each
request's options (k, mode, filters, rerank, window) go to it per call, so the service follows the same rules as
``qwen-rag query``. With keys (``--api-key``, or ``--keys FILE`` giving each key its collections), every path but
``/health`` and the browser pages (``/``, ``/docs`` and its files: they hold no data, and a browser must load them
before it can send the key, :mod:`pipelines.service.docs`) needs ``Authorization: Bearer KEY``
(:mod:`pipelines.service.auth`); a collection the key may not read is a 403 that names no other collection, and
``/v1/collections`` lists only those it may read.

>>> from pipelines.settings import Settings
>>> app = create_app(Settings(store="/tmp/qwen-rag-doc"), api_key="s3cret")
>>> [r.path for r in app.routes if r.path.startswith("/v1")]
['/v1/retrieve', '/v1/collections', '/v1/retrieval']
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from chromadb.errors import ChromaError
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from loaders.errors import one_line
from pipelines.embeddings import Provider
from pipelines.errors import ConfigError, EmbeddingServerError, QwenRagError, StoreUnavailable
from pipelines.retrieve.passages import passage
from pipelines.retrieve.warm import DEFAULT_LIMIT, WarmRetrievers
from pipelines.service.auth import BearerAuth, access_of
from pipelines.service.dify import add_dify
from pipelines.service.docs import add_docs
from pipelines.service.keys import Keys
from pipelines.service.mcp import http_app as mcp_http_app
from pipelines.service.page import search_page
from pipelines.service.schemas import (
    ERRORS,
    MAX_K,
    UNAUTHORIZED,
    Collection,
    Collections,
    Health,
    Passage,
    RetrieveRequest,
    RetrieveResponse,
)
from pipelines.settings import Settings
from pipelines.store.catalog import collections
from pipelines.store.chroma import Store

#: What a user reads first in an error's detail: which part of the system failed.
_PREFIXES: tuple[tuple[type[QwenRagError], str], ...] = (
    (EmbeddingServerError, "embedding server: "),
    (StoreUnavailable, "store: "),
)


def error_response(error: QwenRagError) -> JSONResponse:
    """A qwen-rag error as the answer the service gives: its status, and its one line as ``detail``."""
    prefix = next((text for kind, text in _PREFIXES if isinstance(error, kind)), "")
    return JSONResponse({"detail": f"{prefix}{error}"}, status_code=error.http_status)


class _McpEndpoint:
    """The ASGI endpoint at /mcp: the MCP app of the running lifespan."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:  # served without a lifespan: nothing runs the MCP sessions
            await JSONResponse({"detail": "MCP is not running (the app was started without its lifespan)"}, 503)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    api_key: str | None,
    keys: Keys | None = None,
    embeddings: Provider | None = None,
    store: Store | None = None,
    host: str = "127.0.0.1",
    warm_limit: int = DEFAULT_LIMIT,
) -> FastAPI:
    """The service over ``settings``' store, searching ``settings.collection`` by default; ``embeddings`` and
    ``store`` default to the configured ones. ``api_key`` is one key for every collection, ``keys`` keys scoped to
    collections (either, or neither: open). ``host`` is where it is served: the MCP endpoint refuses foreign ``Host``
    headers on a loopback host (DNS rebinding). ``warm_limit``: how many collections' retrievers stay warm."""
    if api_key and keys:
        raise ConfigError("give --api-key or --keys, not both")
    keys = keys or (Keys.single(api_key) if api_key else None)
    warm = WarmRetrievers(settings, embeddings=embeddings, store=store, limit=warm_limit)
    # MCP over streamable HTTP at /mcp, sharing the warm retrievers with the REST API. Its session manager runs in
    # the app's lifespan and only once per instance, so each lifespan (tests start several) gets a new one.
    mcp = _McpEndpoint()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served = mcp_http_app(settings, warm=warm, host=host)
        async with served.router.lifespan_context(served):
            mcp.app = served
            yield

    # An impossible --rerank-url fails here, at startup, not on the first request (the retriever, built on the
    # first request, makes the one it uses).
    if settings.rerank_url:
        from pipelines.retrieve.rerank import make_reranker

        make_reranker(settings.rerank_url, settings.rerank_model, top_n=MAX_K)
    default_k = min(settings.k, MAX_K)
    page, page_headers = search_page({"k": default_k, "mode": settings.mode.value, "needs_key": bool(keys)})
    errors = ERRORS | (UNAUTHORIZED if keys else {})

    app = FastAPI(
        title="qwen-rag",
        version=importlib.metadata.version("qwen-rag"),
        description="Retrieval over qwen-rag collections: dense, BM25 or hybrid search with citations; Dify's "
        "External Knowledge API at /retrieval.",
        docs_url=None,  # served offline by add_docs; no ReDoc (its bundle needs a CDN)
        redoc_url=None,
        lifespan=lifespan,
    )
    # A route rather than a mount, so that the URL is exactly /mcp (a mount redirects it to /mcp/).
    app.router.routes.append(Route("/mcp", mcp, include_in_schema=False))
    browser_pages = {"/"} | add_docs(app, keyed=bool(keys))
    if keys:
        app.add_middleware(BearerAuth, keys=keys, pages=frozenset(browser_pages))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes each bad input: a 4000-character query back, and a 500 for a lone surrogate
        # (which cannot be written as UTF-8). Where, what and why is enough.
        errors = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in error.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(QwenRagError)
    async def _qwen_rag_error(request: Request, error: QwenRagError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(ChromaError)
    async def _chroma_error(request: Request, error: ChromaError) -> JSONResponse:
        # e.g. the collection was deleted mid-request by `ingest --full`: the next request builds on the new one.
        warm.forget()
        return JSONResponse({"detail": f"store: {one_line(str(error))}"}, status_code=503)

    @app.post("/v1/retrieve", response_model=RetrieveResponse, responses=errors)
    def retrieve(body: RetrieveRequest, request: Request) -> RetrieveResponse:
        """The top-k passages for a query, best first, with source, page, section or sheet, offset and score."""
        started = time.perf_counter()
        name = body.collection or settings.collection
        if not access_of(request.scope).may_read(name):
            raise HTTPException(403, "this key may not read that collection")
        if body.rerank and not settings.rerank_url:
            raise HTTPException(409, "this service has no reranker: start it with --rerank-url")
        try:
            docs = warm.get(name).invoke(body.query, **(body.options() | {"k": body.k or default_k}))
        except ChromaError:
            warm.forget(name)  # e.g. rebuilt by `ingest --full`: the next request builds on the new one
            raise
        took = round((time.perf_counter() - started) * 1000, 1)
        return RetrieveResponse(
            query=body.query,
            mode=body.mode or settings.mode,
            results=[Passage(**passage(d)) for d in docs],
            took_ms=took,
        )

    listing: dict[int | str, dict[str, Any]] = {503: ERRORS[503]}
    if keys:
        listing[401] = UNAUTHORIZED[401]

    @app.get("/v1/collections", response_model=Collections, responses=listing)
    def list_collections(request: Request) -> Collections:
        """The collections this key may read: name, chunk count, and the model, dimension and task that built each."""
        access = access_of(request.scope)
        found = [info for info in collections(warm.store()) if access.may_read(info.name)]
        return Collections(collections=[Collection(**vars(info)) for info in found])

    add_dify(app, warm)

    @app.get("/health", response_model=Health, responses={503: ERRORS[503]})
    def health() -> Health:
        """Liveness and the size of the collection (0 before the first ingest); never needs the key."""
        found = warm.store().existing(settings.collection)
        return Health(status="ok", collection=settings.collection, chunks=found.count() if found else 0)

    @app.get("/", include_in_schema=False)
    def search() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=page_headers)

    return app
