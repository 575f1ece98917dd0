"""Spreadsheets in the formats openpyxl cannot read: Excel 97-2003 (.xls), Excel binary (.xlsb) and OpenDocument
(.ods), through python-calamine (Rust's calamine: MIT, one wheel, no system library).

The Documents are those of `loaders.xlsx`: each sheet, in tab order, as Markdown table blocks of up to `BLOCK_ROWS`
rows (`loaders.tables.table_blocks`: the first non-empty row is the header, repeated atop every block), with
``sheet``, ``row_start``/``row_end`` (row numbers as the spreadsheet shows them) and ``start_index``; cells as
Excel shows them in the General format (`loaders.tables.value_text`); a merged range shows its top-left value in
each of its cells (calamine reports merged ranges for .xls; for .xlsb and .ods it does not, and their covered
cells stay empty). The value saved with a formula is read, not the formula. Hidden sheets are read (see
`loaders.xlsx`); chart, dialog and macro sheets have no cells to read.

Why not for .xlsx too: calamine reads a whole sheet into memory before its first row comes out. On the
200,000-row workbook of ``benchmarks.bench_xlsx`` it gives the same Documents with 11-12x less CPU than openpyxl,
but peaks at 196 MB against 103 (docs/benchmarks.md, "calamine or openpyxl for .xlsx"), and the gap grows with the
sheet; openpyxl streams it one block of rows at a time, and also reports the formulas that have no saved value,
which calamine returns as empty cells without a word.

A sheet that cannot be read is skipped and handed to ``options.on_page_error`` with its tab position as ``page``;
a file with a password, an empty file and a damaged one each get their own cause.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from python_calamine import (
    CalamineError,
    CalamineSheet,
    CalamineWorkbook,
    PasswordError,
    SheetTypeEnum,
)

from loaders.errors import LoadError, nothing_read, reason
from loaders.options import ReadOptions
from loaders.source import AnyPath
from loaders.tables import BLOCK_ROWS, Merge, sheet_rows, table_blocks

logger = logging.getLogger("loaders.calamine")

_KINDS = {".xls": "Excel", ".xlsb": "Excel", ".ods": "OpenDocument spreadsheet"}
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls: an OLE compound file
_ZIP_MAGIC = b"PK\x03\x04"  # .xlsb, .ods


class CalamineFileLoader(BaseLoader):
    """A .xls, .xlsb or .ods workbook as table Documents, sheet by sheet in tab order (see the module docstring).

    Raises `LoadError` for an empty, encrypted or damaged file, and for a workbook with no data.

    Usage (a LangChain document loader: any str or path-like)::

        docs = CalamineFileLoader("台账.xls").load()
        for block in CalamineFileLoader("台账.xls").lazy_load():
            print(block.metadata["sheet"], block.metadata["row_start"], block.metadata["row_end"])
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None, *, block_rows: int = BLOCK_ROWS) -> None:
        self.path = Path(path)
        self.block_rows = block_rows
        self.kind = _KINDS.get(self.path.suffix.lower(), "spreadsheet")
        self.on_page_error = (options.on_page_error if options else None) or self._log_page_error

    def lazy_load(self) -> Iterator[Document]:
        with self.path.open("rb") as stream:
            head = stream.read(512)
        if not head:
            raise LoadError("empty file")
        # An .xls is an OLE compound file; an .xlsb or .ods a zip, or an OLE file holding it encrypted.
        expected = (_CFB_MAGIC,) if self.path.suffix.lower() == ".xls" else (_ZIP_MAGIC, _CFB_MAGIC)
        if not head.startswith(expected):
            raise LoadError(self._not_a_workbook(head))
        workbook = self._open()
        failed: LoadError | None = None
        emitted = False
        with workbook:
            for number, meta in enumerate(workbook.sheets_metadata, 1):
                if meta.typ != SheetTypeEnum.WorkSheet:
                    continue
                try:
                    for doc in self._sheet(workbook.get_sheet_by_index(number - 1)):
                        emitted = True
                        yield doc
                except CalamineError as err:  # blocks yielded before the failure stay, as in loaders.xlsx
                    failed = LoadError(f"unreadable sheet {meta.name!r}: {reason(err)}", page=number)
                    self.on_page_error(failed)
        if not emitted:
            raise nothing_read(failed, "sheet", f"no data in the {self.kind} file")

    def _open(self) -> CalamineWorkbook:
        try:
            return CalamineWorkbook.from_path(str(self.path))
        except PasswordError as err:
            raise LoadError(f"encrypted {self.kind} file: remove the password (save a copy without one)") from err
        except CalamineError as err:  # "Cannot detect file format", a bad zip, bad XML, a bad BIFF record
            raise LoadError(f"corrupt {self.kind} file: {reason(err)}") from err

    def _not_a_workbook(self, head: bytes) -> str:
        """What a file is that has not the first bytes of its extension's format (web sites export "Excel" files
        that are HTML tables or tab-separated text)."""
        suffix = self.path.suffix.lower()
        if head.startswith(_ZIP_MAGIC):
            return f"not a {suffix} file: it is a zip archive (a .xlsx or .ods? rename it)"
        if head.lstrip().lower().startswith((b"<html", b"<!doctype", b"<table", b"<?xml", b"mime-version")):
            return f"not a {suffix} file: it is a web page or XML (rename an HTML table to .html)"
        if _is_text(head):
            return f"not a {suffix} file: it is text (rename it to .csv or .txt)"
        return f"corrupt {self.kind} file: not {'an OLE compound file' if suffix == '.xls' else 'a zip archive'}"

    def _sheet(self, sheet: CalamineSheet) -> Iterator[Document]:
        start = sheet.start
        if start is None:  # no cell at all
            return
        # calamine yields every row from the first (row 1 as numbered by `sheet_rows`), but the columns only from
        # the first one with data: the leading ones are put back, so that columns match the merged ranges.
        lead: list[object] = [None] * start[1]
        values = ([*lead, *row] for row in sheet.iter_rows())
        merges = [Merge(top + 1, bottom + 1, left, right + 1) for (top, left), (bottom, right) in _merges(sheet)]
        yield from table_blocks(sheet_rows(values, merges), {"sheet": sheet.name}, self.block_rows)

    def _log_page_error(self, error: LoadError) -> None:
        logger.warning("%s (sheet %s): %s", self.path, error.page, error)


def _is_text(head: bytes) -> bool:
    """Whether the first bytes decode as UTF-8 or GB18030 text, a character cut at their end forgiven."""
    for codec in ("utf-8", "gb18030"):
        try:
            head[: len(head) - 4 if len(head) == 512 else len(head)].decode(codec)
        except UnicodeDecodeError:
            continue
        return b"\0" not in head
    return False


def _merges(sheet: CalamineSheet) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    return sheet.merged_cell_ranges or []  # None: the format does not record them (.xlsb, .ods)
