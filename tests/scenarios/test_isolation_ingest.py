"""A real ingest over a folder where one parser hangs and one crashes its worker: each costs its own file only.

The bad parsers are test-only formats (``.hang``, ``.segv``) registered for the test, as a plugin would register
one; the ingest parses them in worker processes like any PDF or HTML file.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

from loaders import Problem
from loaders.registry import FORMATS, SUPPORTED_EXTENSIONS, Format, LazyOpener
from pipelines.cli import main
from pipelines.ingestion.writer import ingest
from pipelines.settings import Settings, Workers
from pipelines.store.chroma import Store
from testbed.embedders import HashEmbedder
from testbed.sglang import SGLangServer
from tests.conftest import SAMPLES

QWEN = "Qwen/Qwen3-Embedding-0.6B"
BAD = {".hang": "HangLoader", ".segv": "SegfaultLoader"}
TIMEOUT = 4  # seconds: far more than any good file here takes to parse, even on a loaded machine
TIMED_OUT = f"parsing took longer than {TIMEOUT} s (--file-timeout); skipped"
CRASHED = "the parser crashed (SIGSEGV)"
HANG = Problem("hang.hang", TIMED_OUT)
SEGV = Problem("a-crash.segv", CRASHED)  # read first: see test_a_crash_read_late_keeps_its_cause


@pytest.fixture
def bad_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    for ext, name in BAD.items():
        opener = LazyOpener("tests.loaders.isolation_fixtures.bad_loaders", name)
        monkeypatch.setitem(FORMATS, ext, Format("text", opener))
    # The package's name `walk` is the function; the walk finds only files of known extensions.
    walk_module = importlib.import_module("loaders.walk")
    monkeypatch.setattr(walk_module, "SUPPORTED_EXTENSIONS", SUPPORTED_EXTENSIONS | set(BAD))


@pytest.fixture
def folder(tmp_path: Path, pdfs: Path, bad_formats: None) -> Path:
    """The samples, two real PDFs (one with a corrupt page 2), a file whose parser hangs and one whose crashes."""
    root = tmp_path / "docs"
    shutil.copytree(SAMPLES, root)
    shutil.copy(pdfs / "en_latex_multicolumn.pdf", root / "paper.pdf")
    writer = PdfWriter(clone_from=pdfs / "en_latex_multicolumn.pdf")
    stream = DecodedStreamObject()
    stream.set_data(b"BT <zz> Tj ET")  # a hex string that is not hex
    writer.pages[1][NameObject("/Contents")] = writer._add_object(stream)
    writer.write(root / "broken.pdf")
    for bad in (HANG, SEGV):
        (root / bad.source).write_bytes(b"whatever")
    return root


def good_sources(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.suffix not in BAD}


def indexed_sources(store: Path) -> set[str]:
    collection = Store.open(path=store).existing("default")
    assert collection is not None
    return {str(m["source"]) for m in collection.get(include=["metadatas"])["metadatas"]}


@pytest.mark.slow
@pytest.mark.parametrize("workers", [Workers.THREADS, Workers.PROCESS])
def test_a_hanging_and_a_crashing_parser_cost_their_files_only(folder: Path, tmp_path: Path, workers: Workers) -> None:
    store = tmp_path / "store"
    with SGLangServer(embedder=HashEmbedder(dim=384), served_model_name=QWEN) as srv:
        settings = Settings(store=store, embeddings_url=[srv.url + "/v1"], workers=workers, file_timeout=TIMEOUT)
        report = ingest([folder], settings)
    assert HANG in report.problems and SEGV in report.problems
    [page] = [p for p in report.problems if p.source == "broken.pdf"]
    assert page.page == 2 and page.cause.startswith("unreadable page")
    assert len(report.problems) == 3
    assert (report.files, report.added, report.failed) == (13, 11, 2)
    assert indexed_sources(store) == good_sources(folder)


@pytest.mark.slow
def test_the_command_exits_normally_and_reports_both(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWEN_RAG_FILE_TIMEOUT", str(TIMEOUT))  # the embedded default model: no server
    args = ["ingest", str(folder), "--store", str(tmp_path / "store"), "--json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    problems = {(p["source"], p["cause"]) for p in summary["problems"]}
    assert {(HANG.source, HANG.cause), (SEGV.source, SEGV.cause)} <= problems
    assert (summary["added"], summary["failed"]) == (11, 2)
    assert indexed_sources(tmp_path / "store") == good_sources(folder)


@pytest.mark.slow
def test_a_crash_read_late_keeps_its_cause(tmp_path: Path, bad_formats: None) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    # The worker crashes on b.segv at once, parsing ahead; the front reaches it only after a.md's 15 chunks, one
    # slow request each: seconds later, long past the timeout.
    (folder / "a.md").write_text("\n\n".join(f"Paragraph {i}: " + "vector index chunk " * 8 for i in range(15)))
    (folder / "b.segv").write_bytes(b"whatever")
    with SGLangServer(embedder=HashEmbedder(dim=384), served_model_name=QWEN, latency_s=0.4) as srv:
        settings = Settings(
            store=tmp_path / "s",
            embeddings_url=[srv.url + "/v1"],
            chunk_tokens=32,
            chunk_overlap=0,
            batch_size=1,
            concurrency=1,
            file_timeout=1,
        )
        report = ingest([folder], settings)
    assert report.chunks_written >= 15
    assert report.problems == [Problem("b.segv", CRASHED)]
