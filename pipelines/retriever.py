"""``build_retriever()``: the LangChain retriever chatbot apps plug in.

Each returned ``Document`` carries its citation metadata (``source``, ``page``, ``start_index``) and its ``score``
(cosine similarity of query and passage, higher is better).

>>> from pipelines import build_retriever, Settings
>>> retriever = build_retriever(Settings(store="/tmp/qwen-rag-doc", k=2))     # doctest: +SKIP
>>> [d.metadata["source"] for d in retriever.invoke("什么是人工智能？")]       # doctest: +SKIP
['机器学习.txt', '深度学习.txt']
"""

from __future__ import annotations

from typing import Any

from langchain_chroma import Chroma
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from pipelines.embeddings import make_embeddings
from pipelines.ingest import open_store
from pipelines.settings import Settings
from pipelines.store import IndexSignature, Store, StoreError


class QwenRagRetriever(BaseRetriever):
    """Dense top-k over a qwen-rag collection (sync and async through LangChain's ``Runnable`` interface)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: Chroma
    embeddings: Embeddings
    dimension: int
    k: int = 4

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        vector = self.embeddings.embed_query(query)
        if len(vector) != self.dimension:
            raise StoreError(
                f"the query vector has {len(vector)} dims but the collection holds {self.dimension}: "
                "the server's model or --dimensions changed since the ingest"
            )
        hits = self.vectorstore.similarity_search_by_vector_with_relevance_scores(vector, k=self.k)
        out = []
        for doc, distance in hits:
            # Chroma's cosine space returns 1 - cosine similarity.
            doc.metadata["score"] = round(1.0 - float(distance), 6)
            out.append(doc)
        return out


def build_retriever(
    settings: Settings | None = None,
    *,
    embeddings: Embeddings | None = None,
    store: Store | None = None,
    k: int | None = None,
) -> QwenRagRetriever:
    """A retriever over the configured collection; refuses a collection built with another model."""
    settings = settings or Settings()
    embeddings = embeddings if embeddings is not None else make_embeddings(settings)
    store = store or open_store(settings)
    found = store.existing(settings.collection)
    recorded = IndexSignature.from_metadata(found.metadata) if found else None
    model = embeddings.model_id  # type: ignore[attr-defined]
    if recorded is None or recorded.model != model or settings.dimensions not in (None, recorded.dimension):
        wanted = IndexSignature(model, settings.dimensions or 0, "")
        if found is None:
            raise StoreError(f"no collection '{settings.collection}' in {store.where}: run `qwen-rag ingest` first")
        raise StoreError(store.mismatch_message(settings.collection, recorded, wanted))
    vectorstore = Chroma(
        client=store.client,
        collection_name=settings.collection,
        embedding_function=embeddings,
        create_collection_if_not_exists=False,
    )
    return QwenRagRetriever(
        vectorstore=vectorstore, embeddings=embeddings, dimension=recorded.dimension, k=k or settings.k
    )
