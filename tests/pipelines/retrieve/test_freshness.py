"""A warm retriever (the one ``serve`` and ``mcp`` keep) sees every change: its freshness check is the collection's
change marker, not its size. Real files, real Chroma, the embedded model."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve import lexical_sync
from pipelines.retrieve.lexical_sync import index_dir
from pipelines.retrieve.retriever import QwenRagRetriever, build_retriever
from pipelines.settings import Settings
from pipelines.store.chroma import Store
from pipelines.store.marker import read

OLD = "The orchard grows apples and pears along the river bank."
NEW = "The savannah shelters zebras and giraffes near the waterhole."
OTHERS = {
    "tea.md": "Green tea is steeped at eighty degrees Celsius for two minutes.",
    "search.md": "Binary search halves a sorted range at every step until it finds the target.",
}


def sources(retriever: QwenRagRetriever, query: str, mode: str) -> list[tuple[str, str]]:
    return [(d.metadata["source"], d.page_content) for d in retriever.invoke(query, mode=mode, k=3)]


def test_a_warm_retriever_sees_an_edit_that_kept_the_chunk_count(tmp_path: Path, local: LocalEmbeddings) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in {"a.md": OLD, **OTHERS}.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings(store=tmp_path / "store")
    ingest([corpus], settings, embeddings=local)
    retriever = build_retriever(settings, embeddings=local)
    for mode in ("bm25", "hybrid", "dense"):  # warm every derived structure first
        assert sources(retriever, "apples orchard", mode)[0] == ("a.md", OLD)
    count = retriever.collection.count()

    (corpus / "a.md").write_text(NEW, encoding="utf-8")
    report = ingest([corpus], settings, embeddings=local)
    assert report.updated == 1 and retriever.collection.count() == count  # same size: a count check sees nothing

    for mode in ("bm25", "hybrid", "dense"):
        found = sources(retriever, "zebras giraffes savannah", mode)
        assert found[0] == ("a.md", NEW), mode
        assert all(text != OLD for _, text in sources(retriever, "apples orchard", mode)), mode
    assert retriever.invoke("apples orchard pears", mode="bm25") == []  # the old words are gone from the index


def test_the_index_is_kept_by_the_ingest_and_a_missing_one_is_rebuilt(tmp_path: Path, local: LocalEmbeddings) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in OTHERS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings(store=tmp_path / "store", mode="bm25", k=1)
    ingest([corpus], settings, embeddings=local)
    store = Store.open(path=settings.store)
    # The ingest wrote the index and recorded the marker it reflects: the first query has nothing to catch up.
    state = (index_dir(store, "default") / "synced.json").read_text(encoding="utf-8")
    assert read(store, "default").value in state
    [doc] = build_retriever(settings, embeddings=local).invoke("steeped tea")
    assert doc.metadata["source"] == "tea.md"

    shutil.rmtree(index_dir(store, "default"))  # derived data: lost, then rebuilt from the collection
    lexical_sync._registry.clear()  # as a new process would find it
    [doc] = build_retriever(settings, embeddings=local).invoke("sorted range halves")
    assert doc.metadata["source"] == "search.md"
