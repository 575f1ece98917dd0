"""What every embedding provider is: the embedded default, one SGLang (or OpenAI-compatible) server, or a pool of
servers. The ingest, the retriever, the doctor and the service use providers only through this protocol.

Every provider is also a LangChain ``Embeddings`` (with ``aembed_query`` and ``aembed_documents``), so LangChain
vector stores and tools take it as it is. The protocol lives apart from the providers: typing against it imports
none of them, nor their libraries.

>>> from pipelines.embeddings import make_embeddings
>>> from pipelines.settings import Settings
>>> provider = make_embeddings(Settings())
>>> isinstance(provider, Provider), provider.is_server, provider.model_id
(True, False, 'intfloat/multilingual-e5-small')
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pipelines.embeddings.profiles import Profile


@runtime_checkable
class Provider(Protocol):
    """LangChain's ``Embeddings`` interface plus what qwen-rag needs to know of the model behind it."""

    @property
    def profile(self) -> Profile:
        """How the model wants its queries, documents and lengths."""
        ...

    @property
    def model_id(self) -> str:
        """The model's name as the collection records it."""
        ...

    @property
    def is_server(self) -> bool:
        """True for a server (or pool): requests may run concurrently, and in a forked process."""
        ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, as a document (no query instruction or prefix)."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query, with the model's query instruction or prefix."""
        ...

    def with_task(self, task: str) -> Provider:
        """The same provider asking queries with this instruction task (a model without instructions: itself)."""
        ...

    def detached(self) -> Provider:
        """The same provider with connections of its own, for a forked process (itself if it has none)."""
        ...
