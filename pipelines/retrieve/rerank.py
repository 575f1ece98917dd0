"""Rerankers as LangChain document compressors: SGLang's ``/v1/rerank``, the ``/rerank`` schema of vLLM, Jina,
Cohere and Infinity, and a local sentence-transformers cross-encoder.

Each returns the ``top_n`` best documents, copies of the inputs with ``metadata["rerank_score"]`` set. If a server
is down or answers with an error, the first-stage order is kept (cut to ``top_n``, each document marked
``metadata["rerank_fallback"] = True``) and a warning goes to the ``pipelines.retrieve.rerank`` logger: a reranker
outage degrades answers, it does not fail them. Blank documents are never sent (SGLang refuses the whole request for
one); they go to the end, unscored.

>>> reranker = make_reranker("http://127.0.0.1:30000", model=None, top_n=3)
>>> from langchain_classic.retrievers import ContextualCompressionRetriever       # doctest: +SKIP
>>> retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=dense)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from abc import abstractmethod
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import Field, PrivateAttr, SecretStr

from pipelines.embeddings.profiles import DEFAULT_TASK

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

__all__ = [
    "AutoReranker",
    "CrossEncoderReranker",
    "RerankAPIReranker",
    "RerankKind",
    "RerankUnavailable",
    "Reranker",
    "SGLangReranker",
    "make_reranker",
]

logger = logging.getLogger("pipelines.retrieve.rerank")


Ranking = list[tuple[int, float]]
"""``(index into the documents sent, score)``, best first."""


class RerankKind(StrEnum):
    """Which reranker :func:`make_reranker` builds."""

    AUTO = "auto"  # a server; its answer tells the schema
    SGLANG = "sglang"  # POST {url}/v1/rerank, a bare list of {index, score}
    RERANK_API = "rerank-api"  # POST {url}/rerank, {"results": [{index, relevance_score}]}
    CROSS_ENCODER = "cross-encoder"  # a local sentence-transformers model directory


class RerankUnavailable(Exception):
    """The reranker could not score: down, timed out, an error status, or an answer we cannot read."""


class Reranker(BaseDocumentCompressor):
    """What every reranker here shares: blank documents, ``top_n``, the fallback and the output; subclasses only
    score texts. Use :func:`make_reranker` or one of the subclasses."""

    top_n: int = Field(5, ge=1, description="How many documents to return.")

    @abstractmethod
    def _score(self, query: str, texts: list[str]) -> Ranking: ...

    async def _ascore(self, query: str, texts: list[str]) -> Ranking:
        return await asyncio.to_thread(self._score, query, texts)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> list[Document]:
        """The ``top_n`` of ``documents`` reranked for ``query``, best first."""
        scored, blank = _partition(documents)
        if not scored or not query.strip():
            return self._unranked(documents, blank, query)
        try:
            ranking = self._score(query, [d.page_content for d in scored])
        except RerankUnavailable as error:
            return self._fallback(documents, error)
        return self._assemble(scored, ranking, blank)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> list[Document]:
        """Async :meth:`compress_documents`."""
        scored, blank = _partition(documents)
        if not scored or not query.strip():
            return self._unranked(documents, blank, query)
        try:
            ranking = await self._ascore(query, [d.page_content for d in scored])
        except RerankUnavailable as error:
            return self._fallback(documents, error)
        return self._assemble(scored, ranking, blank)

    def _assemble(self, scored: list[Document], ranking: Ranking, blank: list[Document]) -> list[Document]:
        ranked = [_with_metadata(scored[i], rerank_score=score) for i, score in ranking]
        return (ranked + blank)[: self.top_n]

    def _unranked(self, documents: Sequence[Document], blank: list[Document], query: str) -> list[Document]:
        if not query.strip() and len(blank) < len(documents):
            # Servers refuse a blank query (400); there is nothing to rank by either.
            return self._fallback(documents, RerankUnavailable("the query is blank"))
        return list(documents[: self.top_n])  # nothing but blank documents: nothing to score

    def _fallback(self, documents: Sequence[Document], error: RerankUnavailable) -> list[Document]:
        logger.warning("%s unavailable (%s); keeping the first-stage order", self._describe(), error)
        return [_with_metadata(d, rerank_fallback=True) for d in documents[: self.top_n]]

    def _describe(self) -> str:
        return type(self).__name__


class _HTTPReranker(Reranker):
    """A reranker behind an HTTP endpoint: subclasses give the path, the request body and the response reading."""

    url: str = Field(description="The server (``http://host:port``) or the full endpoint URL.")
    model: str | None = Field(None, description="Model name sent to the server; omitted when None.")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for the server before falling back.")
    api_key: SecretStr | None = Field(None, description="Sent as ``Authorization: Bearer``.")

    def __init__(self, url: str | None = None, /, **data: Any) -> None:
        """``url`` may be given positionally."""
        if url is not None:
            data["url"] = url
        super().__init__(**data)

    _path: ClassVar[str] = "/rerank"

    def endpoint(self) -> str:
        """The URL posted to: ``url`` itself if it names a rerank route, ``url + /rerank`` if it ends in ``/v1``
        (an OpenAI-style base URL), else ``url`` + this schema's path."""
        url = self.url.rstrip("/")
        if url.endswith("/rerank"):
            return url
        return url + "/rerank" if url.endswith("/v1") else url + self._path

    @abstractmethod
    def _payload(self, query: str, texts: list[str]) -> dict[str, Any]: ...

    @abstractmethod
    def _parse(self, body: Any, count: int) -> Ranking: ...

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"} if self.api_key else {}

    def _score(self, query: str, texts: list[str]) -> Ranking:
        try:
            with httpx.Client(timeout=self.timeout) as client:
                response = client.post(self.endpoint(), json=self._payload(query, texts), headers=self._headers())
        except httpx.HTTPError as error:
            raise RerankUnavailable(_describe_transport(error)) from error
        return self._read(response, len(texts))

    async def _ascore(self, query: str, texts: list[str]) -> Ranking:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                payload = self._payload(query, texts)
                response = await client.post(self.endpoint(), json=payload, headers=self._headers())
        except httpx.HTTPError as error:
            raise RerankUnavailable(_describe_transport(error)) from error
        return self._read(response, len(texts))

    def _read(self, response: httpx.Response, count: int) -> Ranking:
        if response.status_code != 200:
            raise RerankUnavailable(f"HTTP {response.status_code}: {_error_message(response)}")
        try:
            return self._parse(response.json(), count)
        except (ValueError, TypeError, KeyError) as error:
            raise RerankUnavailable(f"unreadable answer: {error}") from error

    def _describe(self) -> str:
        return f"reranker at {self.endpoint()}"


class SGLangReranker(_HTTPReranker):
    """SGLang's ``POST /v1/rerank`` (Qwen3-Reranker or a cross-encoder served by SGLang).

    >>> reranker = SGLangReranker("http://127.0.0.1:30000", top_n=3)
    >>> reranker.compress_documents(docs, "what is BM25?")            # doctest: +SKIP
    """

    # Qwen3-Reranker's default task is the embedding model's (no trailing period: SGLang's template adds one).
    instruction: str = Field(DEFAULT_TASK, description="The reranker's task, sent as ``instruct``.")

    _path: ClassVar[str] = "/v1/rerank"

    def _payload(self, query: str, texts: list[str]) -> dict[str, Any]:
        payload = {
            "query": query,
            "documents": texts,
            "instruct": self.instruction,
            "top_n": min(self.top_n, len(texts)),
            "return_documents": False,  # we hold the texts; do not pay to ship them back
        }
        return {"model": self.model, **payload} if self.model else payload

    def _parse(self, body: Any, count: int) -> Ranking:
        if not isinstance(body, list):
            raise ValueError(f"expected a JSON list, got {type(body).__name__}")
        return _ranking(((item["index"], item["score"]) for item in body), count)


class RerankAPIReranker(_HTTPReranker):
    """The ``/rerank`` schema of vLLM, Jina, Cohere (v1) and Infinity: ``{"model", "query", "documents", "top_n"}``
    in, ``{"results": [{"index", "relevance_score"}]}`` out.

    >>> reranker = RerankAPIReranker("http://127.0.0.1:8000", model="BAAI/bge-reranker-v2-m3", top_n=3)
    """

    def _payload(self, query: str, texts: list[str]) -> dict[str, Any]:
        payload = {"query": query, "documents": texts, "top_n": min(self.top_n, len(texts))}
        return {"model": self.model, **payload} if self.model else payload

    def _parse(self, body: Any, count: int) -> Ranking:
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise ValueError('expected a JSON object with a "results" list')
        return _ranking(((item["index"], item["relevance_score"]) for item in body["results"]), count)


class AutoReranker(_HTTPReranker):
    """A server whose schema is not known: posts to ``/v1/rerank`` (served by SGLang, vLLM, Jina and Cohere) a body
    both schemas accept, reads the answer by its shape and keeps the schema found for later calls.

    >>> reranker = AutoReranker("http://127.0.0.1:30000", top_n=3)
    """

    instruction: str = Field(DEFAULT_TASK, description="Sent as ``instruct`` if the server is SGLang.")

    _path: ClassVar[str] = "/v1/rerank"
    _found: _HTTPReranker | None = PrivateAttr(None)

    @property
    def kind(self) -> RerankKind:
        """``AUTO`` until a server has answered, then the schema it answered in."""
        if isinstance(self._found, SGLangReranker):
            return RerankKind.SGLANG
        return RerankKind.AUTO if self._found is None else RerankKind.RERANK_API

    def _payload(self, query: str, texts: list[str]) -> dict[str, Any]:
        if self._found is not None:
            return self._found._payload(query, texts)
        # SGLang ignores "model"; vLLM keeps unknown fields such as "instruct".
        return self._as(SGLangReranker)._payload(query, texts)

    def _parse(self, body: Any, count: int) -> Ranking:
        if self._found is not None:
            return self._found._parse(body, count)
        schema = RerankAPIReranker if isinstance(body, dict) and "results" in body else SGLangReranker
        candidate = self._as(schema)
        ranking = candidate._parse(body, count)
        self._found = candidate  # only an answer that parsed decides the schema
        return ranking

    def _as(self, schema: type[_HTTPReranker]) -> _HTTPReranker:
        fields = {"url": self.endpoint(), "model": self.model, "top_n": self.top_n, "timeout": self.timeout}
        extra = {"instruction": self.instruction} if schema is SGLangReranker else {}
        return schema(**fields, api_key=self.api_key, **extra)


class CrossEncoderReranker(Reranker):
    """A sentence-transformers ``CrossEncoder`` loaded from a local model directory (no hub access), on first use
    or by :meth:`warm_up`. Errors loading or running it are raised: there is no server to be down.

    >>> reranker = CrossEncoderReranker(Path("models/bge-reranker-base"), top_n=3)
    >>> reranker.warm_up()                                            # doctest: +SKIP
    """

    model_dir: Path = Field(description="A directory written by ``CrossEncoder.save`` (or a HF model snapshot).")
    batch_size: int = Field(32, ge=1, description="Pairs per forward pass.")

    _model: CrossEncoder | None = PrivateAttr(None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model_dir: Path | str | None = None, /, **data: Any) -> None:
        """``model_dir`` may be given positionally."""
        if model_dir is not None:
            data["model_dir"] = model_dir
        super().__init__(**data)

    def warm_up(self) -> CrossEncoder:
        """Load the model now (importing torch takes seconds) rather than on the first query."""
        with self._lock:
            if self._model is None:
                if not self.model_dir.is_dir():
                    raise FileNotFoundError(f"{self.model_dir}: no such cross-encoder model directory")
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(str(self.model_dir), device="cpu", local_files_only=True)
            return self._model

    def _score(self, query: str, texts: list[str]) -> Ranking:
        scores = self.warm_up().predict(
            [(query, text) for text in texts], batch_size=self.batch_size, show_progress_bar=False
        )
        return _ranking(enumerate(scores.tolist()), len(texts))

    def _describe(self) -> str:
        return f"cross-encoder {self.model_dir}"


def make_reranker(
    url: str | None, model: str | None, top_n: int, kind: RerankKind | str = RerankKind.AUTO
) -> Reranker | None:
    """The reranker for a settings value: None for no reranking; a local directory is a cross-encoder; an
    ``http(s)://`` URL is a server of ``kind`` (``auto`` finds the schema on the first call).

    >>> make_reranker("http://127.0.0.1:8000", "BAAI/bge-reranker-v2-m3", top_n=5, kind="rerank-api").endpoint()
    'http://127.0.0.1:8000/rerank'
    """
    if url is None:
        return None
    kind = RerankKind(kind)
    is_url = url.startswith(("http://", "https://"))
    if kind is RerankKind.CROSS_ENCODER or (kind is RerankKind.AUTO and not is_url):
        if not Path(url).expanduser().is_dir():
            raise ValueError(f"reranker {url!r} is neither an http(s):// URL nor a model directory")
        return CrossEncoderReranker(Path(url).expanduser(), top_n=top_n)
    if not is_url:
        raise ValueError(f"a {kind.value} reranker needs an http(s):// URL, got {url!r}")
    schema = {RerankKind.SGLANG: SGLangReranker, RerankKind.RERANK_API: RerankAPIReranker}.get(kind, AutoReranker)
    return schema(url, model=model, top_n=top_n)


def _partition(documents: Sequence[Document]) -> tuple[list[Document], list[Document]]:
    scored = [d for d in documents if d.page_content.strip()]
    blank = [d for d in documents if not d.page_content.strip()]
    return scored, blank


def _ranking(pairs: Any, count: int) -> Ranking:
    """Checked ``(index, score)`` pairs, best first (stable: equal scores keep the server's order), each index
    once."""
    ranking: Ranking = []
    seen: set[int] = set()
    for index, score in pairs:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ValueError(f"index {index!r} does not point into the {count} documents sent")
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise ValueError(f"score {score!r} is not a finite number")
        if index not in seen:
            seen.add(index)
            ranking.append((index, float(score)))
    return sorted(ranking, key=lambda pair: -pair[1])


def _with_metadata(document: Document, **values: Any) -> Document:
    """A copy: the caller's documents (maybe cached by the first stage) are not changed."""
    return document.model_copy(update={"metadata": {**document.metadata, **values}})


def _describe_transport(error: httpx.HTTPError) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _error_message(response: httpx.Response) -> str:
    """The server's own message: SGLang's flat ``{"message"}``, OpenAI-style ``{"error": {"message"}}``, a bare
    ``{"error": "..."}``, FastAPI's ``{"detail"}``, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        message = (
            (error.get("message") if isinstance(error, dict) else error) or body.get("message") or body.get("detail")
        )
        if message:
            return str(message)[:200]
    return str(body)[:200]
