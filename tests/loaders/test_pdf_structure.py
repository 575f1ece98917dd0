"""What a PDF reader of the shared samples must get right: table figures, whole words, column order, no page
furniture inside the text, sections, and where each chunk stands on its page."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from langchain_core.documents import Document

from loaders import pdf_layer
from loaders.chunking import Chunker, ChunkSpec
from loaders.options import LayoutMode
from loaders.pdf import PdfFileLoader
from loaders.pdf_flow import Vocabulary
from loaders.pdf_text import Line
from loaders.positions import BOXES, LINE_BOXES, parse_boxes
from loaders.tables import TABLE_HEADER
from loaders.tokens import qwen_tokenizer
from testbed.shared import sample_pdfs

SAMPLES = sample_pdfs()
NICS = SAMPLES / "en_gov_table_nics-background-checks-2015-11.pdf"
ACL = SAMPLES / "en_paper_acl2020-main-207.pdf"
NAACL = SAMPLES / "en_paper_naacl2018-N18-3011.pdf"
MULTICOLUMN = SAMPLES / "en_latex_multicolumn.pdf"
CHINESE = SAMPLES / "zh_elegantpaper-cn.pdf"
_HAN = "\u4e00-\u9fff"


@pytest.fixture(scope="module")
def read() -> dict[Path, list[Document]]:
    return {path: list(PdfFileLoader(path).lazy_load()) for path in (NICS, ACL, NAACL, MULTICOLUMN, CHINESE)}


def _text(docs: list[Document]) -> str:
    return "\n\n".join(doc.page_content for doc in docs)


def _nics_rows(docs: list[Document]) -> tuple[list[str], list[list[str]]]:
    (table,) = [doc for doc in docs if TABLE_HEADER in doc.metadata]
    header, _, *rows = table.page_content.split("\n")
    return _cells(header), [_cells(row) for row in rows]


def _cells(line: str) -> list[str]:
    assert line.startswith("| ") and line.endswith(" |")
    return [cell.strip() for cell in line[2:-2].split(" | ")]


def test_nics_rows_are_table_rows_whose_figures_add_up_to_their_total(read: dict[Path, list[Document]]) -> None:
    header, rows = _nics_rows(read[NICS])
    assert header[0] == "State / Territory" and header[-1] == "Totals"
    assert {"Permit", "Handgun", "Long Gun", "Pre-Pawn Handgun", "Private Sale Handgun"} <= set(header)
    names = [row[0] for row in rows]
    assert names[0] == "Alabama" and names[-2:] == ["Wyoming", "Totals"] and len(names) == 56
    for row in rows:
        assert len(row) == len(header)
        figures = [int(cell.replace(",", "")) for cell in row[1:] if cell]
        # Every cell is one figure of the PDF's: fused or split cells would not add up to the row's total.
        assert sum(figures[:-1]) == figures[-1], row
    florida = rows[names.index("Florida")]
    assert " | ".join(florida) == (
        "Florida | 15,907 | 50,796 | 28,981 | 2,268 | 1,957 | 121 | 8 | 9 | 0 | 2,248 | 1,135 | 2 | 40 | 5 | 0 |  |  "
        "| 36 | 19 | 0 | 0 | 0 | 0 | 103,532"
    )
    assert rows[names.index("Georgia")][-1] == "50,795"


def test_nics_table_chunks_repeat_the_header_and_keep_the_box(read: dict[Path, list[Document]]) -> None:
    (table,) = [doc for doc in read[NICS] if TABLE_HEADER in doc.metadata]
    chunks = Chunker(qwen_tokenizer(), ChunkSpec(chunk_tokens=1024, overlap_tokens=64)).split(table)
    assert len(chunks) > 1
    (florida,) = [chunk for chunk in chunks if "| Florida |" in chunk.page_content]
    assert florida.page_content.startswith("| State / Territory | Permit | Handgun |")
    ((page, x0, top, x1, bottom),) = parse_boxes(florida.metadata[BOXES])
    assert page == 1 and x0 < 40 and x1 > 900 and 50 < top < bottom < 500


def test_the_lines_of_a_paragraph_are_one_line_and_words_are_whole(read: dict[Path, list[Document]]) -> None:
    text = _text(read[MULTICOLUMN] + read[ACL] + read[NAACL])
    for broken in (r"adip(-\s*|\s+)iscing", r"ingre(-\s*|\s+)dient", r"repre(-\s*|\s+)sentations", r"[a-z]-\n+[a-z]"):
        assert not re.search(broken, text), broken
    assert "consectetuer adipiscing elit" in text
    assert "a critical ingredient for natural language processing systems" in text
    assert "powerful textual representations" in text
    assert "state-of-the-art pretrained LMs" in text  # a hyphenated word keeps its hyphens


def test_hyphens_stay_where_both_halves_are_words_and_their_join_is_not() -> None:
    words = Vocabulary()
    words.add([Line("a well known fact, and an ingredient", (0, 0, 1, 1), 10, False)])
    assert words.keeps_hyphen("well", "known")
    assert not words.keeps_hyphen("ingre", "dient")
    assert not words.keeps_hyphen("repre", "sentations")  # neither half is a word: one word
    assert words.keeps_hyphen("state-of-the", "art")


def test_columns_are_read_in_order_and_a_sentence_goes_on_across_the_break(read: dict[Path, list[Document]]) -> None:
    text = _text(read[MULTICOLUMN])
    # The first column of page 1 ends in "Donec nonummy", the second starts with "pellentesque ante."
    assert "Vivamus viverra fermentum felis. Donec nonummy pellentesque ante. Phasellus adipiscing" in text
    assert text.index("This is a sample document") < text.index("Quisque ullamcorper placerat ipsum")
    acl = _text(read[ACL])
    assert "representing individual words or sentences, extensions to whole-document embeddings" in acl


def test_no_page_number_or_running_header_inside_the_text(read: dict[Path, list[Document]]) -> None:
    for docs in (read[MULTICOLUMN], read[ACL], read[NAACL]):
        for doc in docs:
            for paragraph in doc.page_content.split("\n\n"):
                assert not re.fullmatch(r"\d+", paragraph), (doc.metadata, paragraph)
    for doc in read[ACL]:
        printed = str(2269 + doc.metadata["page"])  # the proceedings' page number at each page's foot
        if doc.metadata["page"] > 1:  # page 1 names the range "pages 2270-2282" in its (kept) footer
            assert printed not in doc.page_content


def test_footnotes_come_after_the_page_body(read: dict[Path, list[Document]]) -> None:
    page = _text([doc for doc in read[ACL] if doc.metadata["page"] == 1])
    assert page.index("In this paper, we introduce a new method") < page.index("∗ Equal contribution")
    assert "∗ Equal contribution" not in page[: page.index("representing individual words or sentences")]


def test_sections_come_from_headings_or_the_outline(read: dict[Path, list[Document]]) -> None:
    sections = {doc.metadata.get("section") for doc in read[ACL]}
    assert any(section and section.endswith(" > 1 Introduction") for section in sections)
    assert any(section and section.endswith("> 2 Model > 2.1 Overview") for section in sections)
    (intro,) = [doc for doc in read[ACL] if doc.metadata.get("section", "").endswith("1 Introduction")][:1]
    assert intro.page_content.startswith("1 Introduction\n\nAs the pace of scientific publication")
    chinese = {doc.metadata.get("section") for doc in read[CHINESE]}
    assert {"模板介绍 > 全局选项", "模板介绍 > 自定义命令"} <= chinese  # the PDF's outline


def test_chinese_lines_join_without_a_break(read: dict[Path, list[Document]]) -> None:
    text = _text(read[CHINESE])
    assert not re.search(rf"[{_HAN}]\n[{_HAN}]", text)
    assert not re.search(rf"[{_HAN}] [{_HAN}]", text.replace("摘 要", ""))  # nor a space for the line break
    assert "你可以在此模板使用原来的命令和环境" in text


def test_each_chunk_has_the_boxes_of_its_own_lines(read: dict[Path, list[Document]]) -> None:
    (intro,) = [doc for doc in read[ACL] if doc.metadata.get("section", "").endswith("1 Introduction")][:1]
    assert LINE_BOXES in intro.metadata
    chunks = Chunker(qwen_tokenizer(), ChunkSpec(chunk_tokens=64, overlap_tokens=0)).split(intro)
    assert len(chunks) > 4
    boxes = []
    for chunk in chunks:
        assert LINE_BOXES not in chunk.metadata
        ((page, x0, top, x1, bottom),) = json.loads(chunk.metadata[BOXES])
        assert page == 1 and x0 < x1 and top < bottom
        boxes.append((x0, top, x1, bottom))
    # The first chunk is the heading and the column's first lines: the left column, near "1 Introduction".
    assert boxes[0][0] < 80 and boxes[0][2] < 300 and 590 < boxes[0][1] < 600
    # A later chunk's text is in the right column, lower chunks of the left column are below the first.
    assert any(x0 > 300 for x0, *_ in boxes)
    assert boxes[1][1] > boxes[0][1]


@pytest.mark.slow  # the layout model: about a second a page
def test_the_layout_model_reads_the_columns_in_order_too() -> None:
    docs = list(PdfFileLoader(MULTICOLUMN, layout=LayoutMode.MODEL).lazy_load())
    text = _text(docs)
    assert "Vivamus viverra fermentum felis. Donec nonummy pellentesque ante. Phasellus adipiscing" in text
    assert "consectetuer adipiscing elit" in text
    for doc in docs:
        for paragraph in doc.page_content.split("\n\n"):
            assert not re.fullmatch(r"\d+", paragraph)


def test_a_failing_layout_model_leaves_the_page_to_the_text_rules_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(page: object) -> list[object]:
        raise RuntimeError("onnxruntime: no")

    monkeypatch.setattr(pdf_layer, "page_regions", broken)
    with caplog.at_level(logging.WARNING, logger="loaders.pdf"):
        docs = list(PdfFileLoader(MULTICOLUMN, layout=LayoutMode.MODEL).lazy_load())
    assert sorted({doc.metadata["page"] for doc in docs}) == [1, 2, 3]
    assert _text(docs) == _text(list(PdfFileLoader(MULTICOLUMN, layout=LayoutMode.OFF).lazy_load()))
    (record,) = [r for r in caplog.records if r.name == "loaders.pdf"]
    assert "layout model failed on page(s) 1, 2, 3: read by the text rules" in record.getMessage()
