"""``build_retriever()``: the LangChain retriever chatbot apps plug in.

Each returned ``Document`` carries its citation metadata (``source``, ``page``, ``start_index``, and ``section``,
``sheet``, rows where the format gives them) and its ``score`` (dense: cosine similarity of query and passage;
bm25/hybrid: the BM25 or fused score; higher is better).

Options (k, mode, filters, MMR, rerank, task) come from the settings, and can be overridden per retriever
(``search_kwargs``) or per call, as LangChain retrievers allow: ``retriever.invoke(query, k=3, mode="bm25")``.
One retriever serves many calls: it keeps its embedding provider, its reranker and its BM25 index warm.

>>> from pipelines import build_retriever, Settings
>>> retriever = build_retriever(Settings(store="/tmp/qwen-rag-doc", k=2))     # doctest: +SKIP
>>> [d.metadata["source"] for d in retriever.invoke("什么是人工智能？")]       # doctest: +SKIP
['ml.txt', 'dl.txt']
>>> retriever.invoke("什么是人工智能？", k=1, mode="dense")[0].metadata["source"]  # doctest: +SKIP
'ml.txt'
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from chromadb.api.models.Collection import Collection
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from pipelines.embeddings import Provider, make_embeddings
from pipelines.errors import ConfigError, StoreError
from pipelines.retrieve import filters
from pipelines.retrieve.fusion import reciprocal_rank_fusion
from pipelines.retrieve.lexical import LexicalIndex
from pipelines.retrieve.lexical_sync import lexical_sync
from pipelines.retrieve.options import MAX_K, RERANK, options
from pipelines.retrieve.rerank import make_reranker
from pipelines.settings import Mode, Settings
from pipelines.store import marker
from pipelines.store.chroma import Store, open_store
from pipelines.store.paging import pages
from pipelines.store.records import SOURCE
from pipelines.store.signature import IndexSignature, guard, query_task


class QwenRagRetriever(BaseRetriever):
    """Top-k passages from a qwen-rag collection (sync and async through LangChain's ``Runnable`` interface)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: Collection
    embeddings: Provider
    dimension: int
    settings: Settings
    store: Store
    reranker: BaseDocumentCompressor | None = None
    search_kwargs: dict[str, Any] = Field(default_factory=dict, description="Options over the settings' own.")
    # Derived data, kept while the collection's change marker is unchanged: the list of sources.
    _sources: tuple[str | None, list[str]] | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="before")
    @classmethod
    def _k_into_search_kwargs(cls, data: Any) -> Any:
        """``QwenRagRetriever(k=3, ...)`` as LangChain retrievers take it."""
        if isinstance(data, dict) and "k" in data:
            data = dict(data)
            data["search_kwargs"] = {**data.get("search_kwargs", {}), "k": data.pop("k")}
        return data

    @model_validator(mode="after")
    def _check_search_kwargs(self) -> QwenRagRetriever:
        self.options({})  # an unknown or out-of-range option fails here, not on the first query
        return self

    @property
    def k(self) -> int:
        return self.options({}).k

    def options(self, overrides: dict[str, Any]) -> Settings:
        """The settings for one call: the retriever's settings, its ``search_kwargs``, then ``overrides``."""
        return options(options(self.settings, self.search_kwargs), overrides)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        self.store.check_readable()  # another process writing an embedded store: one line, not empty passages
        s = self.options(kwargs)
        rerank = {**self.search_kwargs, **kwargs}.get(RERANK, self.reranker is not None)
        if rerank and self.reranker is None:
            raise ConfigError("this retriever has no reranker: set --rerank-url")
        reranker = self.reranker if rerank else None
        embeddings = self.embeddings if s.task is None else self.embeddings.with_task(s.task)
        # With a reranker, the first stage hands it more candidates than the k it will return.
        first = max(s.k, s.rerank_candidates) if reranker is not None else s.k
        if s.mode is Mode.DENSE:
            docs = self._dense(query, first, s, embeddings)
        elif s.mode is Mode.BM25:
            docs = self._bm25(query, first, s)
        else:
            docs = self._hybrid(query, first, s, embeddings)
        if reranker is not None:
            docs = list(reranker.compress_documents(docs, query))
        return docs[: s.k]

    # -- lexical and fused ---------------------------------------------------------------------------------

    def _lexical_index(self) -> LexicalIndex:
        """The lexical index, caught up first with whatever changed in the collection (its marker moved)."""
        return lexical_sync(self.store, self.collection.name).current(self.store, self.collection)

    def _bm25(self, query: str, k: int, s: Settings) -> list[Document]:
        where = self._where(s)
        # Filters apply after BM25 ranks; fetch extra so that k survive a selective filter.
        hits = self._lexical_index().search(query, k if where is None else max(k * 10, s.rerank_candidates))
        docs = self._fetch([hit.id for hit in hits], where)
        scores = {hit.id: hit.score for hit in hits}
        for doc in docs:
            doc.metadata["score"] = round(scores[str(doc.id)], 6)
        return docs[:k]

    def _hybrid(self, query: str, k: int, s: Settings, embeddings: Provider) -> list[Document]:
        pool = max(k, s.rerank_candidates)
        dense = self._dense(query, pool, s, embeddings)
        lexical = self._bm25(query, pool, s)
        fused = reciprocal_rank_fusion(
            [[str(d.id) for d in dense], [str(d.id) for d in lexical]],
            weights=[s.dense_weight, s.bm25_weight],
            k=s.rrf_k,
        )
        by_id = {str(d.id): d for d in lexical} | {str(d.id): d for d in dense}
        dense_scores = {str(d.id): d.metadata["score"] for d in dense}
        bm25_scores = {str(d.id): d.metadata["score"] for d in lexical}
        out = []
        for cid, score in fused[:k]:
            doc = by_id[cid]
            doc.metadata = {k_: v for k_, v in doc.metadata.items() if k_ not in ("dense_score", "bm25_score")}
            doc.metadata["score"] = round(score, 6)
            if cid in dense_scores:
                doc.metadata["dense_score"] = dense_scores[cid]
            if cid in bm25_scores:
                doc.metadata["bm25_score"] = bm25_scores[cid]
            out.append(doc)
        return out

    def _fetch(self, ids: list[str], where: dict[str, Any] | None) -> list[Document]:
        """Chunks by id, in the given order, keeping only those that pass the filters."""
        if not ids:
            return []
        got = self.collection.get(ids=ids, where=where, include=["documents", "metadatas"])
        found = {
            cid: Document(page_content=text, metadata=dict(meta), id=cid)
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            if _whole(text, meta)
        }
        return [found[cid] for cid in ids if cid in found]

    # -- dense ---------------------------------------------------------------------------------------------

    def _embed_query(self, query: str, embeddings: Provider) -> list[float]:
        vector = embeddings.embed_query(query)
        if len(vector) != self.dimension:
            raise StoreError(
                f"the query vector has {len(vector)} dims but the collection holds {self.dimension}: "
                "the server's model or --dimensions changed since the ingest"
            )
        return vector

    def _dense(self, query: str, k: int, s: Settings, embeddings: Provider) -> list[Document]:
        vector = self._embed_query(query, embeddings)
        fetch = max(k, s.rerank_candidates) if s.mmr else k
        include = ["documents", "metadatas", "distances"] + (["embeddings"] if s.mmr else [])
        found = self.collection.query(query_embeddings=[vector], n_results=fetch, where=self._where(s), include=include)
        rows = zip(found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0], strict=True)
        docs = [
            Document(page_content=text, metadata={**meta, "score": round(1.0 - float(dist), 6)}, id=cid)
            for cid, text, meta, dist in rows
            if _whole(text, meta)
        ]
        if s.mmr and docs:
            chosen = maximal_marginal_relevance(
                np.asarray(vector), list(found["embeddings"][0]), lambda_mult=s.mmr_lambda, k=k
            )
            docs = [docs[i] for i in chosen]
        if s.min_score is not None:
            docs = [d for d in docs if d.metadata["score"] >= s.min_score]
        return docs[:k]

    # -- filters -------------------------------------------------------------------------------------------

    def _where(self, s: Settings) -> dict[str, Any] | None:
        return filters.where(s, self._all_sources)

    def _all_sources(self) -> list[str]:
        """Distinct sources, cached until the collection's change marker moves."""
        current = marker.read(self.store, self.collection.name).value
        with self._lock:
            if self._sources is None or self._sources[0] != current:
                sources: set[str] = set()
                for page in pages(self.collection, include=["metadatas"]):
                    sources.update(str((m or {}).get(SOURCE)) for m in page["metadatas"] or [])
                self._sources = (current, sorted(sources))
            return self._sources[1]


def _whole(text: str | None, meta: Any) -> bool:
    """A stored chunk always has text and metadata. Chroma's vector index can name a chunk whose record is not (or
    no longer) readable, for a moment while the same process writes or deletes it: that is no passage."""
    return bool(text) and bool(meta)


def build_retriever(
    settings: Settings | None = None,
    *,
    embeddings: Provider | None = None,
    store: Store | None = None,
    k: int | None = None,
    search_kwargs: dict[str, Any] | None = None,
) -> QwenRagRetriever:
    """A retriever over the configured collection; refuses a collection built with another model. Queries carry
    the task given (``settings.task``), else the one the collection was ingested with, else the model's own."""
    settings = settings or Settings()
    embeddings = embeddings if embeddings is not None else make_embeddings(settings)
    store = store or open_store(settings)
    found = store.existing(settings.collection)
    if found is None:
        raise StoreError(f"no collection '{settings.collection}' in {store.where}: run `qwen-rag ingest` first")
    recorded = guard(
        settings.collection,
        store.where,
        IndexSignature.from_metadata(found.metadata),
        embeddings.model_id,
        settings.dimensions,
    )
    task = query_task(settings.task, found.metadata)
    if task is not None:
        embeddings = embeddings.with_task(task)
    # The reranker returns as many as any call may ask for (k's bound): each call cuts the list to its own k.
    reranker = make_reranker(settings.rerank_url, settings.rerank_model, top_n=MAX_K) if settings.rerank_url else None
    kwargs = dict(search_kwargs or {})
    if k is not None:
        kwargs["k"] = k
    return QwenRagRetriever(
        collection=found,
        embeddings=embeddings,
        dimension=recorded.dimension,
        settings=settings,
        store=store,
        reranker=reranker,
        search_kwargs=kwargs,
    )
