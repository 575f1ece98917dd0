"""Reading a whole collection page by page, so memory stays bounded however large the store.

>>> from pipelines.store.chroma import Store
>>> collection = Store.open(path="/tmp/qwen-rag-doc-paging").client.get_or_create_collection("pages")
>>> sum(len(page["ids"]) for page in pages(collection, include=[], step=100))
0
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chromadb.api.models.Collection import Collection
from chromadb.api.types import GetResult


def pages(
    collection: Collection, *, include: list[Any], where: dict[str, Any] | None = None, step: int = 5000
) -> Iterator[GetResult]:
    """Every record matching ``where``, as ``collection.get`` pages of at most ``step`` ids."""
    offset = 0
    while True:
        page = collection.get(where=where, include=include, limit=step, offset=offset)
        yield page
        if len(page["ids"]) < step:
            return
        offset += step
