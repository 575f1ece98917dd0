"""``build_retriever()``: the LangChain retriever chatbot apps plug in.

Each returned ``Document`` carries its citation metadata (``source``, ``page``, ``start_index``) and its ``score``
(dense: cosine similarity of query and passage; bm25/hybrid: the fused or BM25 score; higher is better).

>>> from pipelines import build_retriever, Settings
>>> retriever = build_retriever(Settings(store="/tmp/qwen-rag-doc", k=2))     # doctest: +SKIP
>>> [d.metadata["source"] for d in retriever.invoke("什么是人工智能？")]       # doctest: +SKIP
['ml.txt', 'dl.txt']
"""

from __future__ import annotations

import fnmatch
from typing import Any

import numpy as np
from chromadb.api.models.Collection import Collection
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from pydantic import ConfigDict, PrivateAttr, model_validator

from pipelines.embeddings.providers import ServerEmbeddings, make_embeddings
from pipelines.retrieve.fusion import reciprocal_rank_fusion
from pipelines.retrieve.lexical import BM25Index
from pipelines.retrieve.lexical_sync import sync_bm25
from pipelines.retrieve.rerank import make_reranker
from pipelines.settings import Mode, Settings
from pipelines.store.chroma import TASK_KEY, IndexSignature, Store, StoreError, open_store
from pipelines.store.records import SOURCE

#: (store, collection) -> (chunk count when loaded, BM25 index).
_LEXICAL: dict[tuple[str, str], tuple[int, BM25Index]] = {}


class QwenRagRetriever(BaseRetriever):
    """Top-k passages from a qwen-rag collection (sync and async through LangChain's ``Runnable`` interface)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: Collection
    embeddings: Embeddings
    dimension: int
    settings: Settings
    store: Store
    reranker: BaseDocumentCompressor | None = None
    _sources: tuple[int, list[str]] | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _k_into_settings(cls, data: Any) -> Any:
        """``QwenRagRetriever(k=3, ...)`` as LangChain retrievers take it; k lives in the settings."""
        if isinstance(data, dict) and "k" in data:
            data = dict(data)
            data["settings"] = _with_k(data["settings"], data.pop("k"))
        return data

    @property
    def k(self) -> int:
        return self.settings.k

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # ``invoke(query, k=3)`` overrides the settings for this call, as LangChain retrievers allow.
        s = self.settings if kwargs.get("k") is None else _with_k(self.settings, kwargs["k"])
        # With a reranker, the first stage hands it more candidates than the k it will return.
        first = max(s.k, s.rerank_candidates) if self.reranker is not None else s.k
        if s.mode is Mode.DENSE:
            docs = self._dense(query, first)
        elif s.mode is Mode.BM25:
            docs = self._bm25(query, first)
        else:
            docs = self._hybrid(query, first)
        if self.reranker is not None:
            docs = list(self.reranker.compress_documents(docs, query))
        return docs[: s.k]

    # -- lexical and fused ---------------------------------------------------------------------------------

    def _lexical(self) -> BM25Index:
        """The BM25 index, shared by every retriever of this collection in the process (the service builds one
        per request); re-synced when the collection changed size since it was loaded."""
        count = self.collection.count()
        key = (self.store.where, self.collection.name)
        cached = _LEXICAL.get(key)
        if cached is None or cached[0] != count:
            cached = (count, sync_bm25(self.store, self.collection))
            _LEXICAL[key] = cached  # a dict store is atomic; two threads may both load, one wins
        return cached[1]

    def _bm25(self, query: str, k: int) -> list[Document]:
        where = self._where()
        # Filters apply after BM25 ranks; fetch extra so that k survive a selective filter.
        hits = self._lexical().search(query, k if where is None else max(k * 10, self.settings.rerank_candidates))
        docs = self._fetch([cid for cid, _ in hits], where)
        scores = dict(hits)
        for doc in docs:
            doc.metadata["score"] = round(scores[str(doc.id)], 6)
        return docs[:k]

    def _hybrid(self, query: str, k: int) -> list[Document]:
        s = self.settings
        pool = max(k, s.rerank_candidates)
        dense = self._dense(query, pool)
        lexical = self._bm25(query, pool)
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
            cid: Document(page_content=text or "", metadata=dict(meta or {}), id=cid)
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
        return [found[cid] for cid in ids if cid in found]

    # -- dense ---------------------------------------------------------------------------------------------

    def _embed_query(self, query: str) -> list[float]:
        vector = self.embeddings.embed_query(query)
        if len(vector) != self.dimension:
            raise StoreError(
                f"the query vector has {len(vector)} dims but the collection holds {self.dimension}: "
                "the server's model or --dimensions changed since the ingest"
            )
        return vector

    def _dense(self, query: str, k: int) -> list[Document]:
        s = self.settings
        vector = self._embed_query(query)
        fetch = max(k, s.rerank_candidates) if s.mmr else k
        include = ["documents", "metadatas", "distances"] + (["embeddings"] if s.mmr else [])
        found = self.collection.query(query_embeddings=[vector], n_results=fetch, where=self._where(), include=include)
        docs = [
            Document(page_content=text or "", metadata={**(meta or {}), "score": round(1.0 - float(dist), 6)}, id=cid)
            for cid, text, meta, dist in zip(
                found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0], strict=True
            )
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

    def _where(self) -> dict[str, Any] | None:
        """Metadata filters as a Chroma ``where``; a source glob becomes the list of sources it matches."""
        s = self.settings
        clauses: list[dict[str, Any]] = []
        if s.file_type:
            clauses.append({"file_type": s.file_type})
        if s.page_from is not None:
            clauses.append({"page": {"$gte": s.page_from}})
        if s.page_to is not None:
            clauses.append({"page": {"$lte": s.page_to}})
        if s.source:
            matching = [src for src in self._all_sources() if fnmatch.fnmatchcase(src, s.source)]
            # No match must match nothing, not everything.
            clauses.append({SOURCE: {"$in": matching or ["\x00none"]}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def _all_sources(self) -> list[str]:
        """Distinct sources, cached until the collection's size changes (Chroma cannot match globs itself)."""
        count = self.collection.count()
        if self._sources is None or self._sources[0] != count:
            sources: set[str] = set()
            offset, step = 0, 5000
            while True:
                page = self.collection.get(include=["metadatas"], limit=step, offset=offset)
                sources.update(str((m or {}).get(SOURCE)) for m in page["metadatas"] or [])
                if len(page["ids"]) < step:
                    break
                offset += step
            self._sources = (count, sorted(sources))
        return self._sources[1]


def _with_k(settings: Settings, k: int) -> Settings:
    """A copy of ``settings`` with another k, checked against the field's bounds as ``Settings(k=...)`` is."""
    copy = settings.model_copy()
    Settings.__pydantic_validator__.validate_assignment(copy, "k", k)
    return copy


def build_retriever(
    settings: Settings | None = None,
    *,
    embeddings: Embeddings | None = None,
    store: Store | None = None,
    k: int | None = None,
) -> QwenRagRetriever:
    """A retriever over the configured collection; refuses a collection built with another model."""
    settings = settings or Settings()
    if k is not None:
        settings = settings.model_copy(update={"k": k})
    embeddings = embeddings if embeddings is not None else make_embeddings(settings)
    store = store or open_store(settings)
    found = store.existing(settings.collection)
    if found is None:
        raise StoreError(f"no collection '{settings.collection}' in {store.where}: run `qwen-rag ingest` first")
    recorded = IndexSignature.from_metadata(found.metadata)
    model = embeddings.model_id  # type: ignore[attr-defined]
    if recorded is None or recorded.model != model or settings.dimensions not in (None, recorded.dimension):
        wanted = IndexSignature(model, settings.dimensions or 0, "")
        raise StoreError(store.mismatch_message(settings.collection, recorded, wanted))
    task = settings.task or (found.metadata or {}).get(TASK_KEY)
    if task and isinstance(embeddings, ServerEmbeddings):
        embeddings = embeddings.model_copy(update={"task": str(task)})
    reranker = (
        make_reranker(settings.rerank_url, settings.rerank_model, top_n=settings.k) if settings.rerank_url else None
    )
    return QwenRagRetriever(
        collection=found,
        embeddings=embeddings,
        dimension=recorded.dimension,
        settings=settings,
        store=store,
        reranker=reranker,
    )
