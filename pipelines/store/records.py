"""What is indexed: per source file, its content hash, its chunker and its chunks — read from Chroma itself.

Why not LangChain's ``SQLRecordManager`` or a SQLite table beside the store: a second record can disagree with the
store after a crash between the two writes, and it cannot follow a ``chroma run`` server that several machines
share. Every chunk already carries ``root``, ``source``, ``file_hash``, ``chunker``, ``chunk`` (its position) and
``chunks`` (how many its file has), so the store is its own record: a file is indexed when all of its chunks are
there with the current hash; anything less (a crash mid-file) is finished on the next run.

A chunk with the user's own fields (``--meta``, sidecars) also carries ``meta_hash`` (their digest) and ``meta_keys``
(their names, a JSON list): a file whose content is current but whose fields changed has its chunks' metadata
re-written in place, without reading or embedding it again, and the names say which keys to drop then.

Read by what changed: a file's first chunk is written last, after the rest of the file and after its stale chunks
are deleted, so it alone tells whether the file is current (its hash, chunker and chunk count). :func:`read_heads`
reads only those (one chunk per file, not every chunk's metadata) and is exact when the collection holds no chunk
outside a complete file, which the chunk count checks; then the ingest reads the full records of the changed files
only (:func:`read_files`). After a crash left a partial file, it falls back to :func:`read_records`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chromadb.api.models.Collection import Collection

from pipelines.fields import Fields, FieldValue, fields_hash
from pipelines.store.chroma import Store

#: Metadata keys written on every chunk.
ROOT, SOURCE, FILE_HASH, CHUNKER = "root", "source", "file_hash", "chunker"
POSITION, TOTAL, CHUNK_HASH = "chunk", "chunks", "chunk_hash"
#: Written on the chunks of a file with user fields only (see the module docstring).
META_HASH, META_KEYS = "meta_hash", "meta_keys"


def tagged(fields: Fields) -> dict[str, FieldValue | None]:
    """The metadata a file's fields put on each of its chunks: the fields, their digest and their names. With no
    fields, ``None`` for the two keys: Chroma drops a key set to None, so a file whose fields were all removed loses
    them."""
    if not fields:
        return {META_HASH: None, META_KEYS: None}
    names = json.dumps(sorted(fields), ensure_ascii=False)
    return {**fields, META_HASH: fields_hash(fields), META_KEYS: names}


def meta_hash(fields: Fields) -> str:
    """What `FileRecord.meta_hashes` holds for a file with these fields ("" for none)."""
    return fields_hash(fields) if fields else ""


def chunk_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(root: str, source: str, position: int, text_hash: str) -> str:
    """Deterministic: the same file chunked the same way gets the same ids, so a re-run adds nothing."""
    where = hashlib.sha256(f"{root}\x00{source}".encode()).hexdigest()[:16]
    return f"{where}-{position}-{text_hash[:16]}"


@dataclass
class FileRecord:
    """The chunks the store holds for one file."""

    # File hashes seen on its chunks: more than one means an update was cut short.
    hashes: set[str] = field(default_factory=set)
    chunkers: set[str] = field(default_factory=set)
    total: int = 0  # written on the first chunk once the file's last chunk is in; 0 = unfinished
    ids: dict[str, str] = field(default_factory=dict)  # chunk id -> chunk text hash
    # Digests of the user fields seen on its chunks ("" for none): more than one means a re-tag was cut short.
    meta_hashes: set[str] = field(default_factory=set)
    meta_keys: set[str] = field(default_factory=set)  # the names of the user fields on any of its chunks
    # Read from the first chunk alone (read_heads), its other chunks known to be there: ``ids`` is not filled.
    head_only: bool = False

    def is_current(self, file_hash: str, chunker: str) -> bool:
        """All chunks there, all from this version of the file, cut by this chunker."""
        complete = self.head_only or len(self.ids) == self.total
        return self.hashes == {file_hash} and self.chunkers == {chunker} and self.total > 0 and complete

    def has_fields(self, fields: Fields) -> bool:
        """All its chunks carry exactly these user fields (a record without any stands for none)."""
        return (self.meta_hashes or {""}) == {meta_hash(fields)}


Records = dict[tuple[str, str], FileRecord]


def _roots(roots: Iterable[str]) -> dict[str, Any] | None:
    wanted = sorted(set(roots))
    if not wanted:
        return None
    return {ROOT: wanted[0]} if len(wanted) == 1 else {ROOT: {"$in": wanted}}


def _add(records: Records, chunk: str, meta: dict[str, Any]) -> FileRecord:
    record = records.setdefault((str(meta.get(ROOT)), str(meta.get(SOURCE))), FileRecord())
    record.hashes.add(str(meta.get(FILE_HASH)))
    record.chunkers.add(str(meta.get(CHUNKER)))
    if meta.get(POSITION) == 0:
        record.total = int(meta.get(TOTAL) or 0)
    record.ids[chunk] = str(meta.get(CHUNK_HASH))
    record.meta_hashes.add(str(meta.get(META_HASH) or ""))
    record.meta_keys.update(json.loads(str(meta.get(META_KEYS) or "[]")))
    return record


def read_records(store: Store, collection: Collection, roots: Iterable[str]) -> Records:
    """The records of every file under ``roots``, keyed by ``(root, source)``: every chunk's metadata."""
    where = _roots(roots)
    records: Records = {}
    if where is not None:
        for chunk, meta in store.metadatas(collection, where=where):
            _add(records, chunk, meta)
    return records


def read_heads(store: Store, collection: Collection, roots: Iterable[str] | None) -> Records | None:
    """The records of the files under ``roots`` (None: every root) from their first chunks alone, or None when the
    collection holds chunks outside complete files (the sum of the first chunks' counts differs from its size).
    :mod:`pipelines.store.heads_cache` keeps this answer between runs."""
    wanted = None if roots is None else set(roots)
    records: Records = {}
    chunks = 0
    for chunk, meta in store.metadatas(collection, where={POSITION: 0}):
        chunks += int(meta.get(TOTAL) or 0)
        if wanted is None or str(meta.get(ROOT)) in wanted:
            record = _add(records, chunk, meta)
            record.ids.clear()
            record.head_only = True
    return records if chunks == collection.count() else None


def read_files(store: Store, collection: Collection, keys: Iterable[tuple[str, str]]) -> Records:
    """The full records of the files ``keys``: a query per 200 sources (each is an SQL parameter)."""
    wanted = set(keys)
    records: Records = {}
    for where in by_source(wanted):
        for chunk, meta in store.metadatas(collection, where=where):
            if (str(meta.get(ROOT)), str(meta.get(SOURCE))) in wanted:
                _add(records, chunk, meta)
    return records


def by_source(keys: Iterable[tuple[str, str]], step: int = 200) -> list[dict[str, Any]]:
    """Chroma filters for the chunks of the files ``keys``, ``step`` sources a filter; the caller keeps those of the
    right root. On the source alone: Chroma answers ``{"source": {"$in": [...]}}`` from its index in 0.05 s at 100k
    chunks, but takes 0.5 s with the root beside it in an ``$and`` (chromadb 1.5)."""
    sources = sorted({source for _, source in keys})
    return [{SOURCE: {"$in": sources[start : start + step]}} for start in range(0, len(sources), step)]
