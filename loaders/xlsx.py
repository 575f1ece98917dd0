"""Excel workbooks (.xlsx, .xlsm): each sheet as Markdown table Documents of up to `BLOCK_ROWS` rows, streamed.

Why not langchain-community's ``UnstructuredExcelLoader``: it needs the unstructured stack and renders a whole
sheet as one HTML table in memory. Here openpyxl streams each sheet in read-only mode, one block of rows at a
time, and the rows become the same table Documents as CSV (`loaders.csv.table_blocks`): the sheet's first non-empty
row is the header, repeated atop every block; metadata ``sheet`` (its name), ``row_start``/``row_end`` (row
numbers as Excel shows them), ``start_index`` (offset in the sheet's blocks joined by newlines) and the workbook's
core properties that are set: ``title``, ``author``, ``created``, ``modified`` (`loaders.properties`).

What a cell shows:

- the value Excel saved: the result of a formula, not the formula. A file written by a script and never opened in
  Excel has formulas without saved results; they come out empty, and each sheet with some is reported once;
- dates and times in ISO 8601; numbers to Excel's 15 significant digits, integers without ``.0``; number formats
  (percent, currency, thousands separators) are not applied;
- a merged range shows its top-left value in each of its cells, within the table's columns.

Hidden sheets are read: they are the file's content (often the data a visible summary is computed from), and a
search over the file should find it. Chart sheets have no cells. A sheet that cannot be read is skipped and handed
to ``options.on_page_error`` as a `LoadError` whose ``page`` is its tab position (default: a logged warning); blocks
of it yielded before the failure stay.

Memory is one block of rows, plus what openpyxl holds: the workbook's table of distinct strings, whole, and an
emptied XML element for each row read so far (about 80 bytes: 16 MB for 200,000 rows).
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

import openpyxl
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from openpyxl.utils.cell import range_boundaries
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from loaders.archive import open_zip
from loaders.errors import LoadError, nothing_read, reason
from loaders.options import ReadOptions
from loaders.properties import properties
from loaders.source import AnyPath
from loaders.tables import BLOCK_ROWS, Merge, sheet_rows, table_blocks

logger = logging.getLogger("loaders.xlsx")

_SCAN_BLOCK = 1 << 20


class XlsxFileLoader(BaseLoader):
    """A workbook as table Documents, sheet by sheet in tab order (see the module docstring).

    Raises `LoadError` for a file that is not a readable workbook (encrypted, legacy, corrupt: `open_zip` and
    openpyxl decide) and for a workbook with no data.

    Usage (a LangChain document loader: any str or path-like)::

        docs = XlsxFileLoader("sales.xlsx").load()
        for block in XlsxFileLoader("sales.xlsx").lazy_load():
            print(block.metadata["sheet"], block.metadata["row_start"], block.metadata["row_end"])
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None, *, block_rows: int = BLOCK_ROWS) -> None:
        self.path = Path(path)
        self.block_rows = block_rows
        self.on_page_error = (options.on_page_error if options else None) or self._log_page_error

    def lazy_load(self) -> Iterator[Document]:
        with open_zip(self.path, "Excel") as archive:
            workbook = _open_workbook(self.path)
            try:
                yield from self._sheets(archive, workbook)
            finally:
                workbook.close()

    def _sheets(self, archive: zipfile.ZipFile, workbook: Workbook) -> Iterator[Document]:
        failed: LoadError | None = None
        emitted = False
        core = workbook.properties
        own = properties(title=core.title, author=core.creator, created=core.created, modified=core.modified)
        for number, name in enumerate(workbook.sheetnames, 1):
            sheet = workbook[name]
            if not isinstance(sheet, ReadOnlyWorksheet):
                continue  # a chart sheet
            some, failure = yield from self._sheet(archive, sheet, number, own)
            emitted = emitted or some
            if failure is not None:
                failed = failure
                self.on_page_error(failure)
        if not emitted:
            raise nothing_read(failed, "sheet", "no data in the Excel file")

    def _sheet(
        self, archive: zipfile.ZipFile, sheet: ReadOnlyWorksheet, number: int, own: dict[str, str]
    ) -> Generator[Document, None, tuple[bool, LoadError | None]]:
        """The sheet's blocks, with the workbook's properties ``own``; returns whether there were some, and why the
        sheet could not be read (or None).

        A damaged sheet (bad XML, bad CRC, ...) must not cost the others: its failure is returned, for the handler
        to be called outside the ``try`` (a handler that raises is the caller's decision, not a damaged sheet).
        """
        try:
            # openpyxl keeps a read-only sheet's part name in this attribute only (openpyxl is pinned); being
            # private, it is not in the stubs.
            xml = _scan_sheet_xml(archive, sheet._worksheet_path)  # type: ignore[attr-defined]
        except Exception as err:
            return False, _unreadable(sheet.title, number, err)
        if xml.unsaved_formulas:
            self.on_page_error(LoadError(_unsaved_message(sheet.title, xml.unsaved_formulas), page=number))
        # The declared size can be the whole grid (1,048,576 x 16,384): without it, each row is as wide as its last
        # cell and the sheet ends at its last row.
        sheet.reset_dimensions()
        # The stubs give ReadOnlyWorksheet Worksheet's iter_rows, whose self is a Worksheet: a stub error.
        rows = sheet_rows(sheet.iter_rows(values_only=True), xml.merges)  # type: ignore[misc]
        emitted = False
        try:
            for doc in table_blocks(rows, {"sheet": sheet.title, **own}, self.block_rows):
                emitted = True
                yield doc
        except Exception as err:
            return emitted, _unreadable(sheet.title, number, err)
        return emitted, None

    def _log_page_error(self, error: LoadError) -> None:
        logger.warning("%s (sheet %s): %s", self.path, error.page, error)


def _open_workbook(path: Path) -> Workbook:
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except OSError as err:
        if err.errno is not None:
            raise  # the file system's error: the caller reports those the same way for all formats
        raise LoadError(f"corrupt Excel file: {reason(err)}") from err  # "File contains no valid workbook part"
    except Exception as err:  # openpyxl raises many types (KeyError, ValueError, XML errors) on damaged files
        raise LoadError(f"corrupt Excel file: {reason(err)}") from err


def _unreadable(name: str, number: int, err: Exception) -> LoadError:
    return LoadError(f"unreadable sheet {name!r}: {reason(err)}", page=number)


def _unsaved_message(sheet: str, count: int) -> str:
    formulas = "1 formula has" if count == 1 else f"{count} formulas have"
    return f"sheet {sheet!r}: {formulas} no saved value (open and save the file in Excel to store them)"


# -- what openpyxl's read-only mode does not tell: merged ranges, formulas without a saved value -----------------


@dataclass(frozen=True)
class _SheetXml:
    merges: list[Merge]
    unsaved_formulas: int  # formula cells with no saved value


class _Patterns(NamedTuple):
    """The sheet XML patterns for one namespace prefix (Excel writes none; some generators write ``x:``)."""

    cell_start: bytes  # "<c", and any tag starting so: a formula cell holds none but its own start tag
    unsaved_formula: re.Pattern[bytes]  # <f> then no <v>, or an empty one, then </c>
    string_type: re.Pattern[bytes]  # t="str": the formula's saved result is text, and an empty <v> is ""
    merge_ref: re.Pattern[bytes]


def _scan_sheet_xml(archive: zipfile.ZipFile, part: str) -> _SheetXml:
    """Merged ranges and formulas without a saved value, from one pass over the raw bytes of the sheet's XML.

    openpyxl's read-only sheets report neither: ``<mergeCells>`` comes after all the rows (too late for streaming
    them), and a formula with no saved ``<v>`` comes out None like an empty cell. Regular expressions over the
    bytes, a block at a time, cost about as much as inflating them (0.5 s for a 90 MB sheet that openpyxl
    parses in 30 s). Reading the whole part first also finds a damaged one (bad CRC) before any row is yielded.
    """
    merges: list[Merge] = []
    unsaved = 0
    with archive.open(part) as stream:
        data = stream.read(_SCAN_BLOCK)
        patterns = _patterns(_prefix(data))
        while True:
            more = stream.read(_SCAN_BLOCK)
            cut = _safe_cut(data, patterns) if more else len(data)
            unsaved += _count_unsaved(data, cut, patterns)
            merges += _merge_ranges(data, cut, patterns)
            if not more:
                return _SheetXml(merges, unsaved)
            data = data[cut:] + more


def _prefix(head: bytes) -> bytes:
    root = re.search(rb"<([A-Za-z_][\w.-]*:)?worksheet\b", head)
    return (root.group(1) or b"") if root else b""


@cache
def _patterns(prefix: bytes) -> _Patterns:
    p = re.escape(prefix)
    return _Patterns(
        cell_start=b"<" + prefix + b"c",
        unsaved_formula=re.compile(
            rb"<%sf\b(?:[^>]*/>|[^>]*>[^<]*</%sf>)\s*(?:<%sv\s*/>|<%sv>\s*</%sv>)?\s*</%sc>" % ((p,) * 6)
        ),
        string_type=re.compile(rb"""\st\s*=\s*["']str["']"""),
        merge_ref=re.compile(rb"""<%smergeCell\s[^>]*?\bref\s*=\s*["']([A-Z]{1,3}[0-9]+:[A-Z]{1,3}[0-9]+)["']""" % p),
    )


def _safe_cut(data: bytes, patterns: _Patterns) -> int:
    """Where `data` can be cut with no match split: before its last tag starting ``<c``, else before its last tag
    (the data then holds one cell start at most, at 0, and no cell is near a block long)."""
    cut = data.rfind(patterns.cell_start)
    return cut if cut > 0 else max(data.rfind(b"<"), 0)


def _count_unsaved(data: bytes, end: int, patterns: _Patterns) -> int:
    count = 0
    for match in patterns.unsaved_formula.finditer(data, 0, end):
        cell = data.rfind(patterns.cell_start, 0, match.start())
        if not patterns.string_type.search(data, max(cell, 0), match.start()):
            count += 1
    return count


def _merge_ranges(data: bytes, end: int, patterns: _Patterns) -> list[Merge]:
    merges = []
    for match in patterns.merge_ref.finditer(data, 0, end):
        first, top, last, bottom = range_boundaries(match.group(1).decode("ascii"))
        if first is None or top is None or last is None or bottom is None:
            continue  # a whole row or column ("A:A"): never a merge Excel writes
        merges.append(Merge(top, bottom, first - 1, last))
    return merges
