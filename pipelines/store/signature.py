"""What a collection records about how it was built, and the one guard that keeps a query or an ingest from mixing
models: the model, the vector dimension, the query style, and the query instruction task.

A collection built with one model refuses another with one clear line, instead of Chroma's
``InvalidDimensionException`` or, worse, silently wrong neighbours.

>>> recorded = IndexSignature("Qwen/Qwen3-Embedding-0.6B", 1024, "qwen-instruct")
>>> guard("docs", "store/", recorded, "Qwen/Qwen3-Embedding-0.6B") is recorded
True
>>> guard("docs", "store/", recorded, "intfloat/multilingual-e5-small")
Traceback (most recent call last):
pipelines.errors.StoreError: collection 'docs' in store/ was built with Qwen/Qwen3-Embedding-0.6B (1024 dims); \
you asked for intfloat/multilingual-e5-small: use another --collection, or ingest with --on-mismatch recreate to \
rebuild it
>>> query_task(None, {TASK_KEY: "Given a question, retrieve passages that answer it"})
'Given a question, retrieve passages that answer it'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.errors import StoreError

#: Keys of the collection metadata that qwen-rag owns.
_MODEL, _DIMENSION, _STYLE = "qwen_rag_model", "qwen_rag_dimension", "qwen_rag_query_style"
#: The collection's own query instruction (``ingest --task``), used by queries that name none.
TASK_KEY = "qwen_rag_task"


@dataclass(frozen=True)
class IndexSignature:
    """What a collection's vectors depend on: mixing two of these in one collection ruins search."""

    model: str
    dimension: int
    query_style: str

    def as_metadata(self) -> dict[str, str | int]:
        return {_MODEL: self.model, _DIMENSION: self.dimension, _STYLE: self.query_style}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> IndexSignature | None:
        if not metadata or _MODEL not in metadata:
            return None
        return cls(str(metadata[_MODEL]), int(metadata[_DIMENSION]), str(metadata.get(_STYLE, "")))


def guard(
    name: str,
    where: str,
    recorded: IndexSignature | None,
    model: str,
    dimension: int | None = None,
    query_style: str | None = None,
) -> IndexSignature:
    """The recorded signature if it was built by ``model`` (and ``dimension``/``query_style`` where given);
    otherwise a ``StoreError`` saying what the collection holds and what to do."""
    if (
        recorded is not None
        and recorded.model == model
        and dimension in (None, recorded.dimension)
        and query_style in (None, recorded.query_style)
    ):
        return recorded
    built = f"{recorded.model} ({recorded.dimension} dims)" if recorded else "something other than qwen-rag"
    asked = f"{model} ({dimension} dims)" if dimension else model
    raise StoreError(
        f"collection '{name}' in {where} was built with {built}; you asked for {asked}: "
        "use another --collection, or ingest with --on-mismatch recreate to rebuild it"
    )


def query_task(given: str | None, metadata: Mapping[str, Any] | None) -> str | None:
    """The query instruction for a search: the one given (``--task``), else the one the collection was ingested
    with, else None (the model's own default). Every surface resolves it here."""
    if given is not None:
        return given
    recorded = (metadata or {}).get(TASK_KEY)
    return str(recorded) if recorded else None
