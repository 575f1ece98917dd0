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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.errors import LoadError, reason
from loaders.options import ReadOptions
from loaders.source import AnyPath
from loaders.tables import BLOCK_ROWS, TableRow, table_blocks
from loaders.text import BLOCK_SIZE, choose_encoding

#: The longest line read: a file with no line ends (a dump, a binary file) must not be held whole in memory.
MAX_LINE = 32 << 20
_DELIMITER_SAMPLE = 64 << 10  # where the first line of a .csv is looked for


class CsvFileLoader(BaseLoader):
    """A .csv or .tsv file as table Documents of up to `block_rows` rows, with ``row_start``, ``row_end`` and
    ``start_index`` (see `table_blocks`).

    The delimiter is a tab for .tsv; for .csv a comma, or a semicolon when the first line has more semicolons than
    commas (Excel in European locales saves CSV that way). Raises `LoadError` for an empty file, for bytes that do
    not decode (possibly after earlier Documents were yielded, as for text files) and for malformed CSV.

    Usage (a LangChain document loader: any str or path-like)::

        docs = CsvFileLoader("orders.csv").load()
        for block in CsvFileLoader("orders.csv").lazy_load():
            print(block.metadata["row_start"], block.metadata["row_end"])
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None, *, block_rows: int = BLOCK_ROWS) -> None:
        self.path = Path(path)  # `options` is the registry's signature: a CSV has no pages to skip, no password, no OCR
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
        raise LoadError(f"malformed CSV after row {number}: {reason(err)}") from err
