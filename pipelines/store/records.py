"""What is indexed: per source file, its content hash, its chunker and its chunks — read from Chroma itself.

Why not LangChain's ``SQLRecordManager`` or a SQLite table beside the store: a second record can disagree with the
store after a crash between the two writes, and it cannot follow a ``chroma run`` server that several machines
share. Every chunk already carries ``root``, ``source``, ``file_hash``, ``chunker``, ``chunk`` (its position) and
``chunks`` (how many its file has), so the store is its own record: a file is indexed when all of its chunks are
there with the current hash; anything less (a crash mid-file) is finished on the next run.

A chunk with the user's own fields (``--meta``, sidecars) also carries ``meta_hash`` (their digest) and ``meta_keys``
(their names, a JSON list): a file whose content is current but whose fields changed has its chunks' metadata
re-written in place, without reading or embedding it again, and the names say which keys to drop then.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from chromadb.api.models.Collection import Collection

from pipelines.store.chroma import Store
from pipelines.store.fields import Fields, FieldValue, fields_hash

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

    def is_current(self, file_hash: str, chunker: str) -> bool:
        """All chunks there, all from this version of the file, cut by this chunker."""
        return (
            self.hashes == {file_hash} and self.chunkers == {chunker} and self.total > 0 and len(self.ids) == self.total
        )

    def has_fields(self, fields: Fields) -> bool:
        """All its chunks carry exactly these user fields (a record without any stands for none)."""
        return (self.meta_hashes or {""}) == {meta_hash(fields)}


def read_records(store: Store, collection: Collection, roots: Iterable[str]) -> dict[tuple[str, str], FileRecord]:
    """The records of every file under ``roots``, keyed by ``(root, source)``."""
    wanted = sorted(set(roots))
    if not wanted:
        return {}
    where = {ROOT: wanted[0]} if len(wanted) == 1 else {ROOT: {"$in": wanted}}
    records: dict[tuple[str, str], FileRecord] = {}
    for chunk, meta in store.metadatas(collection, where=where):
        record = records.setdefault((str(meta.get(ROOT)), str(meta.get(SOURCE))), FileRecord())
        record.hashes.add(str(meta.get(FILE_HASH)))
        record.chunkers.add(str(meta.get(CHUNKER)))
        if meta.get(POSITION) == 0:
            record.total = int(meta.get(TOTAL) or 0)
        record.ids[chunk] = str(meta.get(CHUNK_HASH))
        record.meta_hashes.add(str(meta.get(META_HASH) or ""))
        record.meta_keys.update(json.loads(str(meta.get(META_KEYS) or "[]")))
    return records
