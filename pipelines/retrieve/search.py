"""The search itself: one collection, one embedding provider, per-call options; dense, BM25 and hybrid candidates,
filters, MMR and the rerank step. :class:`pipelines.retrieve.retriever.QwenRagRetriever` is this as a LangChain
retriever; the CLI calls it directly, without LangChain's Runnable and tracing machinery (importing
``langchain_core.retrievers`` costs about as much as importing Chroma: docs/benchmarks.md, "Start-up").

Each returned ``Document`` carries its citation metadata (``source``, ``page``, ``start_index``, and ``section``,
``sheet``, rows where the format gives them) and its ``score``, higher is better: dense, the cosine similarity of
query and passage; hybrid, the fused score in [0, 1] (:mod:`pipelines.retrieve.fusion`; ``dense_score`` and
``bm25_score`` beside it); bm25, the BM25 score over the best hit's (``bm25_score``: the raw one).

>>> from pipelines.settings import Settings
>>> search = open_search(Settings(store="/tmp/qwen-rag-doc", k=2))           # doctest: +SKIP
>>> [d.metadata["source"] for d in search.search("什么是人工智能？")]         # doctest: +SKIP
['ml.txt', 'dl.txt']
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Include
from langchain_core.documents import Document

from pipelines.embeddings import Provider, make_embeddings
from pipelines.errors import ConfigError, StoreError
from pipelines.retrieve import filters
from pipelines.retrieve.context import with_windows
from pipelines.retrieve.fusion import DENSE_SCALE, convex_fusion, reciprocal_rank_fusion, script_agreement
from pipelines.retrieve.lexical import LexicalHit, LexicalIndex
from pipelines.retrieve.lexical_sync import lexical_sync
from pipelines.retrieve.options import MAX_K, RERANK, options
from pipelines.settings import Fusion, Mode, Settings
from pipelines.store import marker
from pipelines.store.chroma import Store, included, open_store
from pipelines.store.paging import pages
from pipelines.store.records import SOURCE
from pipelines.store.signature import IndexSignature, guard, query_task

if TYPE_CHECKING:
    # A type only: importing it loads LangChain's callbacks and runnables (0.3 s of every CLI query's start).
    from langchain_core.documents import BaseDocumentCompressor

    from pipelines.embeddings.ahead import Helper


class Search:
    """Top-k passages from a qwen-rag collection. One instance serves many calls (from many threads): it keeps its
    embedding provider, its reranker and its BM25 index warm."""

    def __init__(
        self,
        *,
        collection: Collection,
        embeddings: Provider | None,
        dimension: int,
        settings: Settings,
        store: Store,
        reranker: BaseDocumentCompressor | None = None,
        search_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.collection = collection
        self.embeddings = embeddings  # None: a search for BM25 alone (see open_search's lexical_only)
        self.dimension = dimension
        self.settings = settings
        self.store = store
        self.reranker = reranker
        self.search_kwargs = dict(search_kwargs or {})
        # Derived data, kept while the collection's change marker is unchanged: the list of sources.
        self._sources: tuple[str | None, list[str]] | None = None
        self._lock = threading.Lock()
        self.options({})  # an unknown or out-of-range option fails here, not on the first query

    @property
    def k(self) -> int:
        return self.options({}).k

    def options(self, overrides: dict[str, Any]) -> Settings:
        """The settings for one call: the retriever's settings, its ``search_kwargs``, then ``overrides``."""
        return options(options(self.settings, self.search_kwargs), overrides)

    def search(self, query: str, **kwargs: Any) -> list[Document]:
        """The passages for ``query``, best first; ``kwargs`` override the options for this call."""
        self.store.check_readable()  # another process writing an embedded store: one line, not empty passages
        s = self.options(kwargs)
        rerank = {**self.search_kwargs, **kwargs}.get(RERANK, self.reranker is not None)
        if rerank and self.reranker is None:
            raise ConfigError("this retriever has no reranker: set --rerank-url")
        reranker = self.reranker if rerank else None
        # With a reranker, the first stage hands it more candidates than the k it will return.
        first = max(s.k, s.rerank_candidates) if reranker is not None else s.k
        if s.mode is Mode.BM25:
            docs = self._bm25(query, first, s)
        elif s.mode is Mode.DENSE:
            docs = self._dense(query, first, s, self._provider(s))
        else:
            docs = self._hybrid(query, first, s, self._provider(s))
        if reranker is not None:
            docs = list(reranker.compress_documents(docs, query))
        docs = docs[: s.k]
        return with_windows(self.collection, docs, s.window) if s.window else docs

    def embed_ahead(self, query: str, helper: Helper) -> None:
        """For a one-shot process (the CLI's ``query``), before :meth:`search` of ``query`` with the default options:
        ``helper`` embeds it while this process has Chroma load the collection's index, which holds the GIL
        (:mod:`pipelines.embeddings.ahead`). A BM25 search needs no vector: the helper is let go."""
        s = self.options({})
        if s.mode is Mode.BM25:
            helper.close()
            return
        self.embeddings = helper.ask(self._provider(s), query, s.task)
        self.collection.count()  # the first read of the collection loads its index

    def _provider(self, s: Settings) -> Provider:
        """The embedding provider for a call's options (its task, if the call gives one)."""
        if self.embeddings is None:
            raise ConfigError(f"this search was opened for BM25 alone: --mode {s.mode.value} needs embeddings")
        return self.embeddings if s.task is None else self.embeddings.with_task(s.task)

    # -- lexical and fused ---------------------------------------------------------------------------------

    def _lexical_index(self) -> LexicalIndex:
        """The lexical index, caught up first with whatever changed in the collection (its marker moved)."""
        return lexical_sync(self.store, self.collection.name).current(self.store, self.collection)

    def _lexical_hits(self, query: str, k: int, s: Settings, index: LexicalIndex | None = None) -> list[LexicalHit]:
        """The ``k`` best BM25 hits that pass the filters: scored only over the chunks the filters allow (exact:
        never fewer than ``k`` when ``k`` matching chunks exist)."""
        return (index or self._lexical_index()).search(query, k, only=self._allowed_ids(s))

    def _allowed_ids(self, s: Settings) -> set[str] | None:
        """The ids of the chunks the filters allow, or None when there are no filters."""
        where = self._where(s)
        if where is None:
            return None
        return {cid for page in pages(self.collection, include=[], where=where) for cid in page["ids"]}

    def _bm25(self, query: str, k: int, s: Settings) -> list[Document]:
        """BM25 order; the score is the BM25 score over the best hit's (1.0 first, in (0, 1]), the raw BM25 score
        is ``bm25_score``."""
        index = self._lexical_index()
        hits = self._lexical_hits(query, k, s, index)
        # From the index, which keeps each chunk's text and metadata: no read of the collection (see there).
        kept = index.passages([hit.id for hit in hits])
        best = hits[0].score if hits else 1.0
        docs = []
        for hit in hits:
            passage = kept.get(hit.id)
            if passage is None or not _whole(passage.text, passage.metadata):
                continue  # replaced by a commit between the search and the read: no passage
            metadata = {**passage.metadata, "score": round(hit.score / best, 6), "bm25_score": round(hit.score, 6)}
            docs.append(Document(page_content=passage.text, metadata=metadata, id=hit.id))
        if s.min_score is not None:
            docs = [d for d in docs if d.metadata["score"] >= s.min_score]
        return docs

    def _hybrid(self, query: str, k: int, s: Settings, embeddings: Provider) -> list[Document]:
        pool = max(k, s.rerank_candidates)
        vector = self._embed_query(query, embeddings)
        if s.fusion is Fusion.RRF:
            dense = self._dense_hits(vector, pool, s)
            lexical = {hit.id: hit for hit in self._lexical_hits(query, pool, s)}
            fused = reciprocal_rank_fusion(
                [list(dense), list(lexical)], weights=[s.dense_weight, s.bm25_weight], k=s.rrf_k
            )
        else:
            # The dense scale runs down to the DENSE_SCALE-th passage whatever k is, so a passage's score does not
            # depend on how many a call asks for. Then both signals for every candidate, exactly: the cosine of
            # those only BM25 found, the BM25 hit (if any) of those only the vectors found.
            dense = self._dense_hits(vector, max(pool, DENSE_SCALE), s)
            index = self._lexical_index()  # one marker check for the whole query
            lexical = {hit.id: hit for hit in self._lexical_hits(query, pool, s, index)}
            floor = list(dense.values())[:DENSE_SCALE][-1] if dense else None
            dense_only = [cid for cid in dense if cid not in lexical]
            if dense_only:
                lexical |= {hit.id: hit for hit in index.search(query, len(dense_only), only=dense_only)}
            dense |= self._cosines(vector, [cid for cid in lexical if cid not in dense])
            fused = self._fuse_with_agreement(query, k, dense, lexical, floor, s)
        chosen = fused[:k]
        docs = {str(d.id): d for d in self._fetch([cid for cid, _ in chosen], None)}
        out = []
        for cid, score in chosen:
            doc = docs.get(cid)
            if doc is None:  # deleted between the ranking and the fetch
                continue
            doc.metadata["score"] = round(score, 6)
            if cid in dense:
                doc.metadata["dense_score"] = round(dense[cid], 6)
            if cid in lexical:
                doc.metadata["bm25_score"] = round(lexical[cid].score, 6)
            out.append(doc)
        if s.min_score is not None:
            out = [d for d in out if d.metadata["score"] >= s.min_score]
        return out

    def _fuse_with_agreement(
        self,
        query: str,
        k: int,
        dense: dict[str, float],
        lexical: dict[str, LexicalHit],
        floor: float | None,
        s: Settings,
    ) -> list[tuple[str, float]]:
        """Convex fusion with each passage's script agreement, reading the texts of those that can reach the top
        ``k`` only. An agreement (0..1) can only lower a passage's score, and an unknown one counts as 1: so once the
        top ``k`` all have theirs known, no passage below them can climb past them, and the order is exact (the
        threshold algorithm). Most queries read a handful of texts instead of every BM25 candidate's (16 ms of a
        50 ms query at 100k chunks)."""
        agreement: dict[str, float] = {}
        window = max(k, 16)  # texts read per round, doubling: a read costs ~2 ms however few it holds
        while True:
            fused = convex_fusion(
                dense, lexical, alpha=s.fusion_alpha, tau=s.coverage_tau, dense_floor=floor, agreement=agreement
            )
            if all(cid not in lexical or cid in agreement for cid, _ in fused[:k]):
                return fused
            unknown = [cid for cid, _ in fused[:window] if cid in lexical and cid not in agreement]
            window *= 2
            agreement |= self._script_agreement(query, unknown)
            agreement |= {cid: 0.0 for cid in unknown if cid not in agreement}  # deleted meanwhile: no text

    def _script_agreement(self, query: str, ids: list[str]) -> dict[str, float]:
        """How far each passage is written in the query's script (:func:`.fusion.script_agreement`)."""
        if not ids:
            return {}
        got = self.collection.get(ids=ids, include=["documents"])
        return {
            str(cid): script_agreement(query, text or "")
            for cid, text in zip(got["ids"], got["documents"] or [], strict=True)
        }

    def _cosines(self, vector: list[float], ids: list[str]) -> dict[str, float]:
        """The cosine similarity of ``vector`` to each stored chunk in ``ids``, from the stored embeddings."""
        if not ids:
            return {}
        got = self.collection.get(ids=ids, include=["embeddings"])
        stored = np.asarray(got["embeddings"], dtype=np.float64)
        query = np.asarray(vector, dtype=np.float64)
        norms = np.linalg.norm(stored, axis=1) * np.linalg.norm(query)
        similarity = stored @ query / np.where(norms > 0, norms, 1.0)
        return {str(cid): float(value) for cid, value in zip(got["ids"], similarity, strict=True)}

    def _fetch(self, ids: list[str], where: dict[str, Any] | None) -> list[Document]:
        """Chunks by id, in the given order, keeping only those that pass the filters."""
        if not ids:
            return []
        got = self.collection.get(ids=ids, where=where, include=["documents", "metadatas"])
        texts, metas = included(got["documents"], "documents"), included(got["metadatas"], "metadatas")
        found = {
            cid: Document(page_content=text, metadata=dict(meta), id=cid)
            for cid, text, meta in zip(got["ids"], texts, metas, strict=True)
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

    def _dense_hits(self, vector: list[float], k: int, s: Settings) -> dict[str, float]:
        """The ``k`` nearest chunks that pass the filters: chunk id -> cosine similarity, best first."""
        queries: list[Sequence[float]] = [vector]  # Chroma's type: a list of any sequence of floats
        found = self.collection.query(
            query_embeddings=queries, n_results=k, where=self._where(s), include=["distances"]
        )
        # Chroma's cosine space returns the distance 1 - cosine.
        distances = included(found["distances"], "distances")[0]
        return {str(cid): 1.0 - float(dist) for cid, dist in zip(found["ids"][0], distances, strict=True)}

    def _dense(self, query: str, k: int, s: Settings, embeddings: Provider) -> list[Document]:
        vector = self._embed_query(query, embeddings)
        fetch = max(k, s.rerank_candidates) if s.mmr else k
        include: Include = ["documents", "metadatas", "distances"]
        if s.mmr:
            include.append("embeddings")
        queries: list[Sequence[float]] = [vector]  # Chroma's type: a list of any sequence of floats
        found = self.collection.query(query_embeddings=queries, n_results=fetch, where=self._where(s), include=include)
        ids, texts = found["ids"][0], included(found["documents"], "documents")[0]
        metas, distances = included(found["metadatas"], "metadatas")[0], included(found["distances"], "distances")[0]
        kept = [i for i, (text, meta) in enumerate(zip(texts, metas, strict=True)) if _whole(text, meta)]
        docs = [
            Document(
                page_content=texts[i], metadata={**metas[i], "score": round(1.0 - float(distances[i]), 6)}, id=ids[i]
            )
            for i in kept
        ]
        if s.mmr and docs:
            from langchain_core.vectorstores.utils import maximal_marginal_relevance  # only for MMR: it is slow to load

            embedded: Sequence[Any] = included(found["embeddings"], "embeddings")
            vectors = [list(embedded[0][i]) for i in kept]
            chosen = maximal_marginal_relevance(np.asarray(vector), vectors, lambda_mult=s.mmr_lambda, k=k)
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


def open_search(
    settings: Settings | None = None,
    *,
    embeddings: Provider | None = None,
    store: Store | None = None,
    k: int | None = None,
    search_kwargs: dict[str, Any] | None = None,
    lexical_only: bool = False,
) -> Search:
    """A retriever over the configured collection; refuses a collection built with another model. Queries carry
    the task given (``settings.task``), else the one the collection was ingested with, else the model's own.

    ``lexical_only``: for BM25 searches alone (the CLI's ``query --mode bm25``). The embedding server is neither
    asked nor needed (BM25 reads words: it answers while the server is down), so the collection's model is not
    checked against it; a dense or hybrid search on it fails with one line."""
    settings = settings or Settings()
    if embeddings is None and not lexical_only:
        embeddings = make_embeddings(settings, deferred=True)
    store = store or open_store(settings)
    found = store.existing(settings.collection)
    if found is None:
        raise StoreError(f"no collection '{settings.collection}' in {store.where}: run `qwen-rag ingest` first")
    signature = IndexSignature.from_metadata(found.metadata)
    # Without a provider, the collection's own model: only a collection that is not qwen-rag's is refused.
    model = embeddings.model_id if embeddings is not None else signature.model if signature else ""
    recorded = guard(settings.collection, store.where, signature, model, settings.dimensions)
    task = query_task(settings.task, found.metadata)
    if task is not None and embeddings is not None:
        embeddings = embeddings.with_task(task)
    # The reranker returns as many as any call may ask for (k's bound): each call cuts the list to its own k.
    reranker = None
    if settings.rerank_url:
        from pipelines.retrieve.rerank import make_reranker  # only for a reranker: it loads LangChain's compressors

        reranker = make_reranker(settings.rerank_url, settings.rerank_model, top_n=MAX_K)
    kwargs = dict(search_kwargs or {})
    if k is not None:
        kwargs["k"] = k
    return Search(
        collection=found,
        embeddings=embeddings,
        dimension=recorded.dimension,
        settings=settings,
        store=store,
        reranker=reranker,
        search_kwargs=kwargs,
    )
