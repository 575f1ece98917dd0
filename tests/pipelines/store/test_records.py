"""The records read by file: one source name under two roots is two files."""

from __future__ import annotations

from pathlib import Path

from pipelines.store.chroma import Store
from pipelines.store.records import read_files


def test_read_files_keeps_each_root_apart(tmp_path: Path) -> None:
    store = Store.open(path=tmp_path / "store")
    collection = store.client.create_collection("default", embedding_function=None)
    rows = [("/a", "notes.md", 0, "h1"), ("/a", "notes.md", 1, "h1"), ("/b", "notes.md", 0, "h2")]
    rows.append(("/a", "x.md", 0, "h3"))
    store.upsert(
        collection,
        [f"{root}-{source}-{position}" for root, source, position, _ in rows],
        [[1.0, float(i)] for i in range(len(rows))],
        ["text"] * len(rows),
        [{"root": r, "source": s, "chunk": p, "chunks": 2, "file_hash": h, "chunker": "c"} for r, s, p, h in rows],
    )
    records = read_files(store, collection, [("/a", "notes.md"), ("/b", "notes.md")])
    assert set(records) == {("/a", "notes.md"), ("/b", "notes.md")}
    assert set(records[("/a", "notes.md")].ids) == {"/a-notes.md-0", "/a-notes.md-1"}
    assert records[("/a", "notes.md")].hashes == {"h1"} and records[("/b", "notes.md")].hashes == {"h2"}
    assert set(read_files(store, collection, [("/b", "notes.md")])) == {("/b", "notes.md")}
