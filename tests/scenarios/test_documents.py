"""Chinese office documents, an e-book, a notebook and a scanned PDF in one folder, through the real ingest and
retriever with the embedded model: each document's distinctive fact comes back first, with its place in the file.

The files are made by the loader tests' builders, each given one or two facts no other file has (a unique name
and number), so that both the dense model and BM25 can tell them apart. One folder, ingested once per module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import docx
import pytest
from langchain_core.documents import Document
from openpyxl import Workbook
from pptx.util import Inches

from loaders.options import OcrMode
from loaders.slides import NOTES_PREFIX
from pipelines.ingestion.writer import IngestReport, ingest
from pipelines.retrieve.retriever import QwenRagRetriever, build_retriever
from pipelines.settings import Mode, Settings
from pipelines.store.chroma import open_store
from tests.loaders.ocr_pages import image_pdf, render
from tests.loaders.test_csv import HEADER as CSV_HEADER
from tests.loaders.test_csv import PEOPLE, csv_text
from tests.loaders.test_docx import ARTICLE_3, CHAPTER_1, ROWS, build_rules
from tests.loaders.test_epub import book, make_epub, xhtml
from tests.loaders.test_ipynb import CELLS, markdown, notebook, write
from tests.loaders.test_pptx import TITLE_ONLY_LAYOUT, build_deck, save

pytestmark = pytest.mark.slow  # its fixture ingests every document format, OCR included

# -- the facts, one per place they must be found -------------------------------------------------------------

DOCX_FACT = "第三条补充：档案室钥匙由欧阳振华保管，钥匙编号 K-4827。"
PPTX_TITLE = "年度人物"
PPTX_SLIDE_FACT = "年度最佳销售：诸葛云飞，全年签约 386 单。"
PPTX_NOTES_FACT = "诸葛云飞的奖金为 52000 元，下周三发放。"
EPUB_SECTION = "第二章 射手和农场主"
EPUB_FACT = "农场主慕容秋实在 1979 年养了 7341 只火鸡。"
NOTEBOOK_FACT = "## 实验记录\n实验员端木青在第 64 轮训练中把学习率降到 0.00037。"

XLSX_SHEETS = {"设备": ["设备名称", "型号", "所在车间", "采购年份"], "人员": ["姓名", "部门", "工号", "入职年份"]}
XLSX_ROWS = 120
# sheet -> (its data row index, the row as written); Excel row = index + 2 (row 1 is the header).
XLSX_FACTS = {
    "设备": (37, ["激光切割机", "HX-9153", "第七车间", "2019"]),
    "人员": (96, ["上官明月", "质检部", "G8642", "2016"]),
}
CSV_ROWS = 150
CSV_FACT_INDEX, CSV_FACT = 103, ["令狐晓东", "哈尔滨", "73915"]  # file row CSV_FACT_INDEX + 2

SCANNED = [
    ["第一页：设备维修合同。", "甲方：北方机械厂。"],
    ["Page two: the repair schedule.", "Work starts on Monday."],
    ["第三页：验收人是夏侯明。", "Acceptance fee is 6150 yuan."],
]

DOCX, PPTX, XLSX, CSV, EPUB, IPYNB, SCAN = (
    "规章.docx",
    "报告.pptx",
    "台账.xlsx",
    "名单.csv",
    "三体.epub",
    "笔记.ipynb",
    "扫描件.pdf",
)
DOCX_TABLE_HEADER = "| 序号 | 姓名 | 部门 |\n| --- | --- | --- |\n"


# -- the files -----------------------------------------------------------------------------------------------


def _docx(path: Path) -> None:
    """The loader tests' rules (headings, the 200-row table) with the fact at the start of 第三条's text."""
    build_rules(path)
    document = docx.Document(str(path))
    (anchor,) = [p for p in document.paragraphs if p.text == "员工应当遵守以下要求："]
    anchor.insert_paragraph_before(DOCX_FACT)
    document.save(str(path))


def _pptx(path: Path) -> None:
    """The loader tests' deck, plus a fourth slide whose notes hold a fact the slide does not show."""
    deck = build_deck()
    slide = deck.slides.add_slide(deck.slide_layouts[TITLE_ONLY_LAYOUT])
    slide.shapes.title.text = PPTX_TITLE
    slide.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(1)).text_frame.text = PPTX_SLIDE_FACT
    slide.notes_slide.notes_text_frame.text = PPTX_NOTES_FACT
    save(deck, path)


def _xlsx(path: Path) -> None:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for n, (name, header) in enumerate(XLSX_SHEETS.items()):
        sheet = workbook.create_sheet(name)
        sheet.append(header)
        fact_index, fact = XLSX_FACTS[name]
        for i in range(XLSX_ROWS):
            filler = (
                [f"机床{i}", f"M-{100 + i}", f"第{i % 5 + 1}车间", str(2010 + i % 10)]
                if n == 0
                else [f"职员{i}", f"部门{i % 6}", f"G{1000 + i}", str(2010 + i % 12)]
            )
            sheet.append(fact if i == fact_index else filler)
    workbook.save(path)


def _csv(path: Path) -> None:
    rows = [[f"客户{i}", PEOPLE[i % 3][1], str(100 + i)] for i in range(CSV_ROWS)]
    rows[CSV_FACT_INDEX] = CSV_FACT
    data = csv_text([CSV_HEADER, *rows]).encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # really GB18030, not UTF-8 by chance
    path.write_bytes(data)


def _epub(path: Path) -> None:
    chapter = xhtml("三体", f"<h2>{EPUB_SECTION}</h2><p>{EPUB_FACT}</p><p>科学边界的会议。</p>")
    make_epub(path, book({"OEBPS/Text/chapter two.xhtml": chapter}))


def _ipynb(path: Path) -> None:
    write(path, notebook([*CELLS, markdown(NOTEBOOK_FACT)]))


def _scan(path: Path) -> None:
    image_pdf(path, [render(lines) for lines in SCANNED])


BUILDERS = {DOCX: _docx, PPTX: _pptx, XLSX: _xlsx, CSV: _csv, EPUB: _epub, IPYNB: _ipynb, SCAN: _scan}


@dataclass
class Indexed:
    folder: Path
    settings: Settings
    report: IngestReport
    retriever: QwenRagRetriever


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    folder = tmp_path_factory.mktemp("documents")
    for name, build in BUILDERS.items():
        build(folder / name)
    settings = Settings(store=tmp_path_factory.mktemp("store"))
    assert (settings.mode, settings.ocr) == (Mode.HYBRID, OcrMode.AUTO)  # the defaults are what is tested
    report = ingest([folder], settings)
    return Indexed(folder, settings, report, build_retriever(settings))


def top(indexed: Indexed, query: str) -> Document:
    docs = indexed.retriever.invoke(query, k=3)  # the default mode: hybrid
    assert docs, f"nothing found for {query!r}"
    return docs[0]


def chunks_of(indexed: Indexed, source: str) -> list[tuple[str, dict]]:
    got = indexed.retriever.collection.get(where={"source": source}, include=["documents", "metadatas"])
    return list(zip(got["documents"], got["metadatas"], strict=True))


# -- the run -------------------------------------------------------------------------------------------------


def test_every_file_is_indexed_in_one_run(indexed: Indexed) -> None:
    report = indexed.report
    assert report.problems == []
    assert (report.files, report.added, report.failed) == (len(BUILDERS), len(BUILDERS), 0)
    for name in BUILDERS:
        assert chunks_of(indexed, name), f"{name} has no chunk in the store"


# -- each document's fact comes first ------------------------------------------------------------------------


def test_docx_fact_comes_first_with_its_heading_path(indexed: Indexed) -> None:
    doc = top(indexed, "档案室钥匙由谁保管？钥匙编号 K-4827")
    assert (doc.metadata["source"], doc.metadata["file_type"]) == (DOCX, "docx")
    assert DOCX_FACT in doc.page_content
    assert doc.metadata["section"] == ARTICLE_3
    assert doc.metadata["section"].startswith(CHAPTER_1 + " > ")


def test_docx_table_row_comes_first_with_its_section(indexed: Indexed) -> None:
    doc = top(indexed, "员工137 在哪个部门")
    assert doc.metadata["source"] == DOCX
    assert "| 137 | 员工137 | 部门1 |" in doc.page_content
    assert doc.metadata["section"] == ARTICLE_3


def test_docx_200_row_table_chunks_each_start_with_the_header(indexed: Indexed) -> None:
    table = [(text, meta) for text, meta in chunks_of(indexed, DOCX) if re.search(r"^\| \d+ \|", text, re.M)]
    assert len(table) > 1, "the table should be split across chunks for this test to mean anything"
    rows: list[int] = []
    for text, meta in table:
        assert text.startswith(DOCX_TABLE_HEADER), text[:80]
        assert meta["section"] == ARTICLE_3
        rows += [int(n) for n in re.findall(r"^\| (\d+) \|", text, re.M)]
    assert sorted(rows) == list(range(1, ROWS + 1))


@pytest.mark.parametrize(
    ("query", "fact"),
    [
        ("年度最佳销售是谁？诸葛云飞签约多少单", PPTX_SLIDE_FACT),
        ("诸葛云飞的奖金是多少元，什么时候发放", NOTES_PREFIX + PPTX_NOTES_FACT),  # in the speaker notes only
    ],
    ids=["slide", "notes"],
)
def test_pptx_fact_comes_first_with_slide_number_and_title(indexed: Indexed, query: str, fact: str) -> None:
    doc = top(indexed, query)
    assert (doc.metadata["source"], doc.metadata["file_type"]) == (PPTX, "pptx")
    assert fact in doc.page_content
    assert (doc.metadata["page"], doc.metadata["title"]) == (4, PPTX_TITLE)


@pytest.mark.parametrize(
    ("sheet", "query"),
    [("设备", "激光切割机 HX-9153 在哪个车间"), ("人员", "上官明月的工号 G8642 和部门")],
)
def test_xlsx_row_comes_first_with_its_sheet_and_rows(indexed: Indexed, sheet: str, query: str) -> None:
    index, fact = XLSX_FACTS[sheet]
    doc = top(indexed, query)
    assert (doc.metadata["source"], doc.metadata["file_type"]) == (XLSX, "xlsx")
    assert f"| {' | '.join(fact)} |" in doc.page_content
    assert doc.metadata["sheet"] == sheet
    assert doc.metadata["row_start"] <= index + 2 <= doc.metadata["row_end"]


def test_gb18030_csv_row_comes_first_with_its_rows(indexed: Indexed) -> None:
    doc = top(indexed, "令狐晓东 哈尔滨 金额 73915")
    assert (doc.metadata["source"], doc.metadata["file_type"]) == (CSV, "csv")
    assert f"| {' | '.join(CSV_FACT)} |" in doc.page_content
    assert doc.metadata["row_start"] <= CSV_FACT_INDEX + 2 <= doc.metadata["row_end"]


def test_epub_fact_comes_first_with_its_chapter(indexed: Indexed) -> None:
    doc = top(indexed, "慕容秋实养了多少只火鸡")
    assert (doc.metadata["source"], doc.metadata["file_type"]) == (EPUB, "epub")
    assert EPUB_FACT in doc.page_content
    assert doc.metadata["section"] == EPUB_SECTION


def test_notebook_fact_comes_first(indexed: Indexed) -> None:
    doc = top(indexed, "端木青把学习率降到了多少")
    assert (doc.metadata["source"], doc.metadata["file_type"]) == (IPYNB, "notebook")
    assert "0.00037" in doc.page_content


# -- the scanned PDF -----------------------------------------------------------------------------------------


def test_scanned_pdf_pages_are_indexed_by_ocr(indexed: Indexed) -> None:
    pages = sorted((meta["page"], meta.get("ocr")) for _, meta in chunks_of(indexed, SCAN))
    assert pages == [(1, True), (2, True), (3, True)]


@pytest.mark.parametrize(
    ("query", "line"), [("验收人是夏侯明", 0), ("What is the acceptance fee?", 1)], ids=["zh", "en"]
)
def test_scanned_pdf_page_3_comes_first(indexed: Indexed, query: str, line: int) -> None:
    doc = top(indexed, query)
    assert (doc.metadata["source"], doc.metadata["page"], doc.metadata["ocr"]) == (SCAN, 3, True)
    assert SCANNED[2][line] in doc.page_content  # recognised as rendered


def test_without_ocr_the_scanned_pdf_is_reported_and_not_indexed(
    indexed: Indexed, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = Settings(store=tmp_path_factory.mktemp("never"), ocr=OcrMode.NEVER)
    report = ingest([indexed.folder / SCAN], settings)
    assert report.failed == 1 and report.added == 0
    (problem,) = report.problems
    assert problem.source == SCAN
    assert "use --ocr auto" in problem.cause
    collection = open_store(settings).existing(settings.collection)
    assert collection is None or collection.count() == 0
