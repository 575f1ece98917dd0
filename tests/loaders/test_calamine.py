"""Spreadsheets read by python-calamine: .xls written with xlwt, .xlsb with pyxlsbwriter, .ods with odfpy into
tmp_path; encrypted ones from python-calamine's test data (tests/loaders/legacy_data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import xlwt
from langchain_core.documents import Document
from pyxlsbwriter import XlsbWriter

from loaders.calamine import CalamineFileLoader
from loaders.errors import LoadError
from loaders.options import ReadOptions
from loaders.registry import read
from loaders.source import SourceFile
from loaders.tables import TABLE_HEADER
from loaders.xlsx import XlsxFileLoader
from tests.loaders.odf_files import build_ods
from tests.loaders.test_xlsx import sales_workbook

DATA = Path(__file__).parent / "legacy_data"
HEADER = ["设备名称", "型号", "所在车间"]
ROWS = 120


def equipment(i: int) -> list[str]:
    return [f"机床{i}", f"M-{100 + i}", f"第{i % 5 + 1}车间"]


def build_xls(path: Path) -> Path:
    """设备: two empty rows, the header on row 3 from column B, 120 rows, a merged B5:C6 (D5, D6 apart);
    空表: nothing."""
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("设备")
    for c, name in enumerate(HEADER):
        sheet.write(2, c + 1, name)
    for i in range(ROWS):
        if i in (1, 2):
            continue  # rows 5 and 6: the merged range
        for c, value in enumerate(equipment(i)):
            sheet.write(3 + i, c + 1, value)
    sheet.write_merge(4, 5, 1, 2, "合并的设备")
    sheet.write(4, 3, "第九车间")
    sheet.write(5, 3, "第十车间")
    book.add_sheet("空表")
    book.save(str(path))
    return path


def load(path: Path, errors: list[LoadError] | None = None, **kwargs: int) -> list[Document]:
    options = ReadOptions(on_page_error=errors.append if errors is not None else None)
    return list(CalamineFileLoader(path, options, **kwargs).lazy_load())


def test_xls_sheet_as_blocks_with_excel_row_numbers(tmp_path: Path) -> None:
    docs = load(build_xls(tmp_path / "设备.xls"), block_rows=50)
    assert {doc.metadata["sheet"] for doc in docs} == {"设备"}  # the empty sheet gives nothing
    header = "|  | 设备名称 | 型号 | 所在车间 |\n| --- | --- | --- | --- |"
    assert all(doc.page_content.startswith(header + "\n") for doc in docs)
    assert docs[0].metadata[TABLE_HEADER] == header
    assert [(d.metadata["row_start"], d.metadata["row_end"]) for d in docs] == [(4, 53), (54, 103), (104, 123)]
    # Data index i is Excel row i + 4; row r is line 2 + r - row_start of its block (after the header's two).
    assert docs[0].page_content.splitlines()[2 + 41 - 4] == "|  | 机床37 | M-137 | 第3车间 |"


def test_xls_merged_range_fills_its_cells(tmp_path: Path) -> None:
    text = load(build_xls(tmp_path / "设备.xls"))[0].page_content.splitlines()
    assert text[2 + 1] == "|  | 合并的设备 | 合并的设备 | 第九车间 |"  # row 5
    assert text[2 + 2] == "|  | 合并的设备 | 合并的设备 | 第十车间 |"  # row 6, covered by the merge


def test_xlsb_sheets(tmp_path: Path) -> None:
    path = tmp_path / "台账.xlsb"
    with XlsbWriter(str(path)) as writer:
        writer.add_sheet("设备")
        writer.write_sheet([HEADER, *(equipment(i) for i in range(3))])
        writer.add_sheet("人员")
        writer.write_sheet([["姓名", "工号"], ["上官明月", "G8642"]])
    docs = load(path)
    assert [(d.metadata["sheet"], d.metadata["row_start"], d.metadata["row_end"]) for d in docs] == [
        ("设备", 2, 4),
        ("人员", 2, 2),
    ]
    assert docs[1].page_content == "| 姓名 | 工号 |\n| --- | --- |\n| 上官明月 | G8642 |"


def test_ods_through_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "名单.ods"
    build_ods(path, {"人员": [["姓名", "部门"], ["令狐晓东", "质检部"]]})
    (doc,) = read(SourceFile(root=tmp_path, path=path))
    assert doc.page_content.endswith("| 令狐晓东 | 质检部 |")
    assert (doc.metadata["file_type"], doc.metadata["sheet"], doc.metadata["row_start"]) == ("ods", "人员", 2)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("password.xls", "Excel"), ("password.xlsb", "Excel"), ("password.ods", "OpenDocument spreadsheet")],
)
def test_encrypted_workbook(name: str, kind: str) -> None:
    with pytest.raises(LoadError, match=rf"^encrypted {kind} file: remove the password \(save a copy without one\)$"):
        load(DATA / name)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "空.xls").touch()
    with pytest.raises(LoadError, match=r"^empty file$"):
        load(tmp_path / "空.xls")


def test_damaged_files(tmp_path: Path) -> None:
    text = tmp_path / "文本.xls"
    text.write_text("这不是表格", encoding="utf-8")
    with pytest.raises(LoadError, match=r"^not a \.xls file: it is text \(rename it to \.csv or \.txt\)$"):
        load(text)
    page = tmp_path / "导出.xls"
    page.write_text("<html><body><table><tr><td>1</td></tr></table></body></html>", encoding="utf-8")
    with pytest.raises(LoadError, match=r"^not a \.xls file: it is a web page or XML"):
        load(page)
    truncated = tmp_path / "截断.xls"
    truncated.write_bytes(build_xls(tmp_path / "完整.xls").read_bytes()[:1500])
    with pytest.raises(LoadError, match=r"^corrupt Excel file: "):
        load(truncated)
    odf = tmp_path / "截断.ods"
    build_ods(odf, {"表": [["a"]]})
    odf.write_bytes(odf.read_bytes()[:200])
    with pytest.raises(LoadError, match=r"^corrupt OpenDocument spreadsheet file: "):
        load(odf)


def test_a_workbook_without_data(tmp_path: Path) -> None:
    book = xlwt.Workbook()
    book.add_sheet("空")
    book.save(str(tmp_path / "空表.xls"))
    with pytest.raises(LoadError, match=r"^no data in the Excel file$"):
        load(tmp_path / "空表.xls")


def test_on_xlsx_it_gives_what_openpyxl_gives(tmp_path: Path) -> None:
    # The ground for comparing the two readers on .xlsx (docs/benchmarks.md, "calamine or openpyxl"): the same
    # Documents from a workbook with merged ranges, a header below empty rows, a chart sheet and a hidden sheet.
    path = sales_workbook(tmp_path / "sales.xlsx")
    by_openpyxl = list(XlsxFileLoader(path, ReadOptions(on_page_error=lambda error: None)).lazy_load())
    by_calamine = load(path)
    # The document's own properties (title, author, dates) come from openpyxl's core properties only: calamine does
    # not read them, and .xlsx stays on openpyxl.
    properties = {"title", "author", "created", "modified"}

    def cells(docs: list[Document]) -> list[tuple[str, dict[str, object]]]:
        return [(d.page_content, {k: v for k, v in d.metadata.items() if k not in properties}) for d in docs]

    assert cells(by_calamine) == cells(by_openpyxl)
