"""Tables as Markdown that the chunker keeps whole: one chunk if it fits, else pieces of whole rows, each piece
starting with the header again (so a retrieved piece of row 180 still says what its columns are).

The contract with :mod:`loaders.chunking`: a table Document's text is its header lines (the header row and the
``|---|`` rule), then one line per row; ``metadata[TABLE_HEADER]`` holds those header lines. When the metadata has
``row_start`` (the number of the table's first row in its file or sheet), each piece gets ``row_start`` and
``row_end`` of the rows it holds. DOCX, PPTX, XLSX, CSV and HTML all build their tables here.

>>> doc = table_document(["名称", "数量"], [["苹果", "3"], ["梨 | 小", "5"]], {"row_start": 2})
>>> print(doc.page_content)
| 名称 | 数量 |
| --- | --- |
| 苹果 | 3 |
| 梨 \\| 小 | 5 |
>>> doc.metadata[TABLE_HEADER]
'| 名称 | 数量 |\\n| --- | --- |'
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from langchain_core.documents import Document

#: Metadata key of a table Document: its header lines, repeated atop every piece. The chunker removes it.
TABLE_HEADER = "table_header"


def cell_text(value: object) -> str:
    """A cell as one line of Markdown: None is empty, whitespace (newlines too) collapses, ``|`` is escaped."""
    if value is None:
        return ""
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(cell_text(c) for c in cells) + " |"


def table_document(
    header: Sequence[object], rows: Iterable[Sequence[object]], metadata: Mapping[str, Any] | None = None
) -> Document:
    """A table as one Document: the header row, the rule, then one line per row (rows are padded or cut to the
    header's width, so every line has the same columns)."""
    width = len(header)
    head = markdown_row(header) + "\n" + "| " + " | ".join("---" for _ in header) + " |"
    lines = [head]
    for row in rows:
        cells = list(row)[:width]
        lines.append(markdown_row(cells + [""] * (width - len(cells))))
    return Document(page_content="\n".join(lines), metadata={**(metadata or {}), TABLE_HEADER: head})


#: Data rows per Document: a block of a 200,000-row table is rendered and handed on while the next is read.
BLOCK_ROWS = 500
#: A run of more empty rows than this ends a block (tables stacked on one sheet); shorter runs are spacing inside
#: a table and stay in it as empty lines, so that row i of a block is row ``row_start + i``.
MAX_GAP = 2
#: A merged range over a row: ``(first, stop, value)``, 0-based columns ``first`` to ``stop - 1`` show ``value``.
Span = tuple[int, int, str]


@dataclass(slots=True)
class TableRow:
    """One row of a table: its 1-based number in its file or sheet, its cells as text, the merged ranges over it."""

    number: int
    cells: list[str]
    spans: tuple[Span, ...] = ()
    width: int = field(init=False)  # columns up to the last non-empty cell: merged ranges never widen a table

    def __post_init__(self) -> None:
        self.width = next((i + 1 for i in range(len(self.cells) - 1, -1, -1) if self.cells[i]), 0)

    def padded(self, width: int) -> list[str]:
        """Exactly ``width`` cells, the merged ranges filled in."""
        cells = self.cells[:width] + [""] * (width - len(self.cells))
        for first, stop, value in self.spans:
            if first < width:
                cells[first : min(stop, width)] = [value] * (min(stop, width) - first)
        return cells


def table_blocks(
    rows: Iterable[TableRow], metadata: Mapping[str, Any], block_rows: int = BLOCK_ROWS
) -> Iterator[Document]:
    """The table in `rows` as table Documents: the first non-empty row is the header, repeated atop each block of at
    most `block_rows` rows; empty rows before the header and after the last non-empty row are dropped.

    Each Document has `metadata` plus ``row_start`` and ``row_end`` (numbers of its first and last data row; the
    header's own number when it has none) and ``start_index``: the offset of its text in all the blocks' texts
    joined by newlines. Yields nothing when every row is empty. Only one block is held at a time.
    """
    header: TableRow | None = None
    block: list[TableRow] = []
    gap = 0  # empty rows since the last non-empty one
    offset = 0
    for row in rows:
        if not row.width:
            gap += 1
            continue
        if header is None:
            header = row
        else:
            if block and (gap > MAX_GAP or len(block) + gap >= block_rows):
                doc = _block_document(header, block, metadata, offset)
                offset += len(doc.page_content) + 1
                yield doc
                block = []
            if block:
                block.extend(TableRow(number, []) for number in range(row.number - gap, row.number))
            block.append(row)
        gap = 0
    if header is not None:
        yield _block_document(header, block, metadata, offset)


def _block_document(header: TableRow, rows: list[TableRow], metadata: Mapping[str, Any], offset: int) -> Document:
    width = max(row.width for row in (header, *rows))
    first, last = (rows[0], rows[-1]) if rows else (header, header)
    return table_document(
        header.padded(width),
        [row.padded(width) for row in rows],
        {**metadata, "row_start": first.number, "row_end": last.number, "start_index": offset},
    )


# -- spreadsheets: cell values as Excel shows them, merged ranges -----------------------------------------------


class Merge(NamedTuple):
    """A merged range: rows ``top`` to ``bottom`` (1-based, inclusive), columns ``first`` to ``stop - 1`` (0-based)."""

    top: int
    bottom: int
    first: int
    stop: int


def sheet_rows(values: Iterable[Sequence[object]], merges: list[Merge]) -> Iterator[TableRow]:
    """A sheet's rows (every row from 1 on, empty ones too) as text, with the merged ranges over each: a range's
    value is its top-left cell's, taken when its top row goes by. Shared by the openpyxl and calamine readers."""
    waiting = sorted(merges, reverse=True)  # by top row, the next to open last
    open_merges: list[tuple[Merge, str]] = []
    for number, row in enumerate(values, 1):
        cells = [value_text(value) for value in row]
        while waiting and waiting[-1].top <= number:
            merge = waiting.pop()
            open_merges.append((merge, cells[merge.first] if merge.first < len(cells) else ""))
        spans: tuple[Span, ...] = ()
        if open_merges:
            open_merges = [(merge, value) for merge, value in open_merges if merge.bottom >= number]
            spans = tuple((merge.first, merge.stop, value) for merge, value in open_merges if value)
        yield TableRow(number, cells, spans)


def value_text(value: object) -> str:
    """A cell's value as text, as Excel shows it in the General format, dates and times in ISO 8601.

    >>> [value_text(v) for v in (3.0, 0.1 + 0.2, True, datetime.datetime(2024, 5, 1), datetime.time(9, 30))]
    ['3', '0.3', 'TRUE', '2024-05-01', '09:30:00']
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        # Excel shows (and computes with) 15 significant digits: 0.1 + 0.2 is 0.3 there, and 3.0 is 3.
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".15g")
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time():
            return value.date().isoformat()
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    if isinstance(value, datetime.time):
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    if isinstance(value, datetime.timedelta):  # a duration format such as [h]:mm:ss
        return _duration(value)
    return str(value)  # int, date


def _duration(value: datetime.timedelta) -> str:
    seconds = round(value.total_seconds())
    hours, rest = divmod(abs(seconds), 3600)
    return f"{'-' if seconds < 0 else ''}{hours}:{rest // 60:02d}:{rest % 60:02d}"
