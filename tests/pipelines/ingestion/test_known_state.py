"""What an ingest keeps on this machine between runs (the files' first chunks, the files' hashes by stat) never
makes it miss a change; and an ingest, of a few files or many, leaves Chroma's vector index saved. Real files, real
Chroma, the embedded model (the SGLang stand-in for the large run)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from loaders import SourceFile
from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion import digests, writer
from pipelines.ingestion.writer import IngestReport, ingest
from pipelines.settings import Settings
from pipelines.store.chroma import HNSW_SAVE_EVERY, Store
from testbed.process import REPO, sglang_process

TEXTS = {
    "a.md": "The orchard grows apples and pears along the river bank.",
    "b.md": "Green tea is steeped at eighty degrees Celsius for two minutes.",
    "c.md": "Binary search halves a sorted range at every step until it finds the target.",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in TEXTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def run(corpus: Path, store: Path, local: LocalEmbeddings) -> IngestReport:
    return ingest([corpus], Settings(store=store), embeddings=local)


def stored_texts(store: Path) -> dict[str, str]:
    collection = Store.open(path=store).existing("default")
    assert collection is not None
    got = collection.get(include=["documents", "metadatas"])
    return {str(m["source"]): str(d) for m, d in zip(got["metadatas"] or [], got["documents"] or [], strict=True)}


def heads_file(store: Path) -> Path:
    return store / "records" / "default" / "heads.json"


def count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources whose content is hashed from now on, in order."""
    hashed: list[str] = []
    original = SourceFile.sha256

    def counted(self: SourceFile) -> str:
        hashed.append(self.source)
        return original(self)

    monkeypatch.setattr(SourceFile, "sha256", counted)
    return hashed


def test_a_second_run_reads_the_heads_from_the_cache_and_finds_nothing_to_do(
    corpus: Path, tmp_path: Path, local: LocalEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    run(corpus, store, local)
    assert heads_file(store).exists()
    scans: list[object] = []
    original = writer.read_records

    def counted(*args: object) -> object:
        scans.append(args)
        return original(*args)  # type: ignore[arg-type]  # the spy passes the writer's own arguments on

    monkeypatch.setattr(writer, "read_records", counted)
    report = run(corpus, store, local)
    assert (report.unchanged, report.embedding_requests, scans) == (3, 0, [])


def test_a_stale_cache_catches_up_with_another_writers_changes(
    corpus: Path, tmp_path: Path, local: LocalEmbeddings
) -> None:
    """This machine's cache is from before another writer (another machine, on a Chroma server) edited a.md and
    removed c.md: the next ingest here must see both, through the marker's log, not trust the cache."""
    store = tmp_path / "store"
    run(corpus, store, local)
    before = heads_file(store).read_text(encoding="utf-8")

    (corpus / "a.md").write_text("The savannah shelters zebras and giraffes near the waterhole.", encoding="utf-8")
    kept = corpus.parent / "c.md"
    shutil.move(corpus / "c.md", kept)
    other = run(corpus, store, local)  # the other writer
    assert (other.updated, other.deleted) == (1, 1)

    heads_file(store).write_text(before, encoding="utf-8")  # this machine's cache, as it was
    shutil.move(kept, corpus / "c.md")
    report = run(corpus, store, local)
    # a.md is current (the other writer indexed it); c.md is back and must be indexed again, its chunks were deleted.
    assert (report.unchanged, report.added, report.updated) == (2, 1, 0)
    assert stored_texts(store) == {
        "a.md": "The savannah shelters zebras and giraffes near the waterhole.",
        "b.md": TEXTS["b.md"],
        "c.md": TEXTS["c.md"],
    }


def test_a_cache_the_log_cannot_bring_up_to_date_is_read_again(
    corpus: Path, tmp_path: Path, local: LocalEmbeddings
) -> None:
    store = tmp_path / "store"
    run(corpus, store, local)
    cached = json.loads(heads_file(store).read_text(encoding="utf-8"))
    cached["marker"] = "f" * 32  # a marker long gone from the log
    cached["files"] = [row for row in cached["files"] if row[1] != "b.md"]  # and a wrong picture: b.md unknown
    heads_file(store).write_text(json.dumps(cached), encoding="utf-8")
    report = run(corpus, store, local)
    assert (report.unchanged, report.added, report.embedding_requests) == (3, 0, 0)


def test_an_edit_that_keeps_the_size_and_the_mtime_is_still_seen(
    corpus: Path, tmp_path: Path, local: LocalEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "RACY_NS", 0)  # keep the hashes of files written a moment ago
    store = tmp_path / "store"
    run(corpus, store, local)
    hashed = count_hashes(monkeypatch)
    assert run(corpus, store, local).unchanged == 3 and hashed == []  # every stat as it was: nothing read

    target = corpus / "a.md"
    old = target.stat()
    same_size = TEXTS["a.md"].replace("apples", "quinces")[: len(TEXTS["a.md"])]
    assert len(same_size.encode()) == old.st_size
    target.write_text(same_size, encoding="utf-8")
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))  # as cp -p or rsync -t leave it: only the ctime moved
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    report = run(corpus, store, local)
    assert report.updated == 1 and "a.md" in hashed
    assert stored_texts(store)["a.md"] == same_size


def test_a_file_hashed_within_the_racy_window_is_hashed_again(
    corpus: Path, tmp_path: Path, local: LocalEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    run(corpus, store, local)  # the files were written a moment ago: their hashes are not kept
    hashed = count_hashes(monkeypatch)
    run(corpus, store, local)
    assert sorted(hashed) == sorted(TEXTS)


def pending(store: Path) -> int:
    """Records written to Chroma's log that its vector index (HNSW) has not saved: every opening replays them."""
    with sqlite3.connect(f"file:{store / 'chroma.sqlite3'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT s.scope, m.seq_id FROM max_seq_id m JOIN segments s ON s.id = m.segment_id")
        applied = dict(rows.fetchall())
    return int(applied["METADATA"]) - int(applied.get("VECTOR", 0))


def threshold(store: Path) -> object:
    """The collection's ``sync_threshold``: after how many records Chroma saves its vector index."""
    collection = Store.open(path=store).existing("default")
    assert collection is not None
    return (collection.configuration.get("hnsw") or {}).get("sync_threshold")


def test_an_ingest_of_a_few_files_leaves_the_vector_index_saved(
    corpus: Path, tmp_path: Path, local: LocalEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    for text in ("", "The savannah shelters zebras and giraffes near the waterhole."):
        if text:
            (corpus / "a.md").write_text(text, encoding="utf-8")
        run(corpus, store, local)
        assert threshold(store) == 1
        assert pending(store) == 0  # Chroma's default would leave these few records to every later opening

    # A large run: a save per write would cost more than it spares. (Chroma reads the setting when a process loads
    # the index, so this test process, which has, keeps saving: only the setting can be checked here.)
    monkeypatch.setattr(writer, "SMALL_RUN_BYTES", 0)
    (corpus / "b.md").write_text("Oolong is steeped a little hotter, at ninety degrees.", encoding="utf-8")
    run(corpus, store, local)
    assert threshold(store) == HNSW_SAVE_EVERY


LARGE_RUN = """
import sys
from pathlib import Path
from pipelines.ingestion import writer
from pipelines.settings import Settings
from pipelines.store import chroma

# A large run in miniature: every run counts as large, writes of 8 chunks, Chroma saving its index every 20 records.
writer.SMALL_RUN_BYTES, writer.WRITE_BATCH = 0, 8
writer.HNSW_SAVE_EVERY = chroma.HNSW_SAVE_EVERY = 20
sizes = []
upsert = chroma.Store.upsert
def counted(self, collection, ids, *args, **kwargs):
    sizes.append(len(ids))
    return upsert(self, collection, ids, *args, **kwargs)
chroma.Store.upsert = counted
corpus, store, url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
settings = Settings(store=store, embeddings_url=[url], batch_size=4, concurrency=1)
writer.ingest([corpus], settings, progress=False)
print(*sizes)
"""


def test_a_large_ingest_leaves_the_vector_index_saved_with_its_last_write(corpus: Path, tmp_path: Path) -> None:
    """Chroma saves its index once the records written since its last save reach the threshold; a large run's last
    write carries the last threshold's worth of chunks, so no record is left for every later process to replay."""
    store = tmp_path / "store"
    with sglang_process(64, latency_ms=20) as url:
        ingest([corpus], Settings(store=store, embeddings_url=[url]), progress=False)  # a small run: saved
        for i in range(53):
            (corpus / f"note{i:02d}.md").write_text(f"Note {i} on the orchard's {i * 7} apple trees.", encoding="utf-8")
        # Its own process: Chroma reads the threshold when a process first loads the index.
        command = [sys.executable, "-c", LARGE_RUN, str(corpus), str(store), url]
        sizes = [
            int(n) for n in subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO).stdout.split()
        ]
    assert sum(sizes) == 53 and len(sizes) > 1 and threshold(store) == 20
    assert sizes[-1] >= 20  # without the tail held back: the last 5 (53 in writes of 8)
    assert pending(store) == 0
