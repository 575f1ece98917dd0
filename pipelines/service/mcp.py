"""The Model Context Protocol server: chat clients and agents search a qwen-rag collection through three tools.

- ``search``: ranked passages with their citation (source, page, section, sheet and rows, offset, score), from any
  collection, each with its neighbouring chunks if asked (``window``);
- ``read``: the text around a hit, stitched from the stored chunks (:mod:`pipelines.retrieve.context`);
- ``collections``: what the store holds (:mod:`pipelines.store.catalog`).

Over HTTP with keys scoped to collections (``serve --keys``), the tools see only what the request's key may read
(:data:`pipelines.service.keys.CURRENT`): another collection is refused without a word on whether it exists, and
``collections`` lists only the readable ones.

Why the tools hold state: loading the embedding model (or learning the embedding server) and the BM25 index takes
seconds, a search milliseconds. The server keeps one warm retriever per collection
(:class:`~pipelines.retrieve.warm.WarmRetrievers`), built on first use, so every later call of the session (stdio)
or of any client (HTTP) is fast.

Errors a user can act on (no collection yet, another model, the embedding server down, no such file, an argument
outside the schema) come back as tool errors (``isError``) whose text is one line, e.g. ``Error executing tool
search: no collection 'docs' in ...: run `qwen-rag ingest` first``. Anything else is logged with its traceback on
the server's stderr, and the client sees only ``Error executing tool search``.

Two transports: stdio (``qwen-rag mcp``, or ``python -m pipelines.service.mcp --store DIR``) for desktop clients
that start the server themselves, and streamable HTTP (:func:`http_app`) mounted at ``/mcp`` in ``qwen-rag serve``.

>>> import anyio
>>> from mcp.client import Client
>>> from pipelines.settings import Settings
>>> server = build_mcp(Settings(store="/tmp/qwen-rag-demo"))       # nothing loads before the first call
>>> sorted(tool.name for tool in anyio.run(server.list_tools))
['collections', 'read', 'search']
>>> async def first_source(query: str) -> str:
...     async with Client(server) as client:                          # the SDK's client, in process
...         result = await client.call_tool("search", {"query": query, "k": 1})
...     return result.structured_content["result"][0]["source"]
>>> anyio.run(first_source, "什么是人工智能？")                    # doctest: +SKIP
'ml.txt'
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from chromadb.errors import ChromaError
from langchain_core.documents import Document
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field, ValidationError
from starlette.applications import Starlette

from loaders.errors import one_line
from pipelines.errors import QwenRagError, StoreError
from pipelines.retrieve.context import Excerpt, read_around
from pipelines.retrieve.passages import passage
from pipelines.retrieve.warm import WarmRetrievers
from pipelines.service.hold import serving
from pipelines.service.keys import CURRENT
from pipelines.service.schemas import MAX_WINDOW, Passage, Text
from pipelines.settings import Settings
from pipelines.store.catalog import CollectionInfo, collections

MAX_K = 50
MAX_TOKENS = 8000

INSTRUCTIONS = (
    "Search the user's own indexed files (PDF, Office, Markdown, web pages, code; Chinese, English or mixed). "
    "Call search with a question or keywords in any language, and cite each passage by its source (and page). "
    "Call read with a passage's source, page and start_index for the text around it. "
    "Call collections to see what is indexed."
)
_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

# Text: a string that refuses lone surrogates (JSON's "\ud800"), which nothing downstream can encode.
Query = Annotated[Text, Field(min_length=1, max_length=4000, description="What to look for, in any language.")]
K = Annotated[int, Field(ge=1, le=MAX_K, description="How many passages to return, best first.")]
SearchMode = Annotated[
    Literal["dense", "bm25", "hybrid"] | None,
    Field(
        description="dense: by meaning; bm25: by exact words (names, codes, identifiers); hybrid: both, fused. "
        "Default: the server's setting."
    ),
]
Glob = Annotated[Text | None, Field(description="Only files whose source matches this glob: '*.pdf', 'docs/*'.")]
FileType = Annotated[Text | None, Field(description="Only this file type: pdf, docx, pptx, xlsx, csv, markdown...")]
PageFrom = Annotated[int | None, Field(ge=1, description="Only PDF pages (or slides) from this one on.")]
PageTo = Annotated[int | None, Field(ge=1, description="Only PDF pages (or slides) up to this one.")]
Fields = Annotated[
    dict[str, str | int | float | bool] | None,
    Field(description='Only passages whose fields equal these values, e.g. {"department": "hr", "year": 2024}.'),
]
Where = Annotated[
    dict[str, Any] | None,
    Field(description='A Chroma where filter, e.g. {"year": {"$gte": 2024}}; combined with the others by "and".'),
]
CollectionName = Annotated[Text | None, Field(description="Collection to use; default: the server's (see collections)")]
Window = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_WINDOW,
        description="Return each passage with this many chunks before and after it from its file, joined in order; "
        "spans marks where the hits lie in the text.",
    ),
]
Source = Annotated[Text, Field(min_length=1, description="The file: a passage's source, as search returns it.")]
Offset = Annotated[int, Field(ge=0, description="Character offset to read around: a passage's start_index.")]
Tokens = Annotated[int, Field(ge=1, le=MAX_TOKENS, description="About how much text to return, in tokens.")]
Page = Annotated[int | None, Field(ge=1, description="A PDF page or slide: the passage's page. Default: the first.")]
Root = Annotated[Text | None, Field(description="The ingested folder, only if read says two folders hold the file.")]


class Tools:
    """The three tools over one store; their state is the warm retrievers (one per collection, built on first use
    and kept: the embedding model, reranker and BM25 index load once per server, not per call)."""

    def __init__(self, settings: Settings, warm: WarmRetrievers) -> None:
        self.settings = settings
        self.warm = warm

    def search(
        self,
        query: Query,
        k: K = 5,
        mode: SearchMode = None,
        source: Glob = None,
        file_type: FileType = None,
        page_from: PageFrom = None,
        page_to: PageTo = None,
        fields: Fields = None,
        where: Where = None,
        collection: CollectionName = None,
        window: Window = 0,
    ) -> list[Passage]:
        """Search the indexed files: the passages that best answer the query, best first, each with its source
        (and page, section, sheet and rows where the format has them) to cite, and a score (higher is better;
        compare scores within one search only)."""
        if not query.strip():
            raise ToolError("query is blank")
        options: dict[str, Any] = {"k": k, "mode": mode, "source": source, "file_type": file_type}
        options |= {"page_from": page_from, "page_to": page_to, "filter": fields, "where": where, "window": window}
        collection = self._readable(collection)
        with _one_line_errors():
            try:
                docs = self.warm.get(collection).invoke(query, **options)
            except ChromaError:
                # The collection was rebuilt (`ingest --full`) since its retriever was made: build it again, once.
                self.warm.forget(collection)
                docs = self.warm.get(collection).invoke(query, **options)
        return [_passage(doc) for doc in docs]

    def read(
        self,
        source: Source,
        start_index: Offset = 0,
        tokens: Tokens = 800,
        page: Page = None,
        root: Root = None,
        collection: CollectionName = None,
    ) -> Excerpt:
        """Read an indexed file around a position, e.g. the context of a search hit: about a quarter of the text
        before start_index and the rest after it, with the offsets it spans. To go on, read from end_index."""
        name = self._readable(collection)
        with _one_line_errors():
            store = self.warm.store()
            found = store.existing(name)
            if found is None:
                raise StoreError(f"no collection '{name}' in {store.where}: run `qwen-rag ingest` first")
            return read_around(found, source, start_index, tokens, page=page, root=root)

    def collections(self) -> list[CollectionInfo]:
        """The collections of the store: name, chunk count, and the embedding model, dimension and query task
        that built each. search and read use the server's collection unless told another."""
        access = CURRENT.get()
        with _one_line_errors():
            return [info for info in collections(self.warm.store()) if access.may_read(info.name)]

    def _readable(self, collection: str | None) -> str:
        """The collection to use, if the request's key may read it; else the same error as for no such collection,
        so that a key learns nothing of collections it may not read."""
        name = collection or self.settings.collection
        if not CURRENT.get().may_read(name):
            raise ToolError(f"no collection '{name}' for this key: call collections for those it may read")
        return name


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Errors a user can act on become tool errors carrying their one line (the SDK hides other errors' text)."""
    try:
        yield
    except QwenRagError as error:
        raise ToolError(str(error)) from error
    except ChromaError as error:
        raise ToolError(f"store: {one_line(str(error))}") from error


def _passage(doc: Document) -> Passage:
    return Passage(**passage(doc))


class _Server(MCPServer):
    """The SDK's server, with arguments that fail the input schema reported in one line as well (the SDK's own
    message is pydantic's, over several lines and with a link)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            # Exactly ToolError: an UnexpectedToolError (a crash) keeps the SDK's handling.
            if type(error) is not ToolError or not isinstance(error.__cause__, ValidationError):
                raise
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.__cause__.errors())
            raise ToolError(f"Error executing tool {name}: {problems}") from error.__cause__


def build_mcp(settings: Settings, *, warm: WarmRetrievers | None = None) -> MCPServer:
    """The MCP server over ``settings``' store; ``search`` and ``read`` default to ``settings.collection``.

    ``warm``: the retrievers to search with, e.g. the HTTP service's own, so that both share one embedding model
    and BM25 index; default: new ones over ``settings``.
    """
    tools = Tools(settings, warm or WarmRetrievers(settings))
    server = _Server(
        "qwen-rag",
        title="qwen-rag",
        instructions=INSTRUCTIONS,
        version=importlib.metadata.version("qwen-rag"),
        log_level="WARNING",  # stdio: stderr is the client's log window; keep it to what needs attention
    )
    for tool in (tools.search, tools.read, tools.collections):
        # One line: a docstring's wrapping means nothing to the model reading it.
        description = " ".join((tool.__doc__ or "").split())
        server.add_tool(tool, description=description, annotations=_READ_ONLY, structured_output=True)
    return server


def run_stdio(settings: Settings, watch: Sequence[Path] = (), *, debug: bool = False) -> None:
    """Serve MCP over stdin/stdout until the client closes them (what ``qwen-rag mcp`` does); with ``watch``, keep
    the collection in sync with those paths in the same process (``mcp --watch``). stderr gets warnings and
    errors, one plain line each (every record with ``debug``)."""
    _log_plainly(logging.DEBUG if debug else logging.WARNING)
    with serving(settings, watch):
        build_mcp(settings).run("stdio")


def _log_plainly(level: int) -> None:
    """Over stdio, stderr is what a client shows its user as the server's log: one plain line a record, nothing
    below `level`. The level is the handler's as well as the root logger's: a library that sets its own logger's
    level (bm25s set DEBUG, and logged "Building index from tokens" there) is not held back by the root's. A root
    handler in place also makes the MCP SDK's ``logging.basicConfig`` (colours, boxes, wrapped lines) a no-op."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def http_app(settings: Settings, *, warm: WarmRetrievers | None = None, host: str = "127.0.0.1") -> Starlette:
    """The MCP server as an ASGI app answering streamable HTTP at the path ``/mcp``.

    In a host app, add it as the route ``/mcp`` (a route rather than a mount: the URL is ``/mcp`` itself, with no
    redirect to ``/mcp/``) and run its lifespan inside the host's, which starts the SDK's session manager (without
    it every request fails; it runs once per instance, so each lifespan needs a new app):
    :func:`pipelines.service.app.create_app` does both.

    Stateless, with JSON answers: no session to keep, so any worker can answer any request and proxies need no
    streaming. ``host`` is the interface served on: on a loopback one the SDK refuses requests whose ``Host`` or
    ``Origin`` is not loopback (DNS rebinding); elsewhere that check is off.
    """
    server = build_mcp(settings, warm=warm)
    return server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True, host=host)


def main(argv: list[str] | None = None) -> None:
    """``python -m pipelines.service.mcp --store DIR [--collection NAME]``; other settings from QWEN_RAG_*."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.service.mcp", description=run_stdio.__doc__)
    parser.add_argument("--store", type=Path, help="Directory of the Chroma store [env QWEN_RAG_STORE].")
    parser.add_argument("--collection", help="Collection searched by default [env QWEN_RAG_COLLECTION].")
    args = parser.parse_args(argv)
    run_stdio(Settings(**{key: value for key, value in vars(args).items() if value is not None}))


if __name__ == "__main__":
    main()
