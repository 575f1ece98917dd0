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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
