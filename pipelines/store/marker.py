"""The collection's change marker: every writer bumps it, so every reader knows whether its derived data is current.

Derived data (the lexical index, a retriever's list of sources) lives outside Chroma, in each process or machine that
reads the collection. To stay exact it must learn of every change, including those written by other processes to a
``chroma run`` server, and a collection's size says nothing about a file edited into as many chunks as before. So
the collection's own metadata carries:

- ``qwen_rag_marker``: a fresh random value after each change (a uuid, not a counter: two writers on a server
  cannot agree on the next number, but each can draw a new value);
- ``qwen_rag_changes``: the last :data:`LOG_LENGTH` changes, each ``[marker, [[root, source], ...]]``: the files
  whose chunks that change touched. A reader synced at marker M applies the files of every change after M's entry
  (re-reading those files' chunks from Chroma: idempotent, so applying a change twice is harmless). A reader whose
  M is no longer in the log (too far behind, or a store written by an older qwen-rag) rebuilds from the collection.

Why in the collection's metadata rather than a log collection or a file beside the store: it is one read (the
collection's record, which Chroma keeps for every collection anyway), it travels with the collection to every
machine, and it disappears with the collection. Limit: Chroma has no compare-and-set, so two writers on a server
bumping at the same instant can lose one log entry; the marker still changes, and the lost change is repaired the
next time a later change names those files, or by a rebuild. An embedded store has one writer (the store's lock).

A writer bumps twice around each write (:func:`bump` before, naming the files it is about to touch, and after):
a reader that syncs between the two sees the second bump and syncs again, and a writer killed in between leaves a
marker its own index is not synced to, so the next reader repairs those files.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from chromadb.api.models.Collection import Collection

from pipelines.store.chroma import Store

__all__ = ["CHANGES", "LOG_LENGTH", "MARKER", "FileKey", "Marker", "bump", "read"]

MARKER, CHANGES = "qwen_rag_marker", "qwen_rag_changes"
#: Changes kept in the log. A reader more than this many changes behind rebuilds its index from the collection.
LOG_LENGTH = 200

FileKey = tuple[str, str]  # (root, source), as the chunks' metadata names a file


@dataclass(frozen=True)
class Marker:
    """A collection's marker and its recent changes, as read from its metadata."""

    value: str | None  # None: no writer of this version has changed the collection yet
    raw_log: str  # the log as stored: parsed only when asked for (:attr:`log`)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> Marker:
        metadata = metadata or {}
        value = metadata.get(MARKER)
        return cls(str(value) if value is not None else None, str(metadata.get(CHANGES) or "[]"))

    @cached_property
    def log(self) -> tuple[tuple[str, tuple[FileKey, ...]], ...]:
        """The changes, oldest first. Parsed on demand: a reader whose index is current (every search's check)
        needs the value alone, and after a first ingest the log names every file (3.6 ms to parse at 4,000)."""
        try:
            raw = json.loads(self.raw_log)
            return tuple((str(m), tuple((str(r), str(s)) for r, s in files)) for m, files in raw)
        except (ValueError, TypeError):
            return ()  # a damaged log: readers that are behind rebuild

    def since(self, synced: str | None) -> set[FileKey] | None:
        """The files changed after marker ``synced``; None if the log cannot tell (rebuild instead)."""
        if synced == self.value:
            return set()
        for position, (marker, _) in enumerate(self.log):
            if marker == synced:
                return {key for _, files in self.log[position + 1 :] for key in files}
        return None


def read(store: Store, name: str) -> Marker:
    """The collection's current marker, read from the store (a ``Collection`` object's own metadata is a copy
    taken when it was opened)."""
    return Marker.from_metadata(store.client.get_collection(name).metadata)


def bump(store: Store, collection: Collection, files: Iterable[FileKey]) -> tuple[str | None, str]:
    """Record a change to ``files``: a new marker and a log entry. Returns (the marker it replaced, the new one)."""
    metadata = dict(store.client.get_collection(collection.name).metadata or {})
    before = Marker.from_metadata(metadata)
    value = uuid.uuid4().hex
    entry = (value, tuple(sorted(set(files))))
    log = [*before.log, entry][-LOG_LENGTH:]
    metadata[MARKER] = value
    metadata[CHANGES] = json.dumps([[m, [list(f) for f in keys]] for m, keys in log], ensure_ascii=False)
    collection.modify(metadata=metadata)
    return before.value, value
