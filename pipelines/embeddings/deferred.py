"""A probed embedding server whose LangChain client is built on the first embedding, not before.

Building :class:`~pipelines.embeddings.server.ServerEmbeddings` imports ``openai`` and ``langchain_openai``: about
two seconds of start-up on the 2-core dev box, more than a BM25 query or an unchanged re-ingest costs on a large
store (docs/benchmarks.md, "A collection that grows"). What a process needs to know before it embeds (the model, its
profile, the dimensions) comes from the probe (:mod:`pipelines.embeddings.probe`, ``httpx`` only), so a
:class:`DeferredServer` answers that at once and builds the client when a text is first embedded: a BM25 query never
builds it, and an ingest's forked reader builds its own, in parallel with the writer's work on the store.

>>> from pipelines.embeddings import make_embeddings
>>> from pipelines.settings import Settings
>>> emb = make_embeddings(Settings(embeddings_url=["http://127.0.0.1:30000/v1"]), deferred=True)  # doctest: +SKIP
>>> emb.model_id, emb.built                                                                       # doctest: +SKIP
('Qwen/Qwen3-Embedding-0.6B', False)
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from pipelines.embeddings.probe import ServerSpec
from pipelines.embeddings.profiles import Profile

if TYPE_CHECKING:
    from pipelines.embeddings.server import ServerEmbeddings


class DeferredServer(Embeddings):
    """One server, as :class:`~pipelines.embeddings.server.ServerEmbeddings` serves it, built on first use."""

    def __init__(self, spec: ServerSpec, client: ServerEmbeddings | None = None) -> None:
        self.spec = spec
        self._client = client
        self._lock = threading.Lock()

    @property
    def profile(self) -> Profile:
        return self.spec.profile

    @property
    def model_id(self) -> str:
        return self.spec.model

    @property
    def is_server(self) -> bool:
        return True

    @property
    def built(self) -> bool:
        """Whether the LangChain client exists yet (tests, and the benchmarks' account of start-up)."""
        return self._client is not None

    def client(self) -> ServerEmbeddings:
        """The LangChain client, built now if it was not yet."""
        with self._lock:
            if self._client is None:
                from pipelines.embeddings.server import ServerEmbeddings

                self._client = ServerEmbeddings.from_spec(self.spec)
            return self._client

    def with_task(self, task: str) -> DeferredServer:
        """Queries with this instruction task; a client already built is shared, as ``ServerEmbeddings`` does."""
        with self._lock:
            client = self._client.with_task(task) if self._client is not None else None
        return DeferredServer(replace(self.spec, task=task), client)

    def detached(self) -> DeferredServer:
        """For a forked process: a built client gets connections of its own; an unbuilt one is built there."""
        with self._lock:
            client = self._client.detached() if self._client is not None else None
        return DeferredServer(self.spec, client)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.client().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.client().embed_query(text)
