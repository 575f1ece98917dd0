"""Ingest under faults: a flaky server, a refused item, a server that gives up, and SIGKILL at random moments
(which must leave no reader or parser process behind)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromadb.api.client import SharedSystemClient

from pipelines.embeddings.profiles import profile_for
from pipelines.embeddings.server import ServerEmbeddings
from pipelines.errors import QwenRagError
from pipelines.ingestion.writer import IngestAborted, ingest
from pipelines.settings import Settings
from pipelines.store.chroma import Store
from testbed.embedders import HashEmbedder
from testbed.process import descendants, sglang_process, wait_gone
from testbed.sglang import SGLangServer

QWEN = "Qwen/Qwen3-Embedding-0.6B"


def write_corpus(folder: Path, files: int, paragraphs: int, seed: int = 3, pages: int = 0) -> Path:
    """``files`` Markdown files of mixed Chinese and English paragraphs, and ``pages`` HTML pages (parsed in
    worker processes, where Markdown is read in the ingest's own)."""
    rng = random.Random(seed)
    words = [
        "vector",
        "index",
        "chunk",
        "token",
        "server",
        "retrieval",
        "检索",
        "向量",
        "数据库",
        "切分",
        "嵌入",
        "查询",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        paras = [
            f"File {f} paragraph {p}. " + " ".join(rng.choice(words) for _ in range(rng.randint(40, 120)))
            for p in range(paragraphs)
        ]
        (folder / f"doc{f:03d}.md").write_text("\n\n".join(paras), encoding="utf-8")
    for p in range(pages):
        body = "".join(f"<p>Page {p} paragraph {i}: {' '.join(rng.choices(words, k=60))}</p>" for i in range(4))
        (folder / f"page{p:02d}.html").write_text(f"<html><body><h1>Page {p}</h1>{body}</body></html>", "utf-8")
    return folder


class Snapshot:
    """Everything a collection holds, keyed by chunk id; equal when texts and metadata match exactly and vectors
    match to float32 precision (Chroma hands back normalised copies for the cosine space)."""

    def __init__(self, store: Path) -> None:
        # Chroma caches one client per path in a process; other processes wrote here since, so read afresh.
        SharedSystemClient.clear_system_cache()
        collection = Store.open(path=store).existing("default")
        assert collection is not None
        got = collection.get(include=["documents", "metadatas", "embeddings"])
        self.records = {
            cid: (doc, meta) for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
        self.vectors = {cid: np.asarray(vec) for cid, vec in zip(got["ids"], got["embeddings"], strict=True)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot) or self.records != other.records:
            return False
        return all(np.allclose(vec, other.vectors[cid], atol=1e-6) for cid, vec in self.vectors.items())

    def __repr__(self) -> str:
        return f"Snapshot({len(self.records)} chunks)"


def snapshot(store: Path) -> Snapshot:
    return Snapshot(store)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("faults") / "corpus", files=12, paragraphs=6, pages=4)


@pytest.fixture(scope="module")
def clean(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """The store a clean ingest of the corpus gives: what every faulty run must end up equal to."""
    store = tmp_path_factory.mktemp("clean") / "store"
    with SGLangServer(embedder=HashEmbedder(dim=384), served_model_name=QWEN) as srv:
        ingest([corpus], Settings(store=store, embeddings_url=[srv.url + "/v1"], chunk_tokens=128, chunk_overlap=16))
    return snapshot(store)


def settings_for(srv: SGLangServer, store: Path, **extra: Any) -> Settings:
    return Settings(
        store=store, embeddings_url=[srv.url + "/v1"], chunk_tokens=128, chunk_overlap=16, batch_size=8, **extra
    )


@pytest.mark.slow
def test_a_flaky_server_still_gets_everything_indexed(corpus: Path, clean: Snapshot, tmp_path: Path) -> None:
    with SGLangServer(embedder=HashEmbedder(dim=384), served_model_name=QWEN) as srv:
        srv.fail_rate(0.2, ["503", "drop"], seed=11)
        report = ingest([corpus], settings_for(srv, tmp_path / "s", max_retries=8))
    assert report.failed == 0 and report.problems == []
    assert snapshot(tmp_path / "s") == clean


def test_one_refused_item_costs_only_that_item(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    for i in range(6):
        (folder / f"short{i}.txt").write_text(f"短文本 {i}：向量检索。", encoding="utf-8")
    (folder / "long.txt").write_text("long paragraph " * 150, encoding="utf-8")
    # The server's context is 64 tokens while the client was told 32768 (a misconfigured --context-length):
    # the long chunk gets SGLang's 400, which fails its whole batch.
    with SGLangServer(embedder=HashEmbedder(dim=384), served_model_name=QWEN, context_length=64) as srv:
        remote = ServerEmbeddings.connect(srv.url + "/v1")
        remote.profile = profile_for(QWEN, 32768)
        report = ingest([folder], Settings(store=tmp_path / "s", batch_size=32), embeddings=remote)
    assert report.added == 6 and report.failed == 1
    [problem] = report.problems
    assert problem.source == "long.txt" and "longer than the model's context length" in problem.cause


@pytest.mark.slow
def test_a_server_that_gives_up_stops_the_run_and_the_next_run_resumes(
    corpus: Path, clean: Snapshot, tmp_path: Path
) -> None:
    store = tmp_path / "s"
    with SGLangServer(embedder=HashEmbedder(dim=384), served_model_name=QWEN) as srv:
        base = srv.embedding_requests

        def break_after_a_few() -> None:
            while srv.embedding_requests < base + 4:
                time.sleep(0.01)
            srv.fail_rate(1.0, ["503"], seed=1)

        threading.Thread(target=break_after_a_few, daemon=True).start()
        started = time.monotonic()
        with pytest.raises(IngestAborted, match="the embedding server gave up") as aborted:
            ingest([corpus], settings_for(srv, store, max_retries=1, concurrency=1))
        assert time.monotonic() - started < 30
        assert isinstance(aborted.value, QwenRagError) and aborted.value.http_status == 503
        assert aborted.value.report.chunks_written > 0  # what was embedded is kept
        srv.fail_rate(0.0, ["503"], seed=1)
        resumed = ingest([corpus], settings_for(srv, store))
    assert resumed.chunks_reused + resumed.chunks_written >= resumed.chunks_written > 0
    assert snapshot(store) == clean


def parser_workers(pids: list[int]) -> list[int]:
    """Those of ``pids`` forked by a multiprocessing forkserver (whose command line they share), the server too."""
    found = []
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            if b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


@pytest.fixture(scope="module")
def server_process() -> Iterator[str]:
    """The stand-in as its own process, as a user's server would be, with a little latency per request."""
    with sglang_process(dim=384, latency_ms=40) as url:
        yield url


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_clean_store(
    corpus: Path, clean: Snapshot, tmp_path: Path, server_process: str
) -> None:
    store = tmp_path / "s"
    binary = str(Path(sys.executable).with_name("qwen-rag"))
    command = [
        binary,
        "ingest",
        str(corpus),
        "--store",
        str(store),
        "--embeddings-url",
        server_process,
        "--chunk-tokens",
        "128",
        "--chunk-overlap",
        "16",
        "--batch-size",
        "4",
        "--concurrency",
        "2",
    ]
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, timeout=300, cwd=tmp_path)
    full_run = time.monotonic() - started
    assert snapshot(store) == clean
    rng = random.Random(2026)
    killed_parsing = 0  # attempts that killed the ingest while it had parser workers
    for attempt in range(10):
        # --full drops the collection first, so the kill lands anywhere in a rebuild: mid-file, mid-batch, between
        # a file's last write and its completion mark.
        victim = subprocess.Popen(
            [*command, "--full"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path
        )
        time.sleep(full_run * rng.uniform(0.3, 0.95))  # the first second or two is start-up
        family = descendants(victim.pid)
        killed_parsing += len(parser_workers(family)) > 1  # the forkserver and at least one worker
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        assert wait_gone(family) == [], f"attempt {attempt}: the ingest's reader or parser processes outlived it"
        done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert snapshot(store) == clean, f"attempt {attempt}"
    assert killed_parsing > 0, "no attempt killed the ingest while it parsed files in worker processes"
