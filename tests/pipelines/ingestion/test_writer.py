"""The ingest pipeline end to end: real files, real Chroma, the embedded model or the SGLang stand-in."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loaders.tokens import qwen_tokenizer
from pipelines.embeddings import Provider
from pipelines.embeddings.local import LocalEmbeddings
from pipelines.embeddings.server import ServerEmbeddings
from pipelines.ingestion import writer
from pipelines.ingestion.writer import Ingest, IngestReport, ingest
from pipelines.retrieve import lexical_sync
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Settings
from pipelines.store.chroma import Store, StoreError
from pipelines.store.records import ROOT, SOURCE
from testbed.embedders import HashEmbedder
from testbed.sglang import SGLangServer
from tests.conftest import SAMPLES

QWEN = "Qwen/Qwen3-Embedding-0.6B"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(SAMPLES, target)
    return target


def run(paths: list[Path], store: Path, embeddings: Provider, **settings: Any) -> IngestReport:
    return ingest(paths, Settings(store=store, **settings), embeddings=embeddings)


def ids(store: Path, collection: str = "default") -> set[str]:
    found = Store.open(path=store).existing(collection)
    assert found is not None
    return set(found.get(include=[])["ids"])


def test_samples_are_indexed_with_citation_metadata(corpus: Path, store_dir: Path, local: LocalEmbeddings) -> None:
    report = run([corpus], store_dir, local)
    assert (report.files, report.added, report.failed, report.problems) == (9, 9, 0, [])
    assert report.chunks_written == 9
    collection = Store.open(path=store_dir).existing("default")
    assert collection is not None
    got = collection.get(include=["metadatas", "documents"])
    by_source = {m["source"]: (m, d) for m, d in zip(got["metadatas"], got["documents"], strict=True)}
    meta, text = by_source["ml.txt"]
    assert text == "机器学习是一种让计算机自动学习的方法。"
    assert meta["start_index"] == 0 and len(meta["file_hash"]) == 64 and meta["file_type"] == "text"
    assert by_source["temperature.py"][0]["language"] == "python"
    assert "console.log" not in by_source["weather.html"][1]


def test_a_second_run_adds_nothing_and_asks_for_nothing(corpus: Path, store_dir: Path, local: LocalEmbeddings) -> None:
    run([corpus], store_dir, local)
    before = ids(store_dir)
    again = run([corpus], store_dir, local)
    assert (again.added, again.updated, again.unchanged, again.chunks_written, again.embedding_requests) == (
        0,
        0,
        9,
        0,
        0,
    )
    assert ids(store_dir) == before


@pytest.mark.slow
def test_changed_and_deleted_files_leave_exactly_a_clean_ingests_ids(
    corpus: Path, tmp_path: Path, local: LocalEmbeddings
) -> None:
    store = tmp_path / "incremental"
    run([corpus], store, local)
    (corpus / "ml.txt").write_text("机器学习让计算机从数据中学习规律。\n", encoding="utf-8")
    (corpus / "pentest.txt").unlink()
    report = run([corpus], store, local)
    assert (report.updated, report.deleted, report.unchanged) == (1, 1, 7)
    assert report.embedding_requests == 1 and report.chunks_written == 1
    clean = tmp_path / "clean"
    run([corpus], clean, local)
    assert ids(store) == ids(clean)


def test_volatile_metadata_never_forces_a_re_embed(corpus: Path, store_dir: Path, local: LocalEmbeddings) -> None:
    run([corpus], store_dir, local)
    import os

    for f in corpus.iterdir():
        os.utime(f, (1, 1))  # every mtime changes; the contents do not
    assert run([corpus], store_dir, local).embedding_requests == 0


@pytest.mark.slow
def test_another_model_is_refused(corpus: Path, store_dir: Path, local: LocalEmbeddings) -> None:
    run([corpus], store_dir, local)
    with SGLangServer(embedder=HashEmbedder(dim=1024), served_model_name=QWEN) as srv:
        remote = ServerEmbeddings.connect(srv.url + "/v1")
        with pytest.raises(StoreError, match=r"built with intfloat/multilingual-e5-small \(384 dims\)"):
            run([corpus], store_dir, remote)
        with pytest.raises(StoreError, match="built with intfloat/multilingual-e5-small"):
            build_retriever(Settings(store=store_dir), embeddings=remote)
        report = run([corpus], store_dir, remote, on_mismatch="recreate")
        assert report.added == 9


@pytest.fixture(scope="module")
def hash_server() -> Iterator[SGLangServer]:
    with SGLangServer(embedder=HashEmbedder(dim=1024), served_model_name=QWEN) as srv:
        yield srv


def test_against_sglang_documents_are_text_and_within_the_context(
    corpus: Path, store_dir: Path, hash_server: SGLangServer
) -> None:
    since = len(hash_server.requests)
    remote = ServerEmbeddings.connect(hash_server.url + "/v1")
    report = run([corpus], store_dir, remote)
    assert report.added == 9
    sent = [r.json["input"] for r in hash_server.requests[since:] if r.path == "/v1/embeddings"]
    texts = [t for batch in sent for t in batch]
    assert all(isinstance(t, str) and t.strip() for t in texts)  # never token ids, never blank
    assert not any(t.startswith("Instruct:") for t in texts)  # documents carry no instruction
    tokenizer = qwen_tokenizer()
    assert max(tokenizer.count(t) + 1 for t in texts) <= 32768 - 7


def big_text(tokens: int, seed: int = 7) -> str:
    """Mixed Chinese and English paragraphs, numbered so every part is distinct, of about ``tokens`` tokens."""
    rng = random.Random(seed)
    zh = "机器学习深度学习神经网络自然语言处理向量数据库检索增强生成二分查找排序算法"
    parts = []
    n = 0
    while n < tokens:
        words = " ".join(rng.choice(["retrieval", "vector", "chunk", "token", "server", "index"]) for _ in range(30))
        sentence = "".join(rng.choice(zh) for _ in range(60))
        paragraph = f"第{len(parts)}段。{sentence}。Paragraph {len(parts)}: {words}.\n\n"
        parts.append(paragraph)
        n += qwen_tokenizer().count(paragraph)
    return "".join(parts)


@pytest.mark.slow
def test_a_200k_token_file_is_indexed_completely_within_the_limit(tmp_path: Path, hash_server: SGLangServer) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    text = big_text(200_000)
    (folder / "big.txt").write_text(text, encoding="utf-8")
    tokenizer = qwen_tokenizer()
    assert tokenizer.count(text) >= 200_000
    remote = ServerEmbeddings.connect(hash_server.url + "/v1")
    since = len(hash_server.requests)
    store = tmp_path / "store"
    report = run([folder], store, remote, batch_size=64)
    assert report.failed == 0 and report.problems == []
    sent = [t for r in hash_server.requests[since:] if r.path == "/v1/embeddings" for t in r.json["input"]]
    assert max(tokenizer.count(t) + 1 for t in sent) <= 512  # every chunk within the chunk size
    collection = Store.open(path=store).existing("default")
    assert collection is not None
    got = collection.get(include=["metadatas", "documents"])
    # Every character of the file lies in some chunk, at the offset the chunk claims.
    covered = [False] * len(text)
    for meta, chunk in zip(got["metadatas"], got["documents"], strict=True):
        start = meta["start_index"]
        assert text[start : start + len(chunk)] == chunk
        covered[start : start + len(chunk)] = [True] * len(chunk)
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    # And every part is retrievable: a chunk's own text, as a query, finds it first.
    retriever = build_retriever(Settings(store=store, k=1), embeddings=remote)
    for chunk in random.Random(1).sample(got["documents"], 10):
        assert retriever.invoke(chunk)[0].page_content == chunk


def test_a_chunk_size_above_the_model_context_is_clamped(tmp_path: Path, local: LocalEmbeddings) -> None:
    ingest_run = Ingest(Settings(store=tmp_path / "s", chunk_tokens=4096), embeddings=local)
    assert ingest_run.chunker.spec.chunk_tokens == 512  # multilingual-e5-small reads 512 tokens


@pytest.mark.slow
def test_the_collection_remembers_its_query_instruction(
    corpus: Path, store_dir: Path, hash_server: SGLangServer
) -> None:
    task = "Given a question about computing, retrieve passages that answer it"
    settings = Settings(store=store_dir, embeddings_url=[hash_server.url + "/v1"], task=task)
    ingest([corpus], settings)
    since = len(hash_server.requests)
    build_retriever(Settings(store=store_dir, embeddings_url=[hash_server.url + "/v1"])).invoke("什么是人工智能？")
    queries = [r.json["input"] for r in hash_server.requests[since:] if r.path == "/v1/embeddings"]
    assert queries[-1] == [f"Instruct: {task}\nQuery:什么是人工智能？"]


def test_each_change_names_exactly_the_files_it_writes(
    tmp_path: Path, local: LocalEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collection's change log (pipelines.store.marker) names, for each write, the files whose chunks that write
    adds or deletes: not the files read ahead whose chunks wait for a later write (each bump rewrites the whole log,
    so a name too many costs every later write)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = random.Random(3)
    words = ["orchard", "apple", "river", "tea", "kettle", "search", "sorted", "range", "zebra", "savannah"]
    for i in range(16):
        text = " ".join(rng.choices(words, k=rng.choice([20, 90])))  # one chunk or several
        (corpus / f"note{i:02d}.md").write_text(f"Note {i}. {text}", encoding="utf-8")
    # A large run in miniature: writes of 4 chunks, the last 6 held back, so files read ahead wait between writes.
    monkeypatch.setattr(writer, "SMALL_RUN_BYTES", 0)
    monkeypatch.setattr(writer, "WRITE_BATCH", 4)
    monkeypatch.setattr(writer, "HNSW_SAVE_EVERY", 6)
    events: list[tuple[str, frozenset[tuple[str, str]]]] = []
    bump, upsert, delete = lexical_sync.bump, Store.upsert, Store.delete

    def named(store: Store, collection: Any, files: Any) -> Any:
        events.append(("bump", frozenset(files)))
        return bump(store, collection, files)

    def upserted(self: Store, collection: Any, ids: Any, vectors: Any, texts: Any, metadatas: Any) -> None:
        events.append(("write", frozenset((str(m[ROOT]), str(m[SOURCE])) for m in metadatas)))
        upsert(self, collection, ids, vectors, texts, metadatas)

    def deleted(self: Store, collection: Any, chunk_ids: Any) -> Any:
        if chunk_ids:
            got = collection.get(ids=list(chunk_ids), include=["metadatas"])
            events.append(("write", frozenset((str(m[ROOT]), str(m[SOURCE])) for m in got["metadatas"])))
        return delete(self, collection, chunk_ids)

    monkeypatch.setattr(lexical_sync, "bump", named)
    monkeypatch.setattr(Store, "upsert", upserted)
    monkeypatch.setattr(Store, "delete", deleted)
    settings = Settings(store=tmp_path / "store", chunk_tokens=32, chunk_overlap=4, batch_size=2)
    ingest([corpus], settings, embeddings=local)
    for i in range(0, 16, 3):  # edits: new chunks and stale ones to delete
        (corpus / f"note{i:02d}.md").write_text(
            f"Note {i}, rewritten. " + " ".join(words * (i % 2 + 1)), encoding="utf-8"
        )
    report = ingest([corpus], settings, embeddings=local)
    assert report.updated == 6 and report.chunks_deleted > 0

    changes = 0
    while events:
        kind, files = events.pop(0)
        assert kind == "bump"  # a change: the bump that names its files, its writes, the bump that closes it
        touched: set[tuple[str, str]] = set()
        while events[0][0] == "write":
            touched |= events.pop(0)[1]
        assert events.pop(0) == ("bump", files)
        assert files == touched
        changes += 1
    assert changes > 8
