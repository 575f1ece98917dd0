"""The files' first chunks (:func:`~pipelines.store.records.read_heads`), kept on this machine between ingests and
exact by the collection's change marker (:mod:`pipelines.store.marker`).

Why: reading the first chunk of every file is a Chroma metadata scan (0.8 s at 100k chunks, and it is the first
read, so it also waits for Chroma to load the collection) that an ingest of one edited file would otherwise pay
before it knows what to do. Every qwen-rag writer bumps the marker and names the files it touched in the marker's
log, so a cache saved with the marker it reflects is exact while the marker is unchanged, and one that is behind
catches up by re-reading only the files the log names since (:func:`~pipelines.store.records.read_files`, a query
by source: 0.05 s), as the lexical index does. A cache the log cannot bring up to date (too far behind, no marker
yet, damaged or missing) is read again from Chroma. The file is derived data, written atomically (a rename); losing
it costs one scan.

Correct on a ``chroma run`` server written by other machines too: their writes bump the same marker. The marker is
read *before* the records it is saved with, so a write that lands in between is in the log after that marker and
is re-read next time (re-reading a file is idempotent). A collection written by a qwen-rag without the marker (value
None) is never cached.

>>> from pipelines.store.chroma import Store                                    # doctest: +SKIP
>>> cache = HeadsCache(store, collection)                                      # doctest: +SKIP
>>> heads = cache.read(["/data/docs"])        # read_heads' answer, usually without touching Chroma  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from chromadb.api.models.Collection import Collection

from pipelines.cache import write_json
from pipelines.store import marker
from pipelines.store.chroma import Store
from pipelines.store.records import FileRecord, Records, read_files, read_heads

_FORMAT = 1


@dataclass
class _State:
    marker: str | None
    complete: bool  # no chunk outside a complete file (read_heads' condition)
    heads: Records = field(default_factory=dict)


class HeadsCache:
    """The first chunks of one collection's files, as this machine last knew them."""

    def __init__(self, store: Store, collection: Collection) -> None:
        self.store = store
        self.collection = collection
        self.path = store.derived_dir("records", collection.name) / "heads.json"
        self._state: _State | None = None

    def read(self, roots: Iterable[str]) -> Records | None:
        """What :func:`~pipelines.store.records.read_heads` answers for ``roots`` now (None: a file is incomplete)."""
        state = self._current()
        if not state.complete:
            return None
        wanted = set(roots)
        return {key: _copy(record) for key, record in state.heads.items() if key[0] in wanted}

    def save(self) -> None:
        """Bring the cache up to the collection's current marker (after this process wrote to it) and store it."""
        self._state = None
        self._current()

    # -- inside --------------------------------------------------------------------------------------------

    def _current(self) -> _State:
        latest = marker.read(self.store, self.collection.name)
        state = self._state or self._load()
        if state is not None and state.marker == latest.value and latest.value is not None:
            if self._state is None:
                self._state = state
            return state
        files = latest.since(state.marker) if state is not None and state.marker is not None else None
        if state is not None and state.complete and files is not None:
            state = _caught_up(state, read_files(self.store, self.collection, files), files, latest.value)
        else:
            heads = read_heads(self.store, self.collection, roots=None)
            state = _State(latest.value, heads is not None, heads or {})
        self._state = state
        self._write(state)
        return state

    def _load(self) -> _State | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("format") != _FORMAT or raw.get("collection") != self.collection.id.hex:
                return None
            heads: Records = {}
            for root, source, hashes, chunkers, total, meta_hashes, meta_keys in raw["files"]:
                heads[(root, source)] = FileRecord(
                    hashes=set(hashes),
                    chunkers=set(chunkers),
                    total=int(total),
                    meta_hashes=set(meta_hashes),
                    meta_keys=set(meta_keys),
                    head_only=True,
                )
            return _State(raw["marker"], bool(raw["complete"]), heads)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: read again from Chroma

    def _write(self, state: _State) -> None:
        if state.marker is None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            return
        files = [
            [root, source, sorted(r.hashes), sorted(r.chunkers), r.total, sorted(r.meta_hashes), sorted(r.meta_keys)]
            for (root, source), r in sorted(state.heads.items())
        ]
        raw = {
            "format": _FORMAT,
            "collection": self.collection.id.hex,  # a collection deleted and made again under the same name is another
            "marker": state.marker,
            "complete": state.complete,
            "files": files,
        }
        with contextlib.suppress(OSError):  # a cache that cannot be written costs the next run a scan, nothing else
            write_json(self.path, raw)


def _caught_up(state: _State, records: Records, files: set[marker.FileKey], value: str | None) -> _State:
    """``state`` with the files the log named replaced by their ``records`` as Chroma holds them now."""
    heads = dict(state.heads)
    complete = state.complete
    for key in files:
        heads.pop(key, None)
        record = records.get(key)
        if record is None:
            continue  # deleted
        if record.total == 0 or len(record.ids) != record.total:
            complete = False  # chunks outside a complete file: the ingest reads every record, as read_heads says
            continue
        heads[key] = _copy(record)
    return _State(value, complete, heads)


def _copy(record: FileRecord) -> FileRecord:
    """A head-only record (its chunk ids are not kept), not shared with the cache."""
    return FileRecord(
        hashes=set(record.hashes),
        chunkers=set(record.chunkers),
        total=record.total,
        meta_hashes=set(record.meta_hashes),
        meta_keys=set(record.meta_keys),
        head_only=True,
    )
