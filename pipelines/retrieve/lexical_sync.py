"""Keeps a collection's lexical index in step with the collection, change by change.

The index is derived data. Beside it, ``synced.json`` names the collection marker (:mod:`pipelines.store.marker`)
it reflects; the state file is written only after the index's commit, so a process killed mid-update leaves an
index at most one change behind a state that says so. Before a search, :meth:`LexicalSync.current` compares the
collection's marker with that state and, if they differ, re-indexes the files the collection's change log names
since (their chunks read back from Chroma; deletes included), or rebuilds from the whole collection when the log
cannot tell (the reader was too far behind, the index was damaged or missing). Normal operation never rebuilds:
the ingest writes each batch into the index itself (:meth:`LexicalSync.writing`).

Writers of one index directory are serialised by a thread lock within a process and a ``flock`` across processes
(readers that share a machine's cache directory for a Chroma server). The index lives beside the embedded store
(``STORE/lexical/COLLECTION``) or, for a Chroma server, in the user's cache directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from chromadb.api.models.Collection import Collection
from chromadb.api.types import GetResult

from pipelines.cache import write_json
from pipelines.retrieve.lexical import IndexBusy, LexicalIndex, Staged
from pipelines.store.chroma import Store
from pipelines.store.marker import FileKey, Marker, bump, read
from pipelines.store.paging import pages
from pipelines.store.records import ROOT, SOURCE, by_source

__all__ = ["LexicalSync", "Staging", "file_key", "index_dir", "lexical_sync"]

_STATE = "synced.json"
_FORMAT = 1
_UNKNOWN = object()  # no state file, or an unreadable one: the index must be rebuilt


def index_dir(store: Store, collection: str) -> Path:
    return store.derived_dir("lexical", collection)


def file_key(root: str, source: str) -> str:
    """How the index names a file (the unit of the collection's change log)."""
    return f"{root}\x1f{source}"


class Staging(Protocol):
    """What a write stages in the lexical index beside its Chroma write."""

    def put_terms(self, file: str, chunks: Iterable[Staged]) -> None: ...
    def retag(self, file: str, metadatas: Mapping[str, Mapping[str, Any]]) -> None: ...
    def delete(self, ids: Iterable[str]) -> None: ...
    def delete_file(self, file: str) -> None: ...


class _Unindexed:
    """Stands in for the index during a write that cannot take it (see :meth:`LexicalSync.writing`)."""

    def put_terms(self, file: str, chunks: Iterable[Staged]) -> None:
        pass

    def retag(self, file: str, metadatas: Mapping[str, Mapping[str, Any]]) -> None:
        pass

    def delete(self, ids: Iterable[str]) -> None:
        pass

    def delete_file(self, file: str) -> None:
        pass


class LexicalSync:
    """The lexical index of one collection in one directory; one per process and directory (:func:`lexical_sync`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.RLock()
        self._index: LexicalIndex | None = None
        self._synced: object = _UNKNOWN  # the marker this process last saw the index synced to

    # -- reading -------------------------------------------------------------------------------------------

    def current(self, store: Store, collection: Collection) -> LexicalIndex:
        """The index, caught up with the collection's latest marker first if it is behind."""
        marker = read(store, collection.name)
        with self._lock:
            if self._index is not None and self._synced == marker.value:
                return self._index
            with self._exclusive():
                try:
                    return self._catch_up(store, collection, marker)
                except IndexBusy:
                    # A writer in another process is bringing this very index up to date, commit by commit: search
                    # its last commit (a consistent state) rather than wait for its whole run.
                    index = self._open() or self._fresh()
                    index.reload()
                    return index

    # -- writing -------------------------------------------------------------------------------------------

    @contextmanager
    def writing(self, store: Store, collection: Collection, files: set[FileKey]) -> Iterator[Staging]:
        """Around one write of chunks of ``files`` to the collection: yields the index to stage the same changes
        in; commits them and bumps the collection's marker when the block ends (see :mod:`pipelines.store.marker`
        for the two bumps).

        Another process on this machine may hold this index's writer between its own writes (two ingests into one
        Chroma server share the cache directory's index): then the write goes to Chroma alone, the marker is bumped
        all the same, and the next search re-indexes these files from the collection's change log."""
        with self._lock, self._exclusive():
            try:
                index = self._catch_up(store, collection, read(store, collection.name))
                index.hold()
            except IndexBusy:
                bump(store, collection, files)
                yield _Unindexed()
                bump(store, collection, files)
                return
            synced = self._synced
            before, intent = bump(store, collection, files)
            try:
                yield index
            except BaseException:
                index.rollback()
                raise
            index.commit(keep=True)  # an ingest writes again soon; it calls release() at its end
            after, done = bump(store, collection, files)
            # Another writer's change between ours (on a server) is not in this index: leave the state behind it,
            # so the next search catches up through the log.
            if before == synced and after == intent:
                self._save_state(done)

    def release(self) -> None:
        """The end of a run of :meth:`writing`: the index's writer (and tantivy's lock) let go."""
        with self._lock:
            if self._index is not None:
                self._index.release()

    # -- inside the locks ----------------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Across processes: one updater of this directory at a time (the lock file sits beside it, so a rebuild
        may remove the directory)."""
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        with open(self.directory.parent / f".{self.directory.name}.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _catch_up(self, store: Store, collection: Collection, marker: Marker) -> LexicalIndex:
        state = self._read_state()  # another process sharing the directory may have synced it further
        index = self._open()
        if index is None:
            state = _UNKNOWN
            index = self._fresh()
        if state == marker.value:
            self._synced = state
            return index
        files = marker.since(state) if isinstance(state, str | None) else None
        try:
            if files is None:
                index.clear()
                _index_chunks(index, pages(collection, include=["documents", "metadatas"], step=store.max_batch()))
            else:
                _reindex(store, collection, index, files)
        except BaseException:
            index.rollback()
            raise
        index.commit()
        self._save_state(marker.value)
        return index

    def _open(self) -> LexicalIndex | None:
        if self._index is None:
            try:
                self._index = LexicalIndex.open(self.directory)
            except (OSError, ValueError):
                return None  # damaged: rebuilt from the collection
        return self._index

    def _fresh(self) -> LexicalIndex:
        self._index = None
        shutil.rmtree(self.directory, ignore_errors=True)
        self._index = LexicalIndex.open(self.directory)
        return self._index

    def _read_state(self) -> object:
        try:
            state = json.loads((self.directory / _STATE).read_text(encoding="utf-8"))
            if state.get("format") != _FORMAT:
                return _UNKNOWN
            marker = state["marker"]
            return marker if marker is None else str(marker)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return _UNKNOWN

    def _save_state(self, marker: str | None) -> None:
        """Written after the index's commit, atomically (a rename), so it never claims more than the index holds."""
        write_json(self.directory / _STATE, {"format": _FORMAT, "marker": marker, "pid": os.getpid()})
        self._synced = marker


def _reindex(store: Store, collection: Collection, index: LexicalIndex, files: set[FileKey]) -> None:
    """Stage the current chunks of ``files`` (none, for a file deleted since) in place of the indexed ones."""
    for root, source in files:
        index.delete_file(file_key(root, source))
    for where in by_source(files):
        found = pages(collection, include=["documents", "metadatas"], where=where, step=store.max_batch())
        _index_chunks(index, found, files)


def _index_chunks(index: LexicalIndex, found: Iterator[GetResult], files: set[FileKey] | None = None) -> None:
    """Stage the chunks ``found`` (of ``files`` only, if given)."""
    for page in found:
        metas = page["metadatas"] or [{}] * len(page["ids"])
        texts = page["documents"] or [""] * len(page["ids"])
        for chunk_id, text, meta in zip(page["ids"], texts, metas, strict=True):
            meta = meta or {}
            key = (str(meta.get(ROOT)), str(meta.get(SOURCE)))
            if files is None or key in files:
                index.put(file_key(*key), [(chunk_id, text or "", meta)])


_registry: dict[Path, LexicalSync] = {}
_registry_lock = threading.Lock()


def lexical_sync(store: Store, collection: str) -> LexicalSync:
    """The process's one :class:`LexicalSync` for this store's collection (the ingest and the retrievers of a
    process share it, so they share its locks and its open index)."""
    directory = index_dir(store, collection).resolve()
    with _registry_lock:
        if directory not in _registry:
            _registry[directory] = LexicalSync(directory)
        return _registry[directory]
