"""Warm retrievers for long-running surfaces (the HTTP service, the MCP server): one retriever per collection,
built on first use and kept, so the embedding model, the reranker and the BM25 index load once, not per request.

What fails to build (an embedding server or a Chroma server that is down, a collection not yet ingested) is not
kept: the next request tries again. At most ``limit`` retrievers stay warm (each holds its collection's BM25 index in
memory): using another one drops the least recently used, which its next request builds again.

>>> from pipelines.settings import Settings
>>> warm = WarmRetrievers(Settings(store="/tmp/qwen-rag-doc"))
>>> warm.get().invoke("什么是人工智能？")                          # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from pipelines.embeddings import Provider, make_embeddings
from pipelines.retrieve.retriever import QwenRagRetriever, build_retriever
from pipelines.settings import Settings
from pipelines.store.chroma import Store, open_store

#: Warm retrievers kept by default: a BM25 index costs about as much memory as its collection's text.
DEFAULT_LIMIT = 8


class WarmRetrievers:
    """Retrievers by collection name over one store and one embedding provider, the ``limit`` most recently used
    kept; safe to share between threads."""

    def __init__(
        self,
        settings: Settings,
        *,
        embeddings: Provider | None = None,
        store: Store | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.settings = settings
        self.limit = limit
        self._embeddings = embeddings
        self._store = store
        self._retrievers: OrderedDict[str, QwenRagRetriever] = OrderedDict()
        self._lock = threading.Lock()

    def embeddings(self) -> Provider:
        with self._lock:
            if self._embeddings is None:
                self._embeddings = make_embeddings(self.settings)
            return self._embeddings

    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings)
            return self._store

    def get(self, collection: str | None = None) -> QwenRagRetriever:
        """The retriever of ``collection`` (default: the settings' one)."""
        name = collection or self.settings.collection
        with self._lock:
            found = self._retrievers.get(name)
            if found is not None:
                self._retrievers.move_to_end(name)
                return found
        settings = self.settings.model_copy(update={"collection": name})
        built = build_retriever(settings, embeddings=self.embeddings(), store=self.store())
        with self._lock:
            # Two first requests may both build; the first one kept wins, so every later call shares it.
            kept = self._retrievers.setdefault(name, built)
            self._retrievers.move_to_end(name)
            while len(self._retrievers) > self.limit:
                self._retrievers.popitem(last=False)
            return kept

    def warm(self) -> list[str]:
        """The collections whose retrievers are warm, least recently used first."""
        with self._lock:
            return list(self._retrievers)

    def forget(self, collection: str | None = None) -> None:
        """Drop a retriever whose collection went away (``ingest --full`` recreates it); the next call rebuilds."""
        with self._lock:
            self._retrievers.pop(collection or self.settings.collection, None)
