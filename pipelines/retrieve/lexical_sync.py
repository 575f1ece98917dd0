"""Keeps a collection's BM25 index in step with the collection itself.

The index is derived data: its fingerprint is the set of chunk ids it was built from. After an ingest changes the
collection, or when a query finds the fingerprint stale (another process wrote to a Chroma server), it is rebuilt
from the collection's own texts, so a deleted file leaves neither index. It lives beside the embedded store
(``STORE/bm25/COLLECTION``) or, for a Chroma server, in the user's cache directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from chromadb.api.models.Collection import Collection

from pipelines.cache import cache_root
from pipelines.retrieve.lexical import BM25Index, fingerprint
from pipelines.store.chroma import Store


def index_dir(store: Store, collection: str) -> Path:
    if store.path is not None:
        return store.path / "bm25" / collection
    server = re.sub(r"[^A-Za-z0-9_.-]+", "_", store.url or "server")
    return cache_root() / "bm25" / server / collection


def _texts(store: Store, collection: Collection) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    texts: list[str] = []
    step = store.max_batch()
    offset = 0
    while True:
        page = collection.get(include=["documents"], limit=step, offset=offset)
        ids.extend(page["ids"])
        texts.extend(text or "" for text in page["documents"] or [])
        if len(page["ids"]) < step:
            return ids, texts
        offset += step


def sync_bm25(store: Store, collection: Collection) -> BM25Index:
    """The collection's BM25 index, rebuilt and saved if it no longer matches the collection's chunks."""
    directory = index_dir(store, collection.name)
    current = fingerprint(collection.get(include=[])["ids"])
    index = BM25Index.load(directory)
    if index is not None and index.fingerprint == current:
        return index
    ids, texts = _texts(store, collection)
    index = BM25Index.build(ids, texts, fingerprint(ids))
    index.save(directory)
    return index
