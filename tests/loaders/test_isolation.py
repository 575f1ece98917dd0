"""IsolatedReader with real worker processes: same Documents as read(), in order; hangs and crashes cost one file."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from langchain_core.documents import Document
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

from loaders.errors import LoadError
from loaders.isolation import IsolatedReader
from loaders.registry import FORMATS, Format, LazyOpener, read
from loaders.source import SourceFile
from testbed.process import descendants, wait_gone
from testbed.shared import sample_pdfs
from tests.loaders.isolation_fixtures.bad_loaders import BULK_DOCS

REPO = Path(__file__).resolve().parents[2]
PDF = sample_pdfs() / "en_latex_multicolumn.pdf"
BAD = {
    ".hang": "HangLoader",
    ".segv": "SegfaultLoader",
    ".exit": "ExitLoader",
    ".killed": "KilledLoader",
    ".oom": "MemoryLoader",
    ".raise": "RaiseLoader",
    ".bulk": "BulkLoader",
}
TEXTS = {
    "notes.txt": "Plain notes.\n纯文本笔记。\n",
    "guide.md": "# Guide\n\nSome *Markdown*.\n",
    "page.html": "<html><head><title>Home</title></head><body><p>Welcome</p><ul><li>one</li></ul></body></html>",
    "other.html": "<html><body><h1>Other</h1><p>Text</p></body></html>",
    "app.py": "print('hi')\n",
}
Outcome = list[Document] | str


@pytest.fixture
def bad_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    for ext, name in BAD.items():
        monkeypatch.setitem(
            FORMATS, ext, Format("text", LazyOpener("tests.loaders.isolation_fixtures.bad_loaders", name))
        )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name, text in TEXTS.items():
        (tmp_path / name).write_text(text)
    shutil.copy(PDF, tmp_path / "paper.pdf")
    for ext in BAD:
        (tmp_path / f"bad{ext}").write_bytes(b"whatever")
    return tmp_path


def files(root: Path, *names: str) -> list[SourceFile]:
    return [SourceFile(root, root / name) for name in names]


def outcome(docs: Iterator[Document]) -> Outcome:
    try:
        return list(docs)
    except LoadError as error:
        return str(error)


def read_all(reader: IsolatedReader, sources: list[SourceFile]) -> list[tuple[str, Outcome]]:
    return [(file.source, outcome(docs)) for file, docs in reader.read_all(sources)]


def in_process(sources: list[SourceFile]) -> list[tuple[str, Outcome]]:
    return [(file.source, outcome(read(SourceFile(file.root, file.path)))) for file in sources]


def parsers() -> list[BaseProcess]:
    """This process's parser workers; not its other children (a CLI test's query helper may still be exiting)."""
    return [p for p in multiprocessing.active_children() if p.name == "qwen-rag-parser"]


def test_documents_are_those_of_read_in_input_order(root: Path) -> None:
    sources = files(root, "notes.txt", "page.html", "paper.pdf", "guide.md", "app.py", "other.html", "paper.pdf")
    with IsolatedReader(workers=2) as reader:
        got = read_all(reader, sources)
        assert len(parsers()) <= 2  # the workers are reused across files
    assert got == in_process(sources)
    assert [len(docs) for _, docs in got] == [1, 1, 3, 1, 1, 1, 3]


def test_text_files_are_read_here_and_start_no_worker(root: Path) -> None:
    before = parsers()
    with IsolatedReader(workers=2) as reader:
        got = read_all(reader, files(root, "notes.txt", "guide.md", "app.py", "missing.xyz"))
        assert parsers() == before
    assert got[:3] == in_process(files(root, "notes.txt", "guide.md", "app.py"))
    assert got[3] == ("missing.xyz", "unsupported file type .xyz")


@pytest.mark.usefixtures("bad_formats")
def test_a_hanging_parser_times_out_and_the_rest_is_read(root: Path) -> None:
    sources = files(root, "notes.txt", "bad.hang", "page.html", "paper.pdf")
    with IsolatedReader(workers=2, timeout=2) as reader:
        started = time.monotonic()
        got = read_all(reader, sources)
        elapsed = time.monotonic() - started
    assert got[1] == ("bad.hang", "parsing took longer than 2 s (--file-timeout); skipped")
    assert [got[0], *got[2:]] == in_process([sources[0], *sources[2:]])
    assert 2 <= elapsed < 10


@pytest.mark.usefixtures("bad_formats")
def test_crashes_and_errors_cost_their_file_only(root: Path) -> None:
    sources = files(
        root, "page.html", "bad.segv", "notes.txt", "bad.exit", "paper.pdf", "bad.killed", "other.html", "bad.oom",
        "guide.md", "bad.raise", "page.html",
    )  # fmt: skip
    with IsolatedReader(workers=2) as reader:
        got = dict(enumerate(read_all(reader, sources)))
    assert {i: got[i] for i in (1, 3, 5, 7, 9)} == {
        1: ("bad.segv", "the parser crashed (SIGSEGV)"),
        3: ("bad.exit", "the parser exited with code 3"),
        5: ("bad.killed", "the parser ran out of memory (killed by the system)"),
        7: ("bad.oom", "the parser ran out of memory"),
        9: ("bad.raise", "unexpected error in the parser: TypeError: bad input"),
    }
    good = [sources[i] for i in (0, 2, 4, 6, 8, 10)]
    assert [got[i] for i in (0, 2, 4, 6, 8, 10)] == in_process(good)


@pytest.fixture
def broken_page(tmp_path: Path) -> Path:
    """The sample PDF with a corrupt content stream on page 2 (a hex string that is not hex)."""
    writer = PdfWriter(clone_from=PDF)
    stream = DecodedStreamObject()
    stream.set_data(b"BT <zz> Tj ET")
    writer.pages[1][NameObject("/Contents")] = writer._add_object(stream)
    path = tmp_path / "broken.pdf"
    writer.write(path)
    return path


def test_page_problems_reach_the_parent_in_order_with_the_documents(broken_page: Path) -> None:
    file = SourceFile(broken_page.parent, broken_page)
    events: list[tuple[object, ...]] = []
    with IsolatedReader(workers=1, on_page_error=lambda f, e: events.append((f.source, e.page, str(e)))) as reader:
        for _, docs in reader.read_all([file]):
            events.extend(("doc", doc.metadata["page"]) for doc in docs)

    expected: list[tuple[object, ...]] = []
    docs = read(file, on_page_error=lambda e: expected.append(("broken.pdf", e.page, str(e))))
    expected.extend(("doc", doc.metadata["page"]) for doc in docs)
    assert events == expected
    assert [event[:2] for event in events] == [("doc", 1), ("broken.pdf", 2), ("doc", 3)]
    assert events[1][2].startswith("unreadable page: ")


@pytest.mark.usefixtures("bad_formats")
def test_waiting_for_the_caller_does_not_count_as_parsing(root: Path) -> None:
    # bad.bulk is parsed ahead and fills the pipe long before the caller, busy for longer than the timeout,
    # asks for it: its worker waits, and is not killed.
    with IsolatedReader(workers=2, timeout=1) as reader:
        results = reader.read_all(files(root, "page.html", "bad.bulk"))
        _, docs = next(results)
        list(docs)
        time.sleep(1.5)
        _, docs = next(results)
        assert len(list(docs)) == BULK_DOCS


@pytest.mark.usefixtures("bad_formats")
def test_moving_on_mid_file_skips_the_rest_of_it(root: Path) -> None:
    sources = files(root, "bad.bulk", "page.html", "bad.bulk")
    with IsolatedReader(workers=1) as reader:
        results = reader.read_all(sources)
        _, docs = next(results)
        next(docs)
        got = [(file.source, outcome(docs)) for file, docs in results]
        assert list(docs) == []  # the first file's iterator ended when the caller moved on
    assert got[0] == in_process(sources[1:2])[0]
    assert len(got[1][1]) == BULK_DOCS


@pytest.mark.slow
@pytest.mark.usefixtures("bad_formats")
def test_leaving_the_loop_stops_the_workers_parsing_ahead(root: Path) -> None:
    with IsolatedReader(workers=2) as reader:
        results = reader.read_all(files(root, "page.html", "bad.hang"))
        _, docs = next(results)
        list(docs)
        pids = [p.pid for p in parsers() if p.pid is not None]
        results.close()
        assert len(parsers()) == 1  # the idle one stays, for the next run
        assert len(wait_gone(pids)) == 1


@pytest.mark.usefixtures("bad_formats")
def test_close_leaves_no_worker(root: Path) -> None:
    reader = IsolatedReader(workers=2)
    results = reader.read_all(files(root, "bad.hang", "paper.pdf"))
    next(results)
    pids = [p.pid for p in parsers() if p.pid is not None]
    assert len(pids) == 2
    reader.close()
    assert wait_gone(pids) == []
    with pytest.raises(RuntimeError, match="closed"):
        next(reader.read_all([]))


_ORPHAN_SCRIPT = """
import multiprocessing, sys
from pathlib import Path
from loaders.isolation import IsolatedReader
from loaders.registry import FORMATS, Format, LazyOpener
from loaders.source import SourceFile

FORMATS[".hang"] = Format("text", LazyOpener("tests.loaders.isolation_fixtures.bad_loaders", "HangLoader"))
root = Path(sys.argv[1])
reader = IsolatedReader(workers=2, timeout=3600)
results = reader.read_all(SourceFile(root, root / name) for name in ("bad.hang", "bad.hang"))
_, docs = next(results)  # both files are being parsed: each worker is stuck in a regex, holding its GIL
print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
list(docs)
"""


@pytest.mark.usefixtures("bad_formats")
def test_a_sigkilled_parent_leaves_no_orphans(root: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(root)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2
        family = descendants(parent.pid)  # the workers, the forkserver, multiprocessing's resource tracker
        assert set(workers) <= set(family)
        time.sleep(0.3)  # into the regex
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_gone(family) == []
    finally:
        parent.kill()
