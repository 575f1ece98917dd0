"""qwen-rag's library API: the same operations as the ``qwen-rag`` command, on one :class:`Settings` object.

>>> from pipelines import Settings, ingest, build_retriever
>>> settings = Settings(store="/tmp/qwen-rag-demo", k=2)               # embedded model: no server needed
>>> report = ingest(["data/samples"], settings)                        # doctest: +SKIP
>>> retriever = build_retriever(settings)                              # doctest: +SKIP
>>> retriever.invoke("什么是人工智能？")[0].metadata["source"]          # doctest: +SKIP
'ml.txt'

With SGLang serving Qwen3-Embedding, set ``embeddings_url="http://127.0.0.1:30000/v1"`` (or the environment variable
``QWEN_RAG_EMBEDDINGS_URL``); nothing else changes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.embeddings import Provider, make_embeddings
    from pipelines.embeddings.local import LocalEmbeddings
    from pipelines.embeddings.server import ServerEmbeddings
    from pipelines.errors import QwenRagError
    from pipelines.ingestion.report import IngestReport
    from pipelines.ingestion.writer import ingest
    from pipelines.retrieve.retriever import QwenRagRetriever, build_retriever
    from pipelines.settings import Mode, OnMismatch, Settings

# Imported on first use: `qwen-rag --help` and `from pipelines.settings import Settings` stay fast, without
# loading Chroma, LangChain and the model.
_EXPORTS = {
    "Provider": "pipelines.embeddings",
    "LocalEmbeddings": "pipelines.embeddings.local",
    "ServerEmbeddings": "pipelines.embeddings.server",
    "make_embeddings": "pipelines.embeddings",
    "QwenRagError": "pipelines.errors",
    "IngestReport": "pipelines.ingestion.report",
    "ingest": "pipelines.ingestion.writer",
    "QwenRagRetriever": "pipelines.retrieve.retriever",
    "build_retriever": "pipelines.retrieve.retriever",
    "Mode": "pipelines.settings",
    "OnMismatch": "pipelines.settings",
    "Settings": "pipelines.settings",
}
__all__ = [
    "IngestReport",
    "LocalEmbeddings",
    "Mode",
    "OnMismatch",
    "Provider",
    "QwenRagError",
    "QwenRagRetriever",
    "ServerEmbeddings",
    "Settings",
    "build_retriever",
    "ingest",
    "make_embeddings",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
