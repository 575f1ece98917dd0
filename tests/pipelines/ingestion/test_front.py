"""The ingest's front (read, chunk, embed) in threads and in a forked process: same store, no hang, no orphan;
its failures are reported as one-line errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from langchain_core.documents import Document

from loaders import OcrMode, SourceFile
from loaders.chunking import Chunker, ChunkSpec
from loaders.tokens import qwen_tokenizer
from pipelines.embeddings.local import LocalEmbeddings
from pipelines.errors import IngestError
from pipelines.ingestion import running
from pipelines.ingestion.front import Front
from pipelines.ingestion.plan import Job
from pipelines.ingestion.writer import ingest
from pipelines.settings import Settings, Workers
from testbed.embedders import HashEmbedder
from testbed.sglang import SGLangServer
from tests.scenarios.test_ingestion_faults import QWEN, Snapshot, write_corpus


@pytest.fixture(scope="module")
def server() -> SGLangServer:
    with SGLangServer(embedder=HashEmbedder(dim=384), served_model_name=QWEN) as srv:
        yield srv


def settings(server: SGLangServer, store: Path, workers: Workers) -> Settings:
    return Settings(
        store=store,
        embeddings_url=[server.url + "/v1"],
        chunk_tokens=96,
        chunk_overlap=8,
        batch_size=8,
        workers=workers,
    )


@pytest.mark.slow
def test_threads_and_a_process_build_the_same_store(tmp_path: Path, server: SGLangServer) -> None:
    # The HTML pages are parsed in worker processes: the threads' run starts a forkserver in this process, which
    # the forked front must not use (it is its parent's) but start one of its own.
    corpus = write_corpus(tmp_path / "corpus", files=20, paragraphs=5, seed=9, pages=3)
    reports = {w: ingest([corpus], settings(server, tmp_path / w.value, w)) for w in (Workers.THREADS, Workers.PROCESS)}
    threads, process = reports[Workers.THREADS], reports[Workers.PROCESS]
    assert process.chunks_written == threads.chunks_written > 100
    assert process.embedding_requests == threads.embedding_requests
    assert process.added == threads.added == 23 and process.problems == threads.problems == []
    assert Snapshot(tmp_path / "process") == Snapshot(tmp_path / "threads")


@pytest.mark.slow
def test_an_edited_file_reuses_its_stored_vectors_in_a_process(tmp_path: Path, server: SGLangServer) -> None:
    corpus = write_corpus(tmp_path / "corpus", files=3, paragraphs=8, seed=4)
    store = tmp_path / "store"
    ingest([corpus], settings(server, store, Workers.PROCESS))
    edited = corpus / "doc001.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n\nOne new closing paragraph.", encoding="utf-8")
    report = ingest([corpus], settings(server, store, Workers.PROCESS))
    assert report.updated == 1 and report.unchanged == 2
    assert report.chunks_reused > 0 and report.embedding_requests == 1  # only the new tail is embedded


def test_a_reader_process_that_dies_is_reported_not_waited_for(
    tmp_path: Path, server: SGLangServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_corpus(tmp_path / "corpus", files=2, paragraphs=3)
    # The child is forked, so it runs the patched function: it dies at once without a word, as if OOM-killed.
    monkeypatch.setattr(running, "_warm_then_run", lambda *args: os._exit(3))
    started = time.monotonic()
    with pytest.raises(IngestError, match=r"reader stopped without finishing \(exit code 3\)"):
        ingest([corpus], settings(server, tmp_path / "store", Workers.PROCESS))
    assert time.monotonic() - started < 10


def test_an_error_in_the_front_is_reported_not_waited_for(
    tmp_path: Path, server: SGLangServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_corpus(tmp_path / "corpus", files=2, paragraphs=3)

    def broken(*args: object) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr(Front, "chunks", broken)
    with pytest.raises(IngestError, match=r"^the ingest's reader failed: ValueError: a bug$"):
        ingest([corpus], settings(server, tmp_path / "store", Workers.THREADS))


def test_a_few_files_get_the_same_terms_without_jiebas_whole_dictionary(tmp_path: Path) -> None:
    text = "向量数据库的检索效果取决于分词。中华人民共和国的首都是北京，Qwen3模型支持 BM25 searches."
    (tmp_path / "a.md").write_text(text, encoding="utf-8")
    job = Job(SourceFile(root=tmp_path, path=tmp_path / "a.md"), digest="d", record=None)
    chunker = Chunker(qwen_tokenizer(), ChunkSpec(chunk_tokens=16, overlap_tokens=0, max_tokens=512))

    def terms(few: bool) -> list[str]:
        front = Front(
            chunker, "qwen3:16:0", LocalEmbeddings(), concurrency=1, batch_size=8, pdf_password=None,
            ocr=OcrMode.NEVER, file_timeout=30, few=few,
        )  # fmt: skip
        return [chunk.terms for chunk in front.chunks(job, [Document(page_content=text, metadata={})])]

    few = terms(True)
    assert len(few) > 1 and any("北京" in t.split() for t in few)
    assert few == terms(False)
