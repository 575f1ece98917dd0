"""PDF pages from every real sample PDF, plus encrypted, truncated, random and text-less files."""

from __future__ import annotations

import itertools
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from langchain_core.documents import Document
from pypdf import PageObject, PdfWriter

from loaders import pdf_layer
from loaders.errors import LoadError
from loaders.options import OcrMode
from loaders.pdf import PdfFileLoader
from loaders.pdf_text import Line
from loaders.positions import BOXES, LINE_BOXES
from loaders.tables import TABLE_HEADER
from testbed.shared import sample_pdfs

SAMPLES = sample_pdfs()
ENCRYPTED = SAMPLES / "edge_encrypted_libreoffice-writer-password.pdf"
# file -> (pages with text, phrases that must come out verbatim)
EXPECTED: dict[str, tuple[int, list[str]]] = {
    "de_lecture-notes_GeoTopo-komprimiert.pdf": (117, ["Einführung in die", "Topologie", "Auflage"]),
    "en_gov_federal-register-2020-17221.pdf": (15, ["FEDERAL REGISTER"]),
    "en_gov_scotus-transcript-p1.pdf": (1, ["SUPREME COURT OF THE U"]),
    "en_gov_table_nics-background-checks-2015-11.pdf": (1, ["State / Territory", "| Alabama | 18,870 | 23,022 |"]),
    "en_latex_multicolumn.pdf": (3, ["Two-Column Document with Lorem Ipsum", "columns filled"]),
    "en_paper_acl2020-main-207.pdf": (13, ["Association for Computational Linguistics"]),
    "en_paper_naacl2018-N18-3011.pdf": (8, ["Proceedings of NAACL-HLT 2018"]),
    "zh_elegantpaper-cn.pdf": (
        5,
        ["ElegantPaper: 一个优美的", "工作论文模板", "本文为 ElegantPaper 的说明文档（中文）"],
    ),
}
TABLE = {TABLE_HEADER, BOXES}  # a table Document's own keys
_CONTROL_OR_LIGATURE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufb00-\ufb06]")


def test_every_sample_is_covered() -> None:
    assert {p.name for p in SAMPLES.glob("*.pdf")} == {*EXPECTED, ENCRYPTED.name}


@pytest.fixture(scope="module")
def sample_pages() -> dict[str, list[Document]]:
    return {name: list(PdfFileLoader(SAMPLES / name).lazy_load()) for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_pdf_pages(sample_pages: dict[str, list[Document]], name: str) -> None:
    pages = sample_pages[name]
    count, phrases = EXPECTED[name]
    numbers = [doc.metadata["page"] for doc in pages]
    assert numbers == sorted(numbers)  # in page order; a page with headings is one Document per section
    assert sorted(set(numbers)) == list(range(1, count + 1))
    text = "\n".join(doc.page_content for doc in pages)
    for phrase in phrases:
        assert phrase in text
    for doc in pages:
        assert doc.page_content == doc.page_content.strip() != ""
        assert {"page", "start_index"} <= set(doc.metadata) <= {"page", "start_index", "section", LINE_BOXES, *TABLE}
        assert isinstance(doc.metadata["start_index"], int)
        assert not _CONTROL_OR_LIGATURE.search(doc.page_content)


def test_chinese_pdf_gives_real_chinese_text(sample_pages: dict[str, list[Document]]) -> None:
    text = "".join(doc.page_content for doc in sample_pages["zh_elegantpaper-cn.pdf"])
    assert len(re.findall(r"[\u4e00-\u9fff]", text)) > 500
    assert "\ufffd" not in text


def test_math_symbols_come_out_with_fonttools(sample_pages: dict[str, list[Document]]) -> None:
    # Without fontTools, pypdf cannot read these CFF fonts' encodings and ∀, ∃, ∈ come out as 8, 9, 2.
    text = "".join(doc.page_content for doc in sample_pages["de_lecture-notes_GeoTopo-komprimiert.pdf"])
    assert {"∀", "∃", "∈"} <= set(text)


def test_start_index_points_into_the_page_text(sample_pages: dict[str, list[Document]]) -> None:
    pages: dict[int, list[Document]] = {}
    for doc in sample_pages["en_paper_acl2020-main-207.pdf"]:
        pages.setdefault(doc.metadata["page"], []).append(doc)
    assert max(len(docs) for docs in pages.values()) > 1  # sections start new Documents
    for docs in pages.values():
        # Each Document starts after the one before and the blank line between them, in the page's text.
        for before, after in itertools.pairwise(docs):
            assert after.metadata["start_index"] == before.metadata["start_index"] + len(before.page_content) + 2


def test_encrypted_without_password() -> None:
    with pytest.raises(LoadError, match=r"^encrypted PDF: needs a password \(use --pdf-password\)$"):
        list(PdfFileLoader(ENCRYPTED).lazy_load())


def test_encrypted_with_wrong_password() -> None:
    with pytest.raises(LoadError, match=r"^encrypted PDF: wrong password$"):
        list(PdfFileLoader(ENCRYPTED, password="not-it").lazy_load())


def test_encrypted_with_password() -> None:
    (page,) = PdfFileLoader(ENCRYPTED, password="openpassword").lazy_load()
    assert page.page_content.startswith("Lorem ipsum dolor sit amet")


def test_encrypted_with_an_empty_user_password_needs_none(tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=SAMPLES / "en_latex_multicolumn.pdf")
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    path = tmp_path / "restricted.pdf"
    writer.write(path)
    pages = list(PdfFileLoader(path, password="irrelevant").lazy_load())
    assert len(pages) == 3


@pytest.fixture
def truncated(tmp_path: Path) -> Path:
    data = (SAMPLES / "en_paper_acl2020-main-207.pdf").read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_pdf_is_a_one_line_error(truncated: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(LoadError) as caught:
        list(PdfFileLoader(truncated).lazy_load())
    assert str(caught.value) == "corrupt or truncated PDF: Stream has ended unexpectedly"
    # pypdf's own warning is kept, demoted to DEBUG on our logger
    ours = [r for r in caplog.records if r.name == "loaders.pdf"]
    assert [(r.levelno, r.getMessage()) for r in ours] == [(logging.DEBUG, "pypdf: EOF marker not found")]


def test_pypdf_warnings_do_not_reach_stderr(truncated: Path) -> None:
    # A fresh interpreter, logging to stderr at WARNING as a CLI would (pytest's own handlers would hide it).
    script = (
        "import logging, sys; from pathlib import Path; from loaders.pdf import PdfFileLoader\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "try:\n    list(PdfFileLoader(Path(sys.argv[1])).lazy_load())\n"
        "except Exception as err:\n    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(truncated)], capture_output=True, text=True, check=True)
    assert (done.stdout, done.stderr) == ("corrupt or truncated PDF: Stream has ended unexpectedly\n", "")


def test_random_bytes_named_pdf(tmp_path: Path) -> None:
    path = tmp_path / "random.pdf"
    path.write_bytes(os.urandom(50_000).replace(b"%PDF-", b"xxxxx"))
    with pytest.raises(LoadError, match=r"^not a PDF file \(no %PDF- header\)$"):
        list(PdfFileLoader(path).lazy_load())


def test_random_bytes_behind_a_pdf_header(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pdf"
    path.write_bytes(b"%PDF-1.7\n" + os.urandom(50_000))
    with pytest.raises(LoadError, match=r"^corrupt or truncated PDF: "):
        list(PdfFileLoader(path).lazy_load())


def test_no_text_on_any_page(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_blank_page(width=595, height=842)
    path = tmp_path / "scanned.pdf"
    writer.write(path)
    with pytest.raises(LoadError, match=r"^no extractable text \(scanned PDF\? use --ocr auto\)$"):
        list(PdfFileLoader(path, ocr=OcrMode.NEVER).lazy_load())


@pytest.fixture
def layout_breaks_on_page_two(monkeypatch: pytest.MonkeyPatch) -> None:
    """PDFium's reading of the second page raises: the page must still be read, by pypdf."""
    lines = pdf_layer.page_lines
    calls = iter(range(1_000))

    def flaky(page: pdfium.PdfPage) -> list[Line]:
        if next(calls) == 1:  # the second page
            raise ValueError("PDFium says no")
        return lines(page)

    monkeypatch.setattr(pdf_layer, "page_lines", flaky)


@pytest.fixture
def page_two_breaks(monkeypatch: pytest.MonkeyPatch, layout_breaks_on_page_two: None) -> None:
    """Neither PDFium nor pypdf can read the second page."""
    extract = PageObject.extract_text

    def flaky(self: PageObject, *args: object, **kwargs: object) -> str:
        if self.page_number == 1:  # 0-based: the second page
            raise KeyError("/Font")
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", flaky)


@pytest.mark.usefixtures("layout_breaks_on_page_two")
def test_a_page_pdfium_cannot_read_is_read_as_plain_text_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="loaders.pdf"):
        docs = list(PdfFileLoader(SAMPLES / "en_latex_multicolumn.pdf").lazy_load())
    assert sorted({doc.metadata["page"] for doc in docs}) == [1, 2, 3]
    (plain,) = [doc for doc in docs if doc.metadata["page"] == 2]
    assert LINE_BOXES not in plain.metadata and "Curabitur" in plain.page_content
    (record,) = [r for r in caplog.records if r.name == "loaders.pdf"]
    assert "layout not read on page(s) 2: plain text instead" in record.getMessage()


@pytest.mark.usefixtures("page_two_breaks")
def test_a_broken_page_is_skipped_and_handed_over() -> None:
    failures: list[LoadError] = []
    loader = PdfFileLoader(SAMPLES / "en_latex_multicolumn.pdf", on_page_error=failures.append)
    assert sorted({doc.metadata["page"] for doc in loader.lazy_load()}) == [1, 3]
    assert [(f.page, str(f)) for f in failures] == [(2, "unreadable page: /Font")]  # a KeyError's key, unquoted


@pytest.mark.usefixtures("page_two_breaks")
def test_a_broken_page_is_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="loaders.pdf"):
        pages = list(PdfFileLoader(SAMPLES / "en_latex_multicolumn.pdf").lazy_load())
    assert {doc.metadata["page"] for doc in pages} == {1, 3}
    (message,) = [r.getMessage() for r in caplog.records if r.name == "loaders.pdf" and "skipped" in r.getMessage()]
    assert "en_latex_multicolumn.pdf" in message
    assert "page 2" in message


def test_all_pages_broken_is_a_file_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise ValueError("bad content\nstream")

    monkeypatch.setattr(PageObject, "extract_text", broken)
    monkeypatch.setattr(pdf_layer, "page_lines", broken)
    with pytest.raises(LoadError, match=r"^no page could be read \(unreadable page: bad content stream on page 3\)$"):
        list(PdfFileLoader(SAMPLES / "en_latex_multicolumn.pdf", on_page_error=lambda _: None).lazy_load())
