"""The HTTP retrieval service: ``POST /v1/retrieve``, ``GET /health``, a search page at ``/``, docs at ``/docs``.

The embeddings provider, the store and the reranker are made once (on first use) and shared by every request; the
retriever is built per request from the service's :class:`~pipelines.settings.Settings` plus the request's
overrides, so the service follows the same rules as ``qwen-rag query``. With an API key, every path but ``/health``
needs ``Authorization: Bearer KEY``.

>>> from pipelines.service.app import create_app, serve_in_background
>>> from pipelines.settings import Settings
>>> app = create_app(Settings(store="/tmp/qwen-rag-doc"), api_key=None)
>>> with serve_in_background(app) as url:                                           # doctest: +SKIP
...     httpx.post(f"{url}/v1/retrieve", json={"query": "什么是人工智能？", "k": 2}).json()["results"]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.metadata
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from chromadb.errors import ChromaError
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from pipelines.embeddings.providers import EmbeddingServerError, make_embeddings
from pipelines.retrieve.rerank import Reranker, make_reranker
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Mode, Settings
from pipelines.store.chroma import Store, StoreError, open_store

logger = logging.getLogger("pipelines.service.app")

MAX_K = 100
MAX_QUERY_CHARS = 4000
PUBLIC_PATHS = frozenset({"/health"})
PAGE = Path(__file__).with_name("static") / "search.html"
_MAX_PAGE_NUMBER = 2**31 - 1  # Chroma compares int metadata as 64-bit; bigger numbers are not bad input to crash on


# -- the API's shapes --------------------------------------------------------------------------------------------


def _unicode(text: str) -> str:
    """JSON's ``\\ud800`` escapes decode to lone surrogates, which no encoder (UTF-8 answer, model, Chroma) takes.

    Pydantic refuses them in a plain ``str`` field itself, but lets them through an optional one (``str | None``).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"not valid Unicode: a lone surrogate at position {error.start}") from None
    return text


def _whole_number(value: object) -> object:
    """JSON Schema counts ``4.0`` as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Text = Annotated[str, AfterValidator(_unicode)]
PageNumber = Annotated[int, Field(ge=1, le=_MAX_PAGE_NUMBER), BeforeValidator(_whole_number)]
Count = Annotated[int, Field(ge=1, le=MAX_K), BeforeValidator(_whole_number)]

# Strict: the service takes what its schema says and nothing else (no "4" for 4, no 0 for false), so that clients
# written against the OpenAPI spec and the service agree on every request.
_STRICT = ConfigDict(extra="forbid", strict=True)


class Filters(BaseModel):
    """Only passages that match every given field."""

    model_config = _STRICT

    source: Text | None = Field(None, max_length=1000, description="Glob over sources, e.g. `*.pdf` or `docs/*`.")
    file_type: Text | None = Field(None, max_length=64, description="File type: pdf, markdown, code, text, html...")
    # page_from > page_to is an empty range, not an error: it matches nothing.
    page_from: PageNumber | None = Field(None, description="PDF passages from this page on.")
    page_to: PageNumber | None = Field(None, description="PDF passages up to this page.")


class RetrieveRequest(BaseModel):
    """A search; fields left out take the service's settings."""

    model_config = _STRICT | ConfigDict(
        json_schema_extra={"examples": [{"query": "什么是人工智能？", "k": 2, "mode": "dense"}]}
    )

    query: Text = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="What to look for, in any language; not blank.",
        # In the schema as a pattern, so that clients and schema-driven tools know a blank query is refused; the
        # validator below says why in plainer words than a regex.
        json_schema_extra={"pattern": r"\S"},
    )
    k: Count | None = Field(None, description="Passages to return; default: the service's `--k`.")
    # Not strict: FastAPI validates parsed JSON, where the mode is a string, never a Mode.
    mode: Mode | None = Field(None, strict=False, description="dense, bm25 or hybrid; default: the service's `--mode`.")
    filters: Filters | None = None
    rerank: bool = Field(False, description="Rerank with the service's reranker (`--rerank-url`).")
    min_score: float | None = Field(None, ge=-1, le=1, description="Drop dense passages below this cosine similarity.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, query: str) -> str:
        if not query.strip():
            raise ValueError("query is blank")
        return query


class Passage(BaseModel):
    """One retrieved passage with its citation."""

    text: str
    source: str | None
    page: int | None = Field(description="1-based PDF page; null for other files.")
    start_index: int | None = Field(description="Character offset of the passage in its file (or PDF page).")
    score: float | None = Field(description="Higher is better: cosine similarity (dense), BM25 or fused score.")


class RetrieveResponse(BaseModel):
    query: str
    mode: Mode
    results: list[Passage]
    took_ms: float


class Health(BaseModel):
    status: str
    collection: str
    chunks: int


class ErrorBody(BaseModel):
    detail: str = Field(description="One line saying what went wrong and what to do.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not UTF-8."},
    409: {"model": ErrorBody, "description": "No collection yet, or it was built with another model; or no reranker."},
    503: {"model": ErrorBody, "description": "The embedding server or the Chroma store failed."},
}
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody, "description": "Missing or wrong key."}}


# -- shared resources --------------------------------------------------------------------------------------------


class _Shared:
    """The embeddings provider and the store: made on first use, then shared; a failure is retried next time."""

    def __init__(self, settings: Settings, embeddings: Embeddings | None, store: Store | None) -> None:
        self.settings = settings
        self._embeddings = embeddings
        self._store = store
        self._lock = threading.Lock()

    def embeddings(self) -> Embeddings:
        if self._embeddings is None:
            with self._lock:
                if self._embeddings is None:
                    self._embeddings = make_embeddings(self.settings)
        return self._embeddings

    def store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    try:
                        self._store = open_store(self.settings)
                    except StoreError as error:
                        # The store itself is down (a Chroma server): unavailable, unlike a missing collection.
                        raise HTTPException(503, f"store: {_one_line(error)}") from error
        return self._store


# -- authentication ----------------------------------------------------------------------------------------------


class BearerAuth:
    """ASGI middleware: every path but ``/health`` needs ``Authorization: Bearer KEY``, else a bare 401.

    A middleware rather than a route dependency, so that ``/``, ``/docs``, ``/openapi.json`` and unknown paths are
    covered too: without the key nothing, not even the list of routes, is given away.
    """

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self._key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or scope["path"] in PUBLIC_PATHS or self._authorised(scope):
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


# -- the search page ---------------------------------------------------------------------------------------------


def _csp_hash(body: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


def _page(defaults: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The page, told the service's defaults, and its headers; the CSP allows exactly its own inline script and
    style, so injected markup could run nothing even if some passage text ever reached the DOM as HTML."""
    html = PAGE.read_text(encoding="utf-8").replace("__DEFAULTS__", escape(json.dumps(defaults), quote=True))
    scripts = " ".join(_csp_hash(s) for s in re.findall(r"<script>(.*?)</script>", html, re.S))
    styles = " ".join(_csp_hash(s) for s in re.findall(r"<style>(.*?)</style>", html, re.S))
    policy = (
        f"default-src 'none'; script-src {scripts}; style-src {styles}; connect-src 'self'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    headers = {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    return html.encode("utf-8"), headers


# -- the app -----------------------------------------------------------------------------------------------------


def _passage(doc: Document) -> Passage:
    meta = doc.metadata
    return Passage(
        text=doc.page_content,
        source=meta.get("source"),
        page=meta.get("page"),
        start_index=meta.get("start_index"),
        score=meta.get("score"),
    )


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def create_app(
    settings: Settings,
    *,
    api_key: str | None,
    embeddings: Embeddings | None = None,
    store: Store | None = None,
) -> FastAPI:
    """The service over ``settings``' collection; ``embeddings`` and ``store`` default to the configured ones.

    >>> app = create_app(Settings(store="/tmp/qwen-rag-doc"), api_key="s3cret")
    >>> [r.path for r in app.routes if r.path.startswith("/v1")]
    ['/v1/retrieve']
    """
    shared = _Shared(settings, embeddings, store)
    # Built once, not per request: a cross-encoder loads its model on first use and a server reranker learns the
    # server's schema then. top_n=MAX_K because the retriever cuts the reranked list to each request's k itself.
    # An impossible --rerank-url fails here, at startup, not on the first request.
    reranker: Reranker | None = make_reranker(settings.rerank_url, settings.rerank_model, top_n=MAX_K)
    default_k = min(settings.k, MAX_K)
    page, page_headers = _page({"k": default_k, "mode": settings.mode.value})
    errors = _ERRORS | (_UNAUTHORIZED if api_key else {})

    app = FastAPI(
        title="qwen-rag",
        version=importlib.metadata.version("qwen-rag"),
        description="Retrieval over a qwen-rag collection: dense, BM25 or hybrid search with citations.",
    )
    if api_key:
        app.add_middleware(BearerAuth, key=api_key)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes each bad input: a 4000-character query back, and a 500 for a lone surrogate
        # (which cannot be written as UTF-8). Where, what and why is enough.
        errors = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in error.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, error: StoreError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(error)}, status_code=409)

    @app.exception_handler(EmbeddingServerError)
    async def _embedding_error(request: Request, error: EmbeddingServerError) -> JSONResponse:
        return JSONResponse({"detail": f"embedding server: {_one_line(error)}"}, status_code=503)

    @app.exception_handler(ChromaError)
    async def _chroma_error(request: Request, error: ChromaError) -> JSONResponse:
        # e.g. the collection was deleted mid-request by `ingest --full`: the next request sees the new one.
        return JSONResponse({"detail": f"store: {_one_line(error)}"}, status_code=503)

    @app.post("/v1/retrieve", response_model=RetrieveResponse, responses=errors)
    def retrieve(body: RetrieveRequest) -> RetrieveResponse:
        """The top-k passages for a query, best first, with source, page, offset and score."""
        started = time.perf_counter()
        if body.rerank and reranker is None:
            raise HTTPException(409, "this service has no reranker: start it with --rerank-url")
        filters = body.filters.model_dump(exclude_none=True) if body.filters else {}
        # The shared reranker is attached below: none is built per request.
        update: dict[str, Any] = {
            **filters,
            "k": body.k or default_k,
            "mode": body.mode or settings.mode,
            "rerank_url": None,
        }
        if body.min_score is not None:
            update["min_score"] = body.min_score
        retriever = build_retriever(
            settings.model_copy(update=update), embeddings=shared.embeddings(), store=shared.store()
        )
        if body.rerank:
            retriever.reranker = reranker
        docs = retriever.invoke(body.query)
        took = round((time.perf_counter() - started) * 1000, 1)
        return RetrieveResponse(
            query=body.query, mode=update["mode"], results=[_passage(d) for d in docs], took_ms=took
        )

    @app.get("/health", response_model=Health, responses={503: _ERRORS[503]})
    def health() -> Health:
        """Liveness and the size of the collection (0 before the first ingest); never needs the key."""
        found = shared.store().existing(settings.collection)
        return Health(status="ok", collection=settings.collection, chunks=found.count() if found else 0)

    @app.get("/", include_in_schema=False)
    def search_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=page_headers)

    return app


# -- running it --------------------------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None) -> None:
    """Run the service under uvicorn until interrupted (what ``qwen-rag serve`` does)."""
    if not api_key and not _is_loopback(host):
        logger.warning("serving on %s without --api-key: anyone who can reach it can read the whole index", host)
    uvicorn.run(create_app(settings, api_key=api_key), host=host, port=port)


@contextmanager
def serve_in_background(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread and yield its base URL (port 0: a free one); stop it on exit.

    For notebooks (``uvicorn.run`` fails inside Jupyter's running event loop) and tests.

    >>> with serve_in_background(create_app(Settings(), api_key=None)) as url:      # doctest: +SKIP
    ...     print(url)
    http://127.0.0.1:41234
    """
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="qwen-rag-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        # uvicorn exits its thread (SystemExit) when it cannot bind.
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the service did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
