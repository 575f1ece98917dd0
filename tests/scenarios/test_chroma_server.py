"""Scale-out: the same commands against a real `chroma run` server instead of the embedded store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Settings
from pipelines.store.chroma import Store, StoreError
from testbed.chroma import chroma_server
from testbed.embedders import HashEmbedder
from testbed.sglang import SGLangServer
from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow  # each test runs against a `chroma run` server process


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma")) as url:
        yield url


def test_server_and_embedded_store_give_the_same_results(chroma: str, tmp_path: Path, local: LocalEmbeddings) -> None:
    on_server = Settings(chroma_url=chroma, collection="same", k=3)
    on_disk = Settings(store=tmp_path / "store", collection="same", k=3)
    for settings in (on_server, on_disk):
        assert ingest([SAMPLES], settings, embeddings=local).added == 9
    for query in ("什么是人工智能？", "how to implement binary search", "weekend rain"):
        remote = build_retriever(on_server, embeddings=local).invoke(query)
        embedded = build_retriever(on_disk, embeddings=local).invoke(query)
        assert [d.metadata["source"] for d in remote] == [d.metadata["source"] for d in embedded]
        assert [d.metadata["score"] for d in remote] == pytest.approx([d.metadata["score"] for d in embedded], abs=1e-5)


def test_incremental_sync_and_the_model_guard_work_on_the_server(
    chroma: str, tmp_path: Path, local: LocalEmbeddings
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLES, corpus)
    settings = Settings(chroma_url=chroma, collection="sync")
    ingest([corpus], settings, embeddings=local)
    (corpus / "tea.rst").unlink()
    again = ingest([corpus], settings, embeddings=local)
    assert (again.deleted, again.unchanged, again.embedding_requests) == (1, 8, 0)
    with SGLangServer(embedder=HashEmbedder(dim=1024), served_model_name="Qwen/Qwen3-Embedding-0.6B") as srv:
        other = Settings(chroma_url=chroma, collection="sync", embeddings_url=[srv.url + "/v1"])
        with pytest.raises(StoreError, match="was built with intfloat/multilingual-e5-small"):
            ingest([corpus], other)


def test_two_ingest_processes_at_once_lose_nothing(chroma: str, tmp_path: Path) -> None:
    halves = [tmp_path / "a", tmp_path / "b"]
    for i, half in enumerate(halves):
        half.mkdir()
        for n in range(15):
            (half / f"{i}-{n}.md").write_text(f"# Note {i}-{n}\n\n" + f"段落 {n} 向量检索 chunk {i}. " * 40)
    binary = str(Path(sys.executable).with_name("qwen-rag"))
    with SGLangServer(embedder=HashEmbedder(dim=384), served_model_name="Qwen/Qwen3-Embedding-0.6B") as srv:
        common = ["--chroma-url", chroma, "--collection", "twoproc", "--embeddings-url", srv.url + "/v1"]
        procs = [
            subprocess.Popen([binary, "ingest", str(half), *common, "--batch-size", "4"], stderr=subprocess.PIPE)
            for half in halves
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        collection = Store.open(url=chroma).existing("twoproc")
        assert collection is not None
        sources = {m["source"] for m in collection.get(include=["metadatas"])["metadatas"]}
        assert sources == {f"{i}-{n}.md" for i in range(2) for n in range(15)}
        # And nothing is missing or doubled: a fresh ingest of both halves has nothing to do.
        settings = Settings(chroma_url=chroma, collection="twoproc", embeddings_url=[srv.url + "/v1"])
        report = ingest(halves, settings)
        assert (report.unchanged, report.chunks_written) == (30, 0)


def test_a_reader_follows_another_machines_writes_change_by_change(
    chroma: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer runs with its own cache directory (its own lexical index, as on another machine); the reader's
    warm retriever catches up from the collection's change log: the edited file only, no rebuild."""
    from pipelines.retrieve import lexical_sync

    monkeypatch.setenv("QWEN_RAG_CACHE_DIR", str(tmp_path / "reader-cache"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("The orchard grows apples and pears.", encoding="utf-8")
    (corpus / "b.md").write_text("Green tea is steeped at eighty degrees.", encoding="utf-8")
    binary = str(Path(sys.executable).with_name("qwen-rag"))
    writer_env = {**os.environ, "QWEN_RAG_CACHE_DIR": str(tmp_path / "writer-cache")}
    with SGLangServer(embedder=HashEmbedder(dim=64), served_model_name="Qwen/Qwen3-Embedding-0.6B") as srv:
        common = ["--chroma-url", chroma, "--collection", "follow", "--embeddings-url", srv.url + "/v1"]

        def write() -> None:
            done = subprocess.run([binary, "ingest", str(corpus), *common], env=writer_env, capture_output=True)
            assert done.returncode == 0, done.stderr

        write()
        settings = Settings(chroma_url=chroma, collection="follow", embeddings_url=[srv.url + "/v1"], mode="bm25")
        retriever = build_retriever(settings)
        assert retriever.invoke("apples orchard")[0].metadata["source"] == "a.md"  # the reader builds its index

        (corpus / "a.md").write_text("The savannah shelters zebras and giraffes.", encoding="utf-8")
        write()
        reindexed: list[set[tuple[str, str]]] = []
        original = lexical_sync._reindex
        monkeypatch.setattr(
            lexical_sync,
            "_reindex",
            lambda store, c, index, files: reindexed.append(files) or original(store, c, index, files),
        )
        monkeypatch.setattr(lexical_sync.LexicalIndex, "clear", lambda self: pytest.fail("rebuilt from scratch"))
        [first, *_] = retriever.invoke("zebras giraffes")
        assert (first.metadata["source"], first.page_content) == ("a.md", "The savannah shelters zebras and giraffes.")
        assert retriever.invoke("apples orchard") == []
        assert reindexed == [{(str(corpus.resolve()), "a.md")}]
