"""CSV and TSV: the file streamed as Markdown table Documents of up to `BLOCK_ROWS` rows, each repeating the header.

Why not langchain-community's ``CSVLoader``: it makes one Document per row, each cell a ``column: value`` line with
no table around it, and reads the whole file into memory; it also takes the encoding on trust. Here the bytes are
decoded by the text loader's rules (`loaders.text.choose_encoding`: a byte-order mark, else UTF-8, else GB18030,
which is what Excel saves on Chinese Windows), parsed by the standard ``csv`` module as they stream, and rendered
like the sheets of a workbook: `table_blocks` below is shared with `loaders.xlsx`.

Rows are numbered as a spreadsheet shows them: the first record is row 1, a blank line is an empty row. That is the
file's line number unless a quoted field spans lines.
"""

from __future__ import annotations

import codecs
import csv  # the standard library's: imports are absolute, so this module's own name does not shadow it
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.errors import LoadError, one_line
from loaders.options import ReadOptions
from loaders.tables import table_document
from loaders.text import BLOCK_SIZE, choose_encoding

#: Data rows per Document: a block of a 200,000-row table is rendered and handed on while the next is read.
BLOCK_ROWS = 500
#: A run of more empty rows than this ends a block (tables stacked on one sheet); shorter runs are spacing inside
#: a table and stay in it as empty lines, so that row i of a block is row ``row_start + i``.
MAX_GAP = 2
#: The longest line read: a file with no line ends (a dump, a binary file) must not be held whole in memory.
MAX_LINE = 32 << 20
_DELIMITER_SAMPLE = 64 << 10  # where the first line of a .csv is looked for

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


class CsvFileLoader(BaseLoader):
    """A .csv or .tsv file as table Documents of up to `block_rows` rows, with ``row_start``, ``row_end`` and
    ``start_index`` (see `table_blocks`).

    The delimiter is a tab for .tsv; for .csv a comma, or a semicolon when the first line has more semicolons than
    commas (Excel in European locales saves CSV that way). Raises `LoadError` for an empty file, for bytes that do
    not decode (possibly after earlier Documents were yielded, as for text files) and for malformed CSV.

    Usage::

        for block in CsvFileLoader(Path("orders.csv"), ReadOptions()).lazy_load():
            print(block.metadata["row_start"], block.metadata["row_end"])
    """

    def __init__(self, path: Path, options: ReadOptions | None = None, *, block_rows: int = BLOCK_ROWS) -> None:
        self.path = path  # `options` is the registry's signature: a CSV has no pages to skip, no password, no OCR
        self.block_rows = block_rows

    def lazy_load(self) -> Iterator[Document]:
        empty = True
        with self.path.open("rb") as stream:
            head = stream.read(BLOCK_SIZE)
            codec, bom = choose_encoding(head, complete=len(head) < BLOCK_SIZE)
            delimiter = self._delimiter(head[bom : bom + _DELIMITER_SAMPLE].decode(codec, errors="ignore"))
            stream.seek(bom)
            for doc in table_blocks(_records(_lines(stream, codec), delimiter), {}, self.block_rows):
                empty = False
                yield doc
        if empty:
            raise LoadError("empty file")

    def _delimiter(self, sample: str) -> str:
        if self.path.suffix.lower() == ".tsv":
            return "\t"
        first_line = next((line for line in sample.splitlines() if line.strip()), "")
        return ";" if first_line.count(";") > first_line.count(",") else ","


def _lines(stream: BinaryIO, codec: str) -> Iterator[str]:
    """The lines of `stream` from where it stands, decoded with `codec` a block at a time, their ends kept (the
    ``csv`` module wants them); raises `LoadError` for undecodable bytes, as the text loader does."""
    decoder = codecs.getincrementaldecoder(codec)()
    position, carry = stream.tell(), ""
    while True:
        raw = stream.read(BLOCK_SIZE)
        try:
            text = carry + decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as err:
            label = codecs.lookup(codec).name.upper()
            raise LoadError(f"not valid {label} text (undecodable bytes near byte {position + err.start})") from err
        if not raw:
            if text:
                yield text
            return
        # Only "\n" ends a line: str.splitlines would also cut at characters a field may hold (U+2028, \x1c).
        *lines, carry = text.split("\n")
        yield from (line + "\n" for line in lines)
        position += len(raw)
        if len(carry) > MAX_LINE:
            raise LoadError(f"malformed CSV: a line longer than {MAX_LINE >> 20} MiB (near byte {position})")


def _records(lines: Iterable[str], delimiter: str) -> Iterator[TableRow]:
    """The records in `lines`, numbered from 1; raises `LoadError` for malformed CSV."""
    number = 0
    try:
        for number, record in enumerate(csv.reader(lines, delimiter=delimiter), 1):
            yield TableRow(number, [cell.strip() for cell in record])
    except csv.Error as err:  # an unterminated quote that swallows the file hits the field size limit
        raise LoadError(f"malformed CSV after row {number}: {one_line(str(err))}") from err
