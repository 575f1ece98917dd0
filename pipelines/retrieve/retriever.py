"""``build_retriever()``: the LangChain retriever chatbot apps plug in, over :class:`pipelines.retrieve.search.Search`.

Each returned ``Document`` carries its citation metadata (``source``, ``page``, ``start_index``, and ``section``,
``sheet``, rows where the format gives them) and its ``score`` (:mod:`pipelines.retrieve.search` says what each
mode's score is).

Options (k, mode, fusion, filters, MMR, rerank, task, ``window``: each hit with its neighbouring chunks) come from
the settings, and can be overridden per retriever
(``search_kwargs``) or per call, as LangChain retrievers allow: ``retriever.invoke(query, k=3, mode="bm25")``.
Filters hold in every mode, on any field (the user's own from ``--meta`` and sidecars included):
``retriever.invoke(query, filter={"department": "hr"}, where={"year": {"$gte": 2024}})``.
One retriever serves many calls: it keeps its embedding provider, its reranker and its BM25 index warm.

>>> from pipelines import build_retriever, Settings
>>> retriever = build_retriever(Settings(store="/tmp/qwen-rag-doc", k=2))     # doctest: +SKIP
>>> [d.metadata["source"] for d in retriever.invoke("什么是人工智能？")]       # doctest: +SKIP
['ml.txt', 'dl.txt']
>>> retriever.invoke("什么是人工智能？", k=1, mode="dense")[0].metadata["source"]  # doctest: +SKIP
'ml.txt'
"""

from __future__ import annotations

from typing import Any

from chromadb.api.models.Collection import Collection
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from pipelines.embeddings import Provider
from pipelines.retrieve.search import Search, open_search
from pipelines.settings import Settings
from pipelines.store.chroma import Store


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
    _search: Search = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _k_into_search_kwargs(cls, data: Any) -> Any:
        """``QwenRagRetriever(k=3, ...)`` as LangChain retrievers take it."""
        if isinstance(data, dict) and "k" in data:
            data = dict(data)
            data["search_kwargs"] = {**data.get("search_kwargs", {}), "k": data.pop("k")}
        return data

    def model_post_init(self, context: Any, /) -> None:
        # An unknown or out-of-range option fails here, not on the first query.
        self._search = Search(
            collection=self.collection,
            embeddings=self.embeddings,
            dimension=self.dimension,
            settings=self.settings,
            store=self.store,
            reranker=self.reranker,
            search_kwargs=self.search_kwargs,
        )

    @property
    def search(self) -> Search:
        """The search behind this retriever (its BM25 index, caches and per-call options)."""
        return self._search

    @property
    def k(self) -> int:
        return self._search.options({}).k

    def options(self, overrides: dict[str, Any]) -> Settings:
        """The settings for one call: the retriever's settings, its ``search_kwargs``, then ``overrides``."""
        return self._search.options(overrides)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._search.search(query, **kwargs)


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
    search = open_search(settings, embeddings=embeddings, store=store, k=k, search_kwargs=search_kwargs)
    assert search.embeddings is not None  # only a lexical_only search has none
    return QwenRagRetriever(
        collection=search.collection,
        embeddings=search.embeddings,
        dimension=search.dimension,
        settings=search.settings,
        store=search.store,
        reranker=search.reranker,
        search_kwargs=search.search_kwargs,
    )
