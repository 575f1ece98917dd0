"""Excel workbooks generated with openpyxl into tmp_path: sheets, blocks, merged cells, unsaved formulas, damage."""

from __future__ import annotations

import datetime
import re
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.documents import Document
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font

from loaders.errors import LoadError
from loaders.options import ReadOptions
from loaders.registry import read
from loaders.source import SourceFile
from loaders.tables import TABLE_HEADER, value_text
from loaders.xlsx import XlsxFileLoader

SALES_HEADER = ["日期", "地区", "产品", "数量", "单价", "金额"]
STOCK_HEADER = ["仓库", "SKU", "库存量", "盘点日期"]
SALES_ROWS = 300


def sales_workbook(path: Path) -> Path:
    """Sheets 销售 (header, 300 rows, merges, formulas, a styled empty area far out), 库存 (header on row 3),
    a chart sheet, and a hidden sheet."""
    workbook = Workbook()
    sales = workbook.active
    sales.title = "销售"
    sales.append(SALES_HEADER)
    for i in range(SALES_ROWS):
        day = datetime.date(2024, 1, 1) + datetime.timedelta(days=i)
        sales.append([day, "华南", f"产品{i}", i + 1, 2.5, (i + 1) * 2.5])
    sales["A2"] = datetime.datetime(2024, 1, 1, 9, 30)
    sales.merge_cells("B2:B4")
    sales["B2"] = "华东"
    sales.merge_cells("C5:D5")
    sales["C5"] = "套装"
    for row in (2, 3, 4):
        sales[f"F{row}"] = f"=D{row}*E{row}"  # openpyxl saves formulas without a value: Excel computes them
    sales["J400"].font = Font(bold=True)  # a styled empty cell: the sheet's declared size grows to J400
    sales["H350"] = "   "

    stock = workbook.create_sheet("库存")
    stock.append([])
    stock.append([])
    stock.append(STOCK_HEADER)
    for i in range(5):
        stock.append(["上海仓" if i == 0 else None, f"SKU-{i}", 10 * i, datetime.date(2024, 6, 30)])
    stock.merge_cells("A4:A5")
    stock["C9"] = "=SUM(C4:C8)"

    chart = BarChart()
    chart.add_data(Reference(stock, min_col=3, min_row=3, max_row=8), titles_from_data=True)
    workbook.create_chartsheet("图表").add_chart(chart)
    hidden = workbook.create_sheet("参数")
    hidden.append(["税率", 0.13])
    hidden.sheet_state = "hidden"
    workbook.save(path)
    return path


def load(path: Path, errors: list[LoadError] | None = None, **kwargs: int) -> list[Document]:
    options = ReadOptions(on_page_error=errors.append if errors is not None else None)
    return list(XlsxFileLoader(path, options, **kwargs).lazy_load())


def lines(doc: Document) -> list[str]:
    return doc.page_content.split("\n")


@pytest.fixture
def sales(tmp_path: Path) -> Path:
    return sales_workbook(tmp_path / "销售报表.xlsx")


def test_sheets_become_blocks_that_repeat_the_header(sales: Path) -> None:
    errors: list[LoadError] = []
    docs = load(sales, errors, block_rows=100)
    where = [(d.metadata["sheet"], d.metadata["row_start"], d.metadata["row_end"]) for d in docs]
    assert where == [("销售", 2, 101), ("销售", 102, 201), ("销售", 202, 301), ("库存", 4, 8), ("参数", 1, 1)]
    header = "| 日期 | 地区 | 产品 | 数量 | 单价 | 金额 |\n| --- | --- | --- | --- | --- | --- |"
    for doc in docs[:3]:
        assert doc.page_content.startswith(header + "\n")  # trailing empty columns (G to J) are dropped
        assert doc.metadata[TABLE_HEADER] == header
        assert len(lines(doc)) == 2 + 100
    assert lines(docs[2])[-1] == "| 2024-10-26 | 华南 | 产品299 | 300 | 2.5 | 750 |"  # no rows past 301
    # start_index: where each block starts in its sheet's blocks joined by newlines
    second = len(docs[0].page_content) + 1
    assert [d.metadata["start_index"] for d in docs] == [0, second, second + len(docs[1].page_content) + 1, 0, 0]
    assert lines(docs[4]) == ["| 税率 | 0.13 |", "| --- | --- |"]  # the hidden sheet, a header alone


def test_merged_cells_show_the_top_left_value(sales: Path) -> None:
    docs = load(sales)
    assert lines(docs[0])[2:6] == [
        "| 2024-01-01T09:30:00 | 华东 | 产品0 | 1 | 2.5 |  |",
        "| 2024-01-02 | 华东 | 产品1 | 2 | 2.5 |  |",
        "| 2024-01-03 | 华东 | 产品2 | 3 | 2.5 |  |",
        "| 2024-01-04 | 华南 | 套装 | 套装 | 2.5 | 10 |",
    ]
    stock = next(d for d in docs if d.metadata["sheet"] == "库存")
    assert lines(stock) == [
        "| 仓库 | SKU | 库存量 | 盘点日期 |",
        "| --- | --- | --- | --- |",
        "| 上海仓 | SKU-0 | 0 | 2024-06-30 |",
        "| 上海仓 | SKU-1 | 10 | 2024-06-30 |",
        "|  | SKU-2 | 20 | 2024-06-30 |",
        "|  | SKU-3 | 30 | 2024-06-30 |",
        "|  | SKU-4 | 40 | 2024-06-30 |",
    ]  # row 9 holds only a formula without a saved value: empty, and trailing


def test_unsaved_formulas_are_reported_once_per_sheet(sales: Path) -> None:
    errors: list[LoadError] = []
    load(sales, errors)
    assert [(e.page, str(e)) for e in errors] == [
        (1, "sheet '销售': 3 formulas have no saved value (open and save the file in Excel to store them)"),
        (2, "sheet '库存': 1 formula has no saved value (open and save the file in Excel to store them)"),
    ]


def test_without_a_handler_the_report_is_a_warning(sales: Path, caplog: pytest.LogCaptureFixture) -> None:
    load(sales)
    warnings = [r.getMessage() for r in caplog.records if r.name == "loaders.xlsx"]
    assert len(warnings) == 2
    assert warnings[0].endswith(
        "(sheet 1): sheet '销售': 3 formulas have no saved value (open and save the file in Excel to store them)"
    )


def test_read_adds_the_common_metadata(sales: Path) -> None:
    docs = list(read(SourceFile(root=sales.parent, path=sales), on_page_error=lambda error: None))
    assert set(docs[0].metadata) == {
        "source",
        "file_type",
        "file_hash",
        "sheet",
        "row_start",
        "row_end",
        "start_index",
        TABLE_HEADER,
        # openpyxl writes these core properties on every save
        "author",
        "created",
        "modified",
    }
    assert docs[0].metadata["file_type"] == "xlsx"
    assert all(isinstance(v, str | int) for d in docs for v in d.metadata.values())


def test_xlsm_is_read_the_same(sales: Path) -> None:
    macro = sales.rename(sales.with_suffix(".xlsm"))
    docs = list(read(SourceFile(root=macro, path=macro), on_page_error=lambda error: None))
    assert {d.metadata["file_type"] for d in docs} == {"xlsx"}
    assert [d.metadata["sheet"] for d in docs] == ["销售", "库存", "参数"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("  两端 空格 ", "两端 空格"),
        (12.0, "12"),
        (0.1 + 0.2, "0.3"),
        (1234567.891, "1234567.891"),
        (1e20, "1e+20"),
        (-7, "-7"),
        (False, "FALSE"),
        (datetime.datetime(2024, 2, 29), "2024-02-29"),
        (datetime.datetime(2024, 2, 29, 8, 5, 3, 250_000), "2024-02-29T08:05:03.250"),
        (datetime.date(2024, 2, 29), "2024-02-29"),
        (datetime.time(17, 45), "17:45:00"),
        (datetime.timedelta(days=1, hours=2, minutes=3), "26:03:00"),
        ("#DIV/0!", "#DIV/0!"),
    ],
)
def test_cell_values_as_excel_shows_them(value: object, text: str) -> None:
    assert value_text(value) == text


# -- XML that openpyxl does not write ---------------------------------------------------------------------------


def rewrite_member(path: Path, member: str, change: Callable[[bytes], bytes]) -> Path:
    """A copy of the workbook at `path` with one zip member's bytes changed."""
    copy = path.with_name("changed-" + path.name)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, change(data) if info.filename == member else data)
    return copy


def test_namespace_prefixed_sheet_xml(sales: Path) -> None:
    def prefixed(xml: bytes) -> bytes:  # the same sheet, written as some generators do: <x:c>, <x:f>, ...
        xml = re.sub(rb"<(/?)([A-Za-z])", rb"<\1x:\2", xml)
        return xml.replace(b'xmlns="', b'xmlns:x="', 1)

    errors: list[LoadError] = []
    docs = load(rewrite_member(sales, "xl/worksheets/sheet1.xml", prefixed), errors)
    assert b"<x:mergeCell " in zipfile.ZipFile(sales.with_name("changed-" + sales.name)).read(
        "xl/worksheets/sheet1.xml"
    )
    assert lines(docs[0])[3] == "| 2024-01-02 | 华东 | 产品1 | 2 | 2.5 |  |"
    assert [e.page for e in errors] == [1, 2]


def test_a_formula_whose_saved_result_is_empty_text_is_not_reported(sales: Path) -> None:
    def empty_text(xml: bytes) -> bytes:  # as Excel saves =IF(D2>0,"",1): t="str" and an empty <v>
        return re.sub(rb'<c r="F(\d)">', rb'<c r="F\1" t="str">', xml)

    errors: list[LoadError] = []
    load(rewrite_member(sales, "xl/worksheets/sheet1.xml", empty_text), errors)
    assert [e.page for e in errors] == [2]


def test_a_damaged_sheet_is_skipped_and_the_others_read(sales: Path) -> None:
    errors: list[LoadError] = []
    docs = load(rewrite_member(sales, "xl/worksheets/sheet2.xml", lambda xml: xml[: len(xml) // 2]), errors)
    assert {d.metadata["sheet"] for d in docs} == {"销售", "参数"}
    [damaged] = [e for e in errors if e.page == 2]
    assert str(damaged).startswith("unreadable sheet '库存': ")
    assert "\n" not in str(damaged)


def test_when_no_sheet_can_be_read_the_file_fails(tmp_path: Path) -> None:
    workbook = Workbook()
    workbook.active.append(["名称", "数量"])
    workbook.save(tmp_path / "one.xlsx")
    damaged = rewrite_member(tmp_path / "one.xlsx", "xl/worksheets/sheet1.xml", lambda xml: xml[:-40])
    errors: list[LoadError] = []
    with pytest.raises(LoadError, match=r"^no sheet could be read \(unreadable sheet 'Sheet': .+\)$"):
        load(damaged, errors)
    assert [e.page for e in errors] == [1]


# -- files that are not readable workbooks ----------------------------------------------------------------------


def one_line_error(path: Path) -> str:
    with pytest.raises(LoadError) as caught:
        load(path)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_truncated_file(sales: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.xlsx"
    path.write_bytes(sales.read_bytes()[:3000])
    assert one_line_error(path) == "corrupt Excel file: not a zip archive"


def test_csv_named_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    path.write_text("名称,数量\n苹果,3\n", encoding="utf-8")
    assert one_line_error(path) == "corrupt Excel file: not a zip archive"


def test_encrypted_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "EncryptionInfo".encode("utf-16-le"))
    assert one_line_error(path) == "encrypted Excel file: remove the password (save a copy without one)"


def test_a_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    assert one_line_error(path).startswith("corrupt Excel file: ")


def test_a_workbook_without_data(tmp_path: Path) -> None:
    workbook = Workbook()
    workbook.create_sheet("空白")
    workbook.save(tmp_path / "empty.xlsx")
    assert one_line_error(tmp_path / "empty.xlsx") == "no data in the Excel file"


# -- memory ----------------------------------------------------------------------------------------------------

BIG_ROWS = 20_000


def big_workbook(path: Path) -> Path:
    """One sheet of `BIG_ROWS` rows under a header; every 1000th row has an unsaved formula. Few columns: tracemalloc
    makes each allocation several times slower. Not write-only: that mode leaves out the sheet's ``<dimension>``,
    without which openpyxl parses the whole sheet once more when opening it (Excel always writes one)."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "订单"
    sheet.append(["订单号", "客户", "金额"])
    for i in range(1, BIG_ROWS + 1):
        sheet.append([f"SO-{i:06d}", f"客户{i % 97}", f"=C{i}*3" if i % 1000 == 0 else i * 3.5])
    workbook.save(path)
    return path


@pytest.mark.slow
def test_a_large_sheet_streams_in_blocks_with_little_memory(tmp_path: Path) -> None:
    path = big_workbook(tmp_path / "big.xlsx")
    assert zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml").file_size > 2 << 20  # several scan blocks
    errors: list[LoadError] = []
    tracemalloc.start()
    try:
        blocks = []
        for doc in XlsxFileLoader(path, ReadOptions(on_page_error=errors.append)).lazy_load():
            # Only what the structure check needs is kept: holding every Document would measure them, not the reader.
            assert doc.page_content.startswith("| 订单号 | 客户 | 金额 |\n")
            blocks.append((doc.metadata["row_start"], doc.metadata["row_end"], doc.page_content.count("\n") - 1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert blocks == [(2 + 500 * k, 501 + 500 * k, 500) for k in range(BIG_ROWS // 500)]
    assert [str(e) for e in errors] == [
        "sheet '订单': 20 formulas have no saved value (open and save the file in Excel to store them)"
    ]
    assert peak < 20 << 20, f"peak {peak >> 20} MiB"  # 6 MiB measured: openpyxl, a block, the XML scan


def test_core_properties_on_every_block(tmp_path: Path) -> None:
    workbook = Workbook()
    workbook.active.append(["区域", "销售额"])
    workbook.active.append(["华东", 120])
    workbook.properties.title, workbook.properties.creator = "销售", "财务部"
    workbook.properties.created = datetime.datetime(2023, 5, 6, 7, 8, 9)
    workbook.save(tmp_path / "s.xlsx")  # openpyxl sets "modified" to the time of the save
    (doc,) = load(tmp_path / "s.xlsx")
    assert {k: doc.metadata[k] for k in ("title", "author", "created")} == {
        "title": "销售",
        "author": "财务部",
        "created": "2023-05-06T07:08:09+00:00",
    }
    modified = datetime.datetime.fromisoformat(doc.metadata["modified"])
    assert modified.tzinfo is not None and modified.year >= 2024
