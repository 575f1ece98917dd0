"""The Chroma store: embedded on local disk, or a ``chroma run`` server; the model guard; batched writes.

Each collection records which model built it (:mod:`pipelines.store.signature` holds the record and its guard).

>>> from pipelines.store.chroma import Store
>>> store = Store.open(path="/tmp/qwen-rag-doc-store")
>>> store.collection_names()                                  # doctest: +SKIP
['default']
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings

from pipelines.cache import cache_root
from pipelines.errors import StoreError, StoreUnavailable
from pipelines.settings import OnMismatch, Settings
from pipelines.store.paging import pages
from pipelines.store.signature import TASK_KEY, IndexSignature, guard

__all__ = ["TASK_KEY", "IndexSignature", "Store", "StoreError", "open_store"]


T = TypeVar("T")


def included(value: T | None, name: str) -> T:
    """A field of a Chroma get/query result that the call asked for in ``include``: Chroma types every field as
    optional, asked for or not."""
    if value is None:
        raise StoreError(f"Chroma returned no {name} though they were asked for")
    return value


def open_store(settings: Settings) -> Store:
    """The store the settings name: the Chroma server at ``chroma_url``, else the directory ``store``."""
    return Store.open(path=settings.store, url=settings.chroma_url)


class Store:
    """A Chroma client plus qwen-rag's rules for collections."""

    def __init__(self, client: ClientAPI, *, path: Path | None, url: str | None) -> None:
        self.client = client
        self.path = path
        self.url = url

    @classmethod
    def open(cls, *, path: Path | str | None = None, url: str | None = None) -> Store:
        """A persistent store at ``path``, or the Chroma server at ``url`` (``http://host:port``)."""
        settings = ChromaSettings(anonymized_telemetry=False)
        if url:
            parsed = urlparse(url if "://" in url else f"http://{url}")
            try:
                client = chromadb.HttpClient(
                    host=parsed.hostname or "127.0.0.1",
                    port=parsed.port or 8000,
                    ssl=parsed.scheme == "https",
                    settings=settings,
                )
                client.heartbeat()
            except Exception as error:  # chromadb raises several types for a server that is not there
                raise StoreUnavailable(f"cannot reach the Chroma server at {url}: {error}") from error
            return cls(client, path=None, url=url)
        if path is None:
            raise StoreError("no store given: pass a directory (--store) or a Chroma server (--chroma-url)")
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(chromadb.PersistentClient(path=str(directory), settings=settings), path=directory, url=None)

    @property
    def where(self) -> str:
        return self.url or str(self.path)

    def derived_dir(self, kind: str, collection: str) -> Path:
        """Where this machine keeps data of ``kind`` derived from ``collection`` (rebuilt from it when lost): beside
        an embedded store (``STORE/KIND/COLLECTION``), or in the user's cache directory for a Chroma server."""
        if self.path is not None:
            return self.path / kind / collection
        server = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.url or "server")
        return cache_root() / kind / server / collection

    def collection_names(self) -> list[str]:
        return sorted(c.name for c in self.client.list_collections())

    def existing(self, name: str) -> Collection | None:
        if name not in self.collection_names():
            return None
        return self.client.get_collection(name)

    def collection(self, name: str, signature: IndexSignature, on_mismatch: OnMismatch) -> Collection:
        """Open (or create) a collection for ``signature``; refuse or recreate one built otherwise."""
        found = self.existing(name)
        if found is not None:
            recorded = IndexSignature.from_metadata(found.metadata)
            if recorded is None and found.count() == 0:
                found.modify(metadata=signature.as_metadata())
                return found
            if recorded == signature:
                return found
            if on_mismatch is OnMismatch.FAIL:
                guard(name, self.where, recorded, signature.model, signature.dimension, signature.query_style)
            self.client.delete_collection(name)
        # get_or_create: two ingests starting at once against a Chroma server must not race on the create.
        created = self.client.get_or_create_collection(
            name,
            metadata=signature.as_metadata(),
            # Cosine, set through the collection configuration (Chroma's default space is l2).
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )
        recorded = IndexSignature.from_metadata(created.metadata)
        guard(name, self.where, recorded, signature.model, signature.dimension, signature.query_style)
        return created

    def save_vectors_after_each_write(self, collection: Collection, each: bool) -> None:
        """Whether this process's writes save the collection's vector index after each write (``each``) or after
        Chroma's default of 1000 records (see :data:`HNSW_SAVE_EVERY`). Effective for the process that next loads
        the collection's index: call it before the first read or write of the process. Embedded stores only (a
        Chroma server loads a collection once and keeps it)."""
        if self.path is None:
            return
        wanted = 1 if each else HNSW_SAVE_EVERY
        hnsw = (collection.configuration or {}).get("hnsw") or {}
        if hnsw.get("sync_threshold") != wanted:
            collection.modify(configuration={"hnsw": {"sync_threshold": wanted}})

    def max_batch(self) -> int:
        return int(self.client.get_max_batch_size())

    def upsert(
        self,
        collection: Collection,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]] | np.ndarray,
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, str | int | float | bool | None]],
    ) -> None:
        """Write in batches below the client's limit (langchain-chroma's ``add_texts`` does not). A stored record's
        metadata is merged with the new one (a key set to None is removed), as Chroma's upsert does."""
        step = self.max_batch()
        for start in range(0, len(ids), step):
            end = start + step
            collection.upsert(
                ids=list(ids[start:end]),
                embeddings=np.asarray(vectors[start:end], dtype=np.float32),
                documents=list(texts[start:end]),
                metadatas=[dict(m) for m in metadatas[start:end]],
            )

    def update_metadata(
        self,
        collection: Collection,
        ids: Sequence[str],
        metadatas: Sequence[Mapping[str, str | int | float | bool | None]],
    ) -> None:
        """Merge each metadata into its record (None removes a key); vectors and texts stay. In writes as large as the
        client takes: each costs Chroma about as much whatever its size."""
        step = self.max_batch()
        for start in range(0, len(ids), step):
            end = start + step
            collection.update(ids=list(ids[start:end]), metadatas=[dict(m) for m in metadatas[start:end]])

    def delete(self, collection: Collection, ids: Sequence[str]) -> None:
        step = self.max_batch()
        for start in range(0, len(ids), step):
            collection.delete(ids=list(ids[start : start + step]))

    def metadatas(self, collection: Collection, where: dict[str, Any] | None = None) -> Iterator[tuple[str, dict]]:
        """Every (id, metadata) of the collection, paged so memory stays bounded on large stores."""
        for page in pages(collection, include=["metadatas"], where=where, step=self.max_batch()):
            metas = page["metadatas"] or [{}] * len(page["ids"])
            yield from zip(page["ids"], (dict(m or {}) for m in metas), strict=True)

    @contextmanager
    def writer(self) -> Iterator[None]:
        """One writer per embedded store: a second ingest fails at once instead of hanging (chroma#7040), and so
        does an ingest while another process serves the store (it would never see the writes: see :meth:`serving`).

        A Chroma server orders concurrent writers itself, so no lock is taken there.
        """
        if self.path is None:
            yield
            return
        # Before taking the lock: the serving process's searches would refuse while it is held by another process.
        if self.path not in _serving_here and _held(self.path / _SERVING):
            raise StoreError(
                f"another process serves {self.path} (qwen-rag serve or mcp): an embedded store shows a process "
                "only its own writes, so it would answer empty passages for these; ingest through that process "
                "instead (`qwen-rag serve --watch PATH`), or use a Chroma server (--chroma-url)"
            )
        lock_path = self.path / _WRITE_LOCK
        # Marked as this process's before the lock is taken and until after it is let go: this process's own
        # searches never mistake it for another's.
        _writing_here.add(self.path)
        try:
            with open(lock_path, "a+") as handle:
                if not _lock(handle, fcntl.LOCK_EX):
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise StoreError(
                        f"another ingest ({holder}) is writing to {self.path}; wait for it to finish, or run `qwen-rag "
                        "serve --watch PATH` (one process ingests and serves) or a Chroma server (--chroma-url)"
                    ) from None
                handle.seek(0)
                handle.truncate()
                handle.write(f"pid {os.getpid()}")
                handle.flush()
                try:
                    yield
                finally:
                    handle.seek(0)
                    handle.truncate()
                    fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            _writing_here.discard(self.path)

    def check_readable(self) -> None:
        """Before a search of an embedded store: refuse, in one line, while another process writes to it (this
        process would see its new chunks without text or metadata: Chroma's embedded store is single-process)."""
        if self.path is None:
            return
        lock_path = self.path / _WRITE_LOCK
        # Asked after the probe, not before: this process's writer marks the store before it takes the lock, so a
        # lock this process holds is always seen as its own (asked before, a write starting in between was not).
        if _held(lock_path) and self.path not in _writing_here:
            holder = lock_path.read_text(encoding="utf-8").strip()
            if holder == f"pid {os.getpid()}":
                return  # this process's own ingest, through another Store object for the same directory
            if not holder and not _held(lock_path):
                return  # a writer that let go in between (it empties the file before it unlocks)
            raise StoreError(
                f"{holder or 'another process'} is writing to {self.path}: an embedded store shows a process only its "
                "own writes, so this search would answer empty passages; ingest and search in one process with "
                "`qwen-rag serve --watch PATH` (or `mcp --watch`), or use a Chroma server (--chroma-url)"
            )

    @contextmanager
    def serving(self) -> Iterator[None]:
        """While a long-running reader (``serve``, ``mcp``) has an embedded store open: other processes' ingests
        are refused (:meth:`writer`), its own (``--watch``) are not."""
        if self.path is None:
            yield
            return
        with open(self.path / _SERVING, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            _serving_here.add(self.path)
            try:
                yield
            finally:
                _serving_here.discard(self.path)
                fcntl.flock(handle, fcntl.LOCK_UN)


#: Chroma's default ``sync_threshold``: it saves a collection's vector index (HNSW) after this many records written
#: since the last save, and every process that opens the store replays the records written since into the index it
#: loads, at the cost of an insert each (about 13 ms at 100k chunks of 1024 dims on the dev box: 300 pending records
#: added 4 s to each `qwen-rag query` and ingest). A save costs a write of the whole index (0.1 s to 2 s at 100k
#: chunks, measured in docs/benchmarks.md, "A collection that grows"), so an ingest that writes little saves after
#: each write (:meth:`Store.save_vectors_after_each_write`) and leaves nothing to replay, while a large one keeps
#: this default, where a save per write of 256 chunks would cost more than the replays it spares, and holds its last
#: this many chunks back for its last write, so that Chroma saves with that one (pipelines.ingestion.writer).
HNSW_SAVE_EVERY = 1000

_WRITE_LOCK, _SERVING = ".qwen-rag.lock", ".qwen-rag.serving"
# Embedded stores this process writes to or serves: its own locks are not another process's.
_writing_here: set[Path] = set()
_serving_here: set[Path] = set()


def _lock(handle: IO[str], kind: int, tries: int = 5) -> bool:
    """Take ``kind`` without waiting, retrying briefly: another process's probe (:func:`_held`) holds it for
    microseconds."""
    for attempt in range(tries):
        try:
            fcntl.flock(handle, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt < tries - 1:
                time.sleep(0.02)
    return False


def _held(path: Path) -> bool:
    """Whether another process holds a lock on ``path`` that conflicts with a shared one (a writer), or, for the
    serving file, any lock: probe with the lock that conflicts and let go at once."""
    if not path.exists():
        return False
    kind = fcntl.LOCK_EX if path.name == _SERVING else fcntl.LOCK_SH
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
