"""The files people still have, in one folder through the real ingest and retriever (embedded model, real
Chroma): Word, Excel and PowerPoint 97-2003, OpenDocument text, spreadsheet and presentation, Excel binary and
RTF. Each file's fact comes back first, with its place: sheet and rows, section, or slide.

All but the .doc are built here (xlwt, pyxlsbwriter, odfpy, our .ppt and .rtf writers), each with a fact no
other file has; the .doc is a public sample (tests/loaders/legacy_data/README.md), in English.

Then parser warnings: an ingest of a workbook openpyxl warns about, as a user runs it (the CLI, its parser
workers), prints no Python warning on stderr.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import xlwt
from langchain_core.documents import Document
from pyxlsbwriter import XlsbWriter

from pipelines.ingestion.writer import IngestReport, ingest
from pipelines.retrieve.retriever import QwenRagRetriever, build_retriever
from pipelines.settings import Settings
from testbed.process import sglang_process
from tests.loaders.legacy_files import ppt
from tests.loaders.odf_files import ARTICLE, CHAPTER, ODT_FACT, SLIDES, build_odp, build_ods, build_odt
from tests.loaders.test_capture import workbook_without_stylesheet
from tests.loaders.test_rtf import RTF_TEXT, rtf

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "loaders" / "legacy_data"

XLS_FACT = ["激光切割机", "HX-9153", "第七车间"]  # data row 37 of 设备: Excel row 39
XLSB_FACT = ["上官明月", "质检部", "G8642"]  # data row 12 of 人员: row 14
ODS_FACT = ["令狐晓东", "哈尔滨", "73915"]  # data row 20 of 客户: row 22
PPT_SLIDES = [
    ("开场", ["欢迎各位。"]),
    ("工期", ["项目分三期完成。"]),
    ("验收", ["验收人是夏侯明，验收费 6150 元。"]),
]
RTF_FACT = RTF_TEXT.splitlines()[0]

DOC, XLS, PPT, ODT, ODS, ODP, XLSB, RTF = (
    "规章.doc",
    "设备.xls",
    "验收.ppt",
    "制度.odt",
    "客户.ods",
    "年会.odp",
    "人员.xlsb",
    "通知.rtf",
)


def _rows(filler: str, count: int, fact_index: int, fact: list[str]) -> list[list[str]]:
    return [fact if i == fact_index else [f"{filler}{i}", f"类{i % 7}", f"N-{1000 + i}"] for i in range(count)]


def _xls(path: Path) -> None:
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("设备")
    for r, row in enumerate([["设备名称", "型号", "所在车间"], *_rows("机床", 80, 37, XLS_FACT)]):
        for c, value in enumerate(row):
            sheet.write(r + 1, c, value)  # the header on row 2
    book.save(str(path))


def _xlsb(path: Path) -> None:
    with XlsbWriter(str(path)) as writer:
        writer.add_sheet("人员")
        writer.write_sheet([["姓名", "部门", "工号"], *_rows("职员", 60, 12, XLSB_FACT)])


def _ods(path: Path) -> None:
    build_ods(path, {"客户": [["客户", "城市", "金额"], *_rows("客户", 50, 20, ODS_FACT)]})


def _ppt(path: Path) -> None:
    path.write_bytes(ppt(PPT_SLIDES))


def _rtf(path: Path) -> None:
    path.write_bytes(rtf())


def _doc(path: Path) -> None:
    shutil.copy(DATA / "harmless-clean.doc", path)


BUILDERS = {DOC: _doc, XLS: _xls, PPT: _ppt, ODT: build_odt, ODS: _ods, ODP: build_odp, XLSB: _xlsb, RTF: _rtf}


@dataclass
class Indexed:
    report: IngestReport
    retriever: QwenRagRetriever


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    folder = tmp_path_factory.mktemp("legacy")
    for name, build in BUILDERS.items():
        build(folder / name)
    settings = Settings(store=tmp_path_factory.mktemp("store"))
    report = ingest([folder], settings)
    return Indexed(report, build_retriever(settings))


def top(indexed: Indexed, query: str) -> Document:
    docs = indexed.retriever.invoke(query, k=3)
    assert docs, f"nothing found for {query!r}"
    return docs[0]


@pytest.mark.slow
def test_every_legacy_file_is_indexed(indexed: Indexed) -> None:
    assert indexed.report.problems == []
    assert (indexed.report.files, indexed.report.added, indexed.report.failed) == (8, 8, 0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "query", "fact", "sheet", "row"),
    [
        (XLS, "激光切割机 HX-9153 在哪个车间", XLS_FACT, "设备", 39),
        (XLSB, "上官明月的工号 G8642 和部门", XLSB_FACT, "人员", 14),
        (ODS, "令狐晓东 哈尔滨 金额 73915", ODS_FACT, "客户", 22),
    ],
    ids=["xls", "xlsb", "ods"],
)
def test_sheet_row_comes_first_with_its_sheet_and_rows(
    indexed: Indexed, source: str, query: str, fact: list[str], sheet: str, row: int
) -> None:
    doc = top(indexed, query)
    assert doc.metadata["source"] == source
    assert f"| {' | '.join(fact)} |" in doc.page_content
    assert doc.metadata["sheet"] == sheet
    assert doc.metadata["row_start"] <= row <= doc.metadata["row_end"]


@pytest.mark.slow
def test_doc_sentence_comes_first_with_its_section(indexed: Indexed) -> None:
    doc = top(indexed, "a harmless test document without macros or dde links")
    assert (doc.metadata["source"], doc.metadata["file_type"]) == (DOC, "doc")
    assert "This is a harmless test document." in doc.page_content
    assert doc.metadata["section"] == "Test"


@pytest.mark.slow
def test_odt_fact_comes_first_with_its_heading_path(indexed: Indexed) -> None:
    doc = top(indexed, "档案室钥匙由谁保管？编号 K-4827")
    assert (doc.metadata["source"], doc.metadata["file_type"]) == (ODT, "odt")
    assert ODT_FACT in doc.page_content
    assert doc.metadata["section"] == f"{CHAPTER} > {ARTICLE}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "query", "fact", "page"),
    [
        (PPT, "验收人是谁，验收费多少元", PPT_SLIDES[2][1][0], 3),
        (ODP, "年度最佳销售是谁？诸葛云飞签约多少单", SLIDES[1][1][0], 2),
    ],
    ids=["ppt", "odp"],
)
def test_slide_fact_comes_first_with_its_slide(indexed: Indexed, source: str, query: str, fact: str, page: int) -> None:
    doc = top(indexed, query)
    assert doc.metadata["source"] == source
    assert fact in doc.page_content
    assert doc.metadata["page"] == page


@pytest.mark.slow
def test_rtf_fact_comes_first(indexed: Indexed) -> None:
    doc = top(indexed, "仓库钥匙由谁保管？柜号 C-5531")
    assert (doc.metadata["source"], doc.metadata["file_type"]) == (RTF, "rtf")
    assert RTF_FACT in doc.page_content


# -- parser warnings -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_ingest_that_meets_parser_warnings_prints_none(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    workbook_without_stylesheet(folder / "订单.xlsx")
    with pytest.warns(UserWarning, match="no stylesheet"):  # the warning is real, and comes when it is opened
        from openpyxl import load_workbook

        load_workbook(folder / "订单.xlsx", read_only=True).close()
    with sglang_process(384) as url:
        command = [sys.executable, "-c", "from pipelines.cli import main; main()", "ingest", str(folder)]
        command += ["--store", str(tmp_path / "store"), "--embeddings-url", url, "--json"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["added"], report["failed"], report["problems"]) == (1, 0, [])
    for marker in ("Warning", "warn(", "stylesheet"):
        assert marker not in done.stderr, done.stderr
