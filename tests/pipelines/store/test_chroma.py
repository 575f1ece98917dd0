"""The Chroma store on a real PersistentClient in a temporary directory."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.settings import OnMismatch
from pipelines.store.chroma import IndexSignature, Store, StoreError

E5 = IndexSignature("intfloat/multilingual-e5-small", 384, "e5-prefix")
QWEN = IndexSignature("Qwen/Qwen3-Embedding-0.6B", 1024, "qwen-instruct")


def test_collection_is_cosine_and_records_its_model(store_dir: Path) -> None:
    store = Store.open(path=store_dir)
    collection = store.collection("col", E5, OnMismatch.FAIL)
    assert collection.configuration["hnsw"]["space"] == "cosine"
    reopened = Store.open(path=store_dir).existing("col")
    assert reopened is not None
    assert IndexSignature.from_metadata(reopened.metadata) == E5


def test_another_model_is_refused_in_one_line(store_dir: Path) -> None:
    store = Store.open(path=store_dir)
    store.collection("col", E5, OnMismatch.FAIL)
    with pytest.raises(StoreError) as error:
        store.collection("col", QWEN, OnMismatch.FAIL)
    message = str(error.value)
    assert "\n" not in message
    assert "multilingual-e5-small (384 dims)" in message and "Qwen3-Embedding-0.6B (1024 dims)" in message
    assert "--on-mismatch recreate" in message


def test_another_dimension_of_the_same_model_is_refused(store_dir: Path) -> None:
    store = Store.open(path=store_dir)
    store.collection("col", QWEN, OnMismatch.FAIL)
    with pytest.raises(StoreError, match="256 dims"):
        store.collection("col", IndexSignature(QWEN.model, 256, QWEN.query_style), OnMismatch.FAIL)


def test_recreate_replaces_the_collection(store_dir: Path) -> None:
    store = Store.open(path=store_dir)
    c = store.collection("col", E5, OnMismatch.FAIL)
    store.upsert(c, ["a"], [[1.0] + [0.0] * 383], ["text"], [{"source": "a"}])
    fresh = store.collection("col", QWEN, OnMismatch.RECREATE)
    assert fresh.count() == 0
    assert IndexSignature.from_metadata(fresh.metadata) == QWEN


def test_writes_are_batched_below_the_client_limit(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(path=store_dir)
    c = store.collection("col", IndexSignature("m", 4, "none"), OnMismatch.FAIL)
    calls: list[int] = []
    original = c.upsert

    def spy(**kwargs: object) -> None:
        calls.append(len(kwargs["ids"]))  # type: ignore[arg-type]  # the spy takes whatever upsert takes
        original(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(c, "upsert", spy)
    monkeypatch.setattr(store, "max_batch", lambda: 7)
    n = 30
    store.upsert(
        c,
        [str(i) for i in range(n)],
        [[1.0, float(i), 0.0, 0.0] for i in range(n)],
        ["t"] * n,
        [{"i": i} for i in range(n)],
    )
    assert calls == [7, 7, 7, 7, 2]
    assert c.count() == n
    assert sorted(i for i, _ in store.metadatas(c)) == sorted(str(i) for i in range(n))


def test_a_second_writer_fails_at_once_instead_of_hanging(store_dir: Path) -> None:
    store = Store.open(path=store_dir)
    holder = (
        "import sys, time; from pipelines.store.chroma import Store\n"
        f"s = Store.open(path={str(store_dir)!r})\n"
        "with s.writer():\n    print('locked', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"another ingest \(pid \d+\) is writing"), store.writer():
            pass
        assert time.monotonic() - started < 2
    finally:
        proc.kill()
        proc.wait()
    with store.writer():  # the lock dies with its process
        pass


def test_unreachable_server_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot reach the Chroma server"):
        Store.open(url="http://127.0.0.1:9")
