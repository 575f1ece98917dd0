"""``watch``: folders that change are searchable within seconds, and the store always ends as a clean ingest's.

Real files, real inotify events, real Chroma: the embedded default model in process (a thread runs the watch, the
test edits files and searches), and the SGLang stand-in in its own process for a watch that is killed and restarted.
Every wait polls against a bounded deadline, generous because the 2 cores are shared.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from chromadb.api.client import SharedSystemClient

from pipelines.ingestion import watch as watch_module
from pipelines.ingestion.watch import watch
from pipelines.ingestion.writer import Ingest, IngestReport, ingest
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Settings
from pipelines.store.chroma import Store
from testbed.process import sglang_process

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0  # seconds for one change to show, under load
DEBOUNCE_MS = 300

ML = "机器学习是一种让计算机从数据中自动学习规律的方法。"
NEURAL = "深度学习使用多层神经网络，从大量数据中学习特征表示。"
SEARCH = "Binary search finds a target in a sorted array by halving the search range at every step."
SEARCH_QUERY = "how does binary search find an element in a sorted array"


def eventually(check: Callable[[], bool], what: str, within: float = DEADLINE) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {within:.0f} s: {what}")


def ids(store: Path) -> set[str]:
    # Chroma caches one client per path in a process; another process may have written here since.
    SharedSystemClient.clear_system_cache()
    found = Store.open(path=store).existing("default")
    assert found is not None
    return set(found.get(include=[])["ids"])


def clean_ids(folder: Path, store: Path, **settings: Any) -> set[str]:
    """The chunk ids a single ingest of ``folder`` into a fresh store gives."""
    ingest([folder], Settings(store=store, **settings), progress=False)
    return ids(store)


class Watching:
    """A watch running in a thread, with the lines it said."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.error: BaseException | None = None

    def said(self, line: str) -> bool:
        return line in self.lines

    def wait_for(self, line: str) -> None:
        eventually(lambda: self.said(line), f"the line {line!r}; said: {self.lines}")


@contextmanager
def watching(folder: Path, settings: Settings) -> Iterator[Watching]:
    seen = Watching()
    stop = threading.Event()

    def run() -> None:
        try:
            watch([folder], settings, on_change=seen.lines.append, stop_event=stop, debounce_ms=DEBOUNCE_MS)
        except BaseException as error:  # handed to the test thread
            seen.error = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        eventually(lambda: any(line.startswith("watching ") for line in seen.lines) or seen.error is not None, "start")
        yield seen
    finally:
        stop.set()
        thread.join(DEADLINE)
    assert not thread.is_alive(), "the watch did not stop"
    if seen.error is not None:
        raise seen.error


def sources(settings: Settings, query: str) -> list[str]:
    return [d.metadata["source"] for d in build_retriever(settings, k=10).invoke(query)]


@pytest.mark.slow
def test_created_edited_renamed_and_deleted_files_are_searchable_within_seconds(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "ml.txt").write_text(ML, encoding="utf-8")
    settings = Settings(store=tmp_path / "store")
    with watching(folder, settings) as seen:
        assert seen.lines[0] == "1 files: 1 added, 0 updated, 0 unchanged, 0 deleted, 0 failed"

        (folder / "algo").mkdir()
        (folder / "algo" / "binary.md").write_text(SEARCH, encoding="utf-8")
        seen.wait_for("added algo/binary.md (1 chunk)")
        eventually(lambda: sources(settings, SEARCH_QUERY)[0] == "algo/binary.md", "the new file is found")

        (folder / "ml.txt").write_text(NEURAL, encoding="utf-8")
        seen.wait_for("updated ml.txt (1 chunk)")
        found = build_retriever(settings, k=1).invoke("什么是神经网络？")[0]
        assert found.metadata["source"] == "ml.txt" and found.page_content == NEURAL

        (folder / "algo" / "binary.md").rename(folder / "algo" / "search.md")
        seen.wait_for("deleted algo/binary.md")
        seen.wait_for("added algo/search.md (1 chunk)")
        assert "algo/binary.md" not in sources(settings, SEARCH_QUERY)
        assert sources(settings, SEARCH_QUERY)[0] == "algo/search.md"

        (folder / "ml.txt").unlink()
        seen.wait_for("deleted ml.txt")
        assert sources(settings, "什么是神经网络？") == ["algo/search.md"]

        (folder / "scan.pdf").write_text("not a PDF at all", encoding="utf-8")
        eventually(lambda: any(line.startswith("skipped scan.pdf: ") for line in seen.lines), "the problem")
        assert not any("added scan.pdf" in line for line in seen.lines)
    assert ids(tmp_path / "store") == clean_ids(folder, tmp_path / "clean")


def test_folders_moved_in_and_out_and_saves_by_rename(tmp_path: Path) -> None:
    folder, outside = tmp_path / "notes", tmp_path / "outside"
    folder.mkdir()
    (outside / "project").mkdir(parents=True)
    (outside / "project" / "a.md").write_text(ML, encoding="utf-8")
    (outside / "project" / "b.txt").write_text(SEARCH, encoding="utf-8")
    settings = Settings(store=tmp_path / "store")
    with watching(folder, settings) as seen:
        (outside / "project").rename(folder / "project")  # one event, for the folder: none for its files
        seen.wait_for("added project/a.md (1 chunk)")
        seen.wait_for("added project/b.txt (1 chunk)")

        # An editor's atomic save: a hidden temp file renamed onto the document.
        temp = folder / "project" / ".a.md.tmp"
        temp.write_text(NEURAL, encoding="utf-8")
        os.replace(temp, folder / "project" / "a.md")
        seen.wait_for("updated project/a.md (1 chunk)")

        (folder / "project").rename(outside / "gone")
        seen.wait_for("deleted project/a.md")
        seen.wait_for("deleted project/b.txt")
        assert not any(".tmp" in line for line in seen.lines)
    assert ids(tmp_path / "store") == set()


@pytest.mark.slow
def test_noise_and_the_stores_own_writes_never_start_a_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "ml.txt").write_text(ML, encoding="utf-8")
    syncs: list[float] = []
    run = Ingest.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        syncs.append(time.monotonic())
        return run(*args, **kwargs)

    monkeypatch.setattr(Ingest, "run", counted)
    settings = Settings(store=folder / "index")  # the store inside the watched folder, not hidden
    quiet = 3 * DEBOUNCE_MS / 1000 + 1.0
    with watching(folder, settings) as seen:
        assert len(syncs) == 1  # the first ingest
        (folder / ".ml.txt.swp").write_text("swap", encoding="utf-8")
        (folder / ".git").mkdir()
        (folder / ".git" / "notes.md").write_text("hidden folder", encoding="utf-8")
        (folder / "app.log").write_text("a log line\n", encoding="utf-8")
        (folder / "4913").write_text("", encoding="utf-8")
        (folder / "4913").unlink()  # vim's write test
        (folder / "empty").mkdir()
        time.sleep(quiet)
        assert len(syncs) == 1

        os.utime(folder / "ml.txt")  # touched, not changed: a sync finds nothing to say
        eventually(lambda: len(syncs) == 2, "the sync of the touched file")
        time.sleep(quiet)
        assert seen.lines[-1].startswith("watching ")

        (folder / "search.md").write_text(SEARCH, encoding="utf-8")
        seen.wait_for("added search.md (1 chunk)")
        settled = len(syncs)
        time.sleep(quiet)  # the sync wrote to the store inside the root: that must not start another
        assert len(syncs) == settled
    assert ids(folder / "index") == clean_ids(folder, tmp_path / "clean")


def test_a_sync_ingests_the_files_the_events_named_and_an_event_on_the_root_the_whole_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    for n in range(40):
        (folder / ("sub" if n % 2 else "") / f"n{n:02d}.md").write_text(f"Note {n} on orchards.", encoding="utf-8")
    syncs: list[tuple[Any, IngestReport]] = []
    run = Ingest.run

    def spied(*args: Any, **kwargs: Any) -> IngestReport:
        report = run(*args, **kwargs)
        syncs.append((kwargs.get("only"), report))
        return report

    monkeypatch.setattr(Ingest, "run", spied)
    settings = Settings(store=tmp_path / "store")
    root = str(folder.resolve())
    with watching(folder, settings) as seen:
        assert syncs[0][0] is None and syncs[0][1].files == 40  # the start: the whole root
        (folder / "sub" / "n01.md").write_text(SEARCH, encoding="utf-8")
        seen.wait_for("updated sub/n01.md (1 chunk)")
        only, report = syncs[-1]
        assert only == {(root, "sub/n01.md")} and (report.files, report.updated) == (1, 1)

        done = len(syncs)
        (folder / "n00.md").rename(folder / "sub" / "moved.md")
        (folder / "n02.md").unlink()
        seen.wait_for("added sub/moved.md (1 chunk)")
        seen.wait_for("deleted n02.md")
        seen.wait_for("deleted n00.md")
        named = set().union(*(only for only, _ in syncs[done:]))  # one burst, or two if the save was slow
        assert named == {(root, "n00.md"), (root, "n02.md"), (root, "sub/moved.md")}

        done = len(syncs)
        os.utime(folder)  # an event on the root itself: which files changed, it does not say
        eventually(lambda: len(syncs) > done, "a sync of the whole root")
        assert syncs[-1][0] is None and syncs[-1][1].files == 39
    assert ids(tmp_path / "store") == clean_ids(folder, tmp_path / "clean")


def test_a_change_whose_event_was_lost_is_synced_by_the_next_reconciliation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watchfiles drops inotify's overflow notice: the watch syncs the whole roots every RECONCILE_SECONDS."""
    monkeypatch.setattr(watch_module, "RECONCILE_SECONDS", 3.0)
    lost = {"lost.md"}
    relevant = watch_module._Session.relevant

    def losing(self: Any, paths: Any) -> Any:  # the events of lost.md never arrive
        return relevant(self, [p for p in paths if Path(p).name not in lost])

    monkeypatch.setattr(watch_module._Session, "relevant", losing)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "ml.txt").write_text(ML, encoding="utf-8")
    settings = Settings(store=tmp_path / "store")
    with watching(folder, settings) as seen:
        (folder / "lost.md").write_text(SEARCH, encoding="utf-8")
        seen.wait_for("added lost.md (1 chunk)")
    assert ids(tmp_path / "store") == clean_ids(folder, tmp_path / "clean")


def test_a_sync_that_fails_is_said_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "RETRY_SECONDS", 1.0)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "ml.txt").write_text(ML, encoding="utf-8")
    settings = Settings(store=tmp_path / "store")
    with watching(folder, settings) as seen:
        with Store.open(path=tmp_path / "store").writer():  # another ingest holds the store
            (folder / "search.md").write_text(SEARCH, encoding="utf-8")
            eventually(lambda: any(line.startswith("sync failed: another ingest") for line in seen.lines), "failure")
        seen.wait_for("added search.md (1 chunk)")
    assert ids(tmp_path / "store") == clean_ids(folder, tmp_path / "clean")


def test_a_root_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        watch([tmp_path / "missing"], Settings(store=tmp_path / "store"))


# -- a watch killed and restarted ----------------------------------------------------------------------------------

CHILD = (
    "import sys\n"
    "from pipelines.ingestion.watch import watch\n"
    "from pipelines.settings import Settings\n"
    f"watch(sys.argv[1:], Settings(), on_change=lambda line: print(line, flush=True), debounce_ms={DEBOUNCE_MS})\n"
)


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    """The stand-in as its own process, slow enough per request that a kill lands in the middle of a sync."""
    with sglang_process(dim=384, latency_ms=60) as url:
        yield url


class Child:
    """``watch`` in a process of its own, with its stdout lines in a queue."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix: str, within: float = 120.0) -> None:
        """Until a line starting with ``prefix``; the first start loads a lot, hence the longer deadline."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                if self.lines.get(timeout=left).startswith(prefix):
                    return
            except queue.Empty:
                break
        self.proc.kill()
        raise AssertionError(f"no line {prefix!r} within {within:.0f} s; stderr: {self.proc.communicate()[1]}")


def write_notes(folder: Path, names: range, rng: random.Random) -> None:
    words = ["向量", "检索", "切分", "嵌入", "vector", "index", "chunk", "token", "server", "retrieval"]
    for n in names:
        paragraphs = [f"Note {n}, part {p}. " + " ".join(rng.choice(words) for _ in range(60)) for p in range(5)]
        (folder / f"note{n:03d}.md").write_text("\n\n".join(paragraphs), encoding="utf-8")


@pytest.mark.slow
def test_a_watch_killed_mid_sync_converges_when_restarted_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, slow_server: str
) -> None:
    folder, store = tmp_path / "notes", tmp_path / "store"
    folder.mkdir()
    rng = random.Random(2026)
    write_notes(folder, range(5), rng)
    # Small chunks: a burst is several of the writer's 256-chunk writes, so a kill can fall between two of them.
    chunking = {"chunk_tokens": 32, "chunk_overlap": 4, "batch_size": 8, "concurrency": 2}
    env = {
        **os.environ,
        "QWEN_RAG_STORE": str(store),
        "QWEN_RAG_EMBEDDINGS_URL": slow_server,
        **{f"QWEN_RAG_{key.upper()}": str(value) for key, value in chunking.items()},
    }
    for attempt in range(2):
        victim = Child(folder, env)
        victim.wait_for("watching ")
        base = 5 + 20 * attempt
        write_notes(folder, range(base, base + 20), rng)  # a burst the watch starts to sync...
        (folder / f"note{base - 1:03d}.md").unlink()
        # Unkilled, this burst's lines come about 5 s after the writes (2 busy cores): the kill lands before the
        # sync, between its deletion and its writes, or between two writes, leaving files with no completion mark.
        time.sleep(rng.uniform(1.5, 5.0))
        victim.proc.send_signal(signal.SIGKILL)  # ...and is killed in the middle of
        victim.proc.wait(DEADLINE)
        write_notes(folder, range(1, 3), rng)  # changed while nothing watched
    survivor = Child(folder, env)
    survivor.wait_for("watching ")
    survivor.proc.send_signal(signal.SIGINT)  # Ctrl-C
    _, stderr = survivor.proc.communicate(timeout=DEADLINE)
    assert survivor.proc.returncode == 0 and "Traceback" not in stderr, stderr
    assert ids(store) == clean_ids(folder, tmp_path / "clean", embeddings_url=[slow_server], **chunking)


def test_an_edited_sidecar_re_tags_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    (folder / "hr").mkdir(parents=True)
    (folder / "hr" / "ml.txt").write_text(ML, encoding="utf-8")
    (folder / "search.md").write_text(SEARCH, encoding="utf-8")
    settings = Settings(store=tmp_path / "store", mode="dense")
    with watching(folder, settings) as seen:
        (folder / "search.md.meta.json").write_text('{"department": "eng"}', encoding="utf-8")
        seen.wait_for("updated search.md (1 chunk)")
        (folder / "hr" / "qwen-rag.meta.yaml").write_text("'*': {department: hr}\n", encoding="utf-8")
        seen.wait_for("updated hr/ml.txt (1 chunk)")
        hr = build_retriever(settings, k=5).invoke(SEARCH_QUERY, filter={"department": "hr"})
        assert [d.metadata["source"] for d in hr] == ["hr/ml.txt"]
