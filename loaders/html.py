"""HTML: the text a reader sees — title first, one block element per line, whitespace collapsed — with each data
table a Document of its own (Markdown, see :mod:`loaders.tables`) between the Documents of the text around it.

A data table has at least two rows and two columns, counted after colspan and rowspan and without empty rows.
Others (one row or one column, or ``role="presentation"``) lay out a page rather than hold data: they stay in the
text as other blocks do, the cells of a row joined by " | ". In a data table the first row is the header; a cell
spanning columns or rows repeats its text in each; a table nested in a cell is flattened into that cell's text;
text in no cell (its caption) is the last line of the text before it.

Why not langchain-community's ``BSHTMLLoader``: its ``get_text()`` keeps script and style bodies, runs the text
of adjacent blocks together and needs lxml. This walks BeautifulSoup's tree with the builtin "html.parser".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup
from bs4.dammit import EncodingDetector
from bs4.element import NavigableString, PageElement, PreformattedString, Tag
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.errors import LoadError
from loaders.source import AnyPath
from loaders.tables import table_document
from loaders.text import decode_bytes

# Never shown. <title> is taken separately (as the first line). The parser does not close a missing </head>
# (the body then nests inside it), so <head> is not skipped as a whole: its metadata tags are.
_INVISIBLE = frozenset(
    {"script", "style", "noscript", "template", "title", "meta", "link", "base", "svg", "canvas", "iframe"}
)
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hgroup", "hr", "html", "legend", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
        "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_CELLS = frozenset({"td", "th"})
_LINE, _CELL = "\n", "\t"  # markers; source whitespace is turned into spaces first, so they cannot be confused
_SPACES = re.compile(r"\s+")
# Browsers read these labels as supersets (WHATWG Encoding): GB2312 pages are GBK, and GBK is a subset of
# GB18030; "ISO-8859-1" pages are windows-1252; a UTF-16 label without a BOM is read as UTF-8.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "utf-16": "utf-8",
    "utf-16le": "utf-8",
    "utf-16be": "utf-8",
}
_PRESCAN = 4096  # where a <meta charset> may be declared (browsers look at the first 1024 bytes)
_SPAN = re.compile(r"\s*(\d+)")  # browsers read colspan="2px" as 2
_MAX_COLSPAN, _MAX_ROWSPAN = 1000, 65534  # browsers' caps
_LAYOUT_ROLES = frozenset({"presentation", "none"})


class HtmlFileLoader(BaseLoader):
    """An HTML file as Documents in reading order: its visible text, with each data table a Document of its own.

    ``start_index`` is where a Document's text starts in ``visible_text`` of the page: the Documents' texts joined
    by newlines, the title first. Charset: a byte-order mark, else the page's ``<meta charset>``, else UTF-8, else
    GB18030. Raises `LoadError` for an empty file and for a page without visible text.

    Usage (a LangChain document loader: any str or path-like)::

        docs = HtmlFileLoader("site/index.html").load()
        title = docs[0].page_content.splitlines()[0]
    """

    def __init__(self, path: AnyPath) -> None:
        self.path = Path(path)

    def lazy_load(self) -> Iterator[Document]:
        data = self.path.read_bytes()
        declared = EncodingDetector.find_declared_encoding(data[:_PRESCAN], is_html=True)
        markup = decode_bytes(data, declared=_CHARSET_ALIASES.get(declared or "", declared))
        if not markup.strip():
            raise LoadError("empty file")
        docs = page_documents(BeautifulSoup(markup, "html.parser"))
        if not docs:
            raise LoadError("no visible text in the HTML")
        yield from docs


def visible_text(soup: BeautifulSoup) -> str:
    """The title, then the visible text: one line per block element, data tables as Markdown, the cells of other
    tables joined by " | "."""
    return "\n".join(doc.page_content for doc in page_documents(soup))


def page_documents(soup: BeautifulSoup) -> list[Document]:
    """The page in reading order: Documents of text, and between them one per data table (a `table_document`).

    Each has ``start_index``: where its text starts in the texts of all of them joined by newlines."""
    docs = []
    offset = 0
    for block in _blocks(soup):
        metadata = {"start_index": offset}
        if isinstance(block, str):
            docs.append(Document(page_content=block, metadata=metadata))
        else:  # a data table's rows, the first its header
            docs.append(table_document(block[0], block[1:], metadata))
        offset += len(docs[-1].page_content) + 1
    return docs


@dataclass(frozen=True)
class _Table:
    """A table as read, its text not joined yet: a table nested in a cell is joined with the text of the data
    table that shows it, so that each text is joined once however deep tables nest."""

    outside: list[str | _Table]  # its text in no cell (its caption)
    cells: list[list[str | _Table]]  # the text of each cell, in reading order
    grid: list[list[int | None]]  # rows of cell numbers: spans repeated, holes None, rows of empty cells left out
    layout: bool
    filled: bool  # it has some text


def _blocks(soup: BeautifulSoup) -> Iterator[str | list[list[str]]]:
    """The text between data tables (its lines joined; the title is its first line), and the data tables' rows."""
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    lines = [title] if title else []
    parts: list[str] = []
    for part in _walk(soup):
        if isinstance(part, str):
            parts.append(part)
            continue
        lines += _lines(parts)
        if lines:
            yield "\n".join(lines)
        lines, parts = [], []
        yield part
    lines += _lines(parts)
    if lines:
        yield "\n".join(lines)


def _walk(soup: BeautifulSoup) -> list[str | list[list[str]]]:
    """The visible text with line and cell markers, and in their places the rows of the data tables."""
    tables = _read_tables(soup)
    parts: list[str | list[list[str]]] = []
    # An explicit stack, not recursion: broken pages can nest thousands of unclosed tags.
    stack: list[PageElement | str] = [soup]
    while stack:
        node = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctype, CDATA, processing instructions
                parts.append(_SPACES.sub(" ", node))
        elif isinstance(node, Tag):
            if _skipped(node):
                continue
            if node.name == "br":
                parts.append(_LINE)
            elif node.name == "pre":  # keep its line breaks
                parts.extend((_LINE, node.get_text().replace(_CELL, " "), _LINE))
            elif node.name == "table" and not (table := tables[id(node)]).layout:
                parts.extend((_LINE, _text(table.outside), _LINE, _rows(table)))
            else:
                if node.name in _CELLS:
                    parts.append(_CELL)
                edge = _LINE if node.name in _BLOCKS else ""
                parts.append(edge)
                stack.append(edge)
                stack.extend(reversed(node.contents))
        elif isinstance(node, str):  # a marker pushed above, due after the element's children
            parts.append(node)
    return parts


def _lines(parts: list[str]) -> list[str]:
    """Text with markers as its lines: cells joined by " | ", empty lines left out."""
    lines = []
    for line in "".join(parts).split(_LINE):
        cells = (" ".join(cell.split()) for cell in line.split(_CELL))
        if joined := " | ".join(cell for cell in cells if cell):
            lines.append(joined)
    return lines


def _read_tables(soup: BeautifulSoup) -> dict[int, _Table]:
    """Every table of the page by ``id`` of its tag, innermost first: a table's walk stops at the tables nested in
    it and refers to them, so each node is read once however deep tables nest."""
    tables: dict[int, _Table] = {}
    for tag in reversed(soup.find_all("table")):  # an inner table comes after the one enclosing it
        tables[id(tag)] = _read_table(tag, tables)
    return tables


def _read_table(table: Tag, inner: dict[int, _Table]) -> _Table:
    """One table, in document order: a ``tr`` starts a row and a ``td``/``th`` a cell wherever they are, as
    html.parser nests the cells and rows of optional end tags (``<td>a<td>b``) instead of closing them."""
    outside: list[str | _Table] = []
    cells: list[list[str | _Table]] = []
    tags: list[Tag] = []  # of each cell
    rows: list[list[int]] = []  # the numbers of each row's cells
    stack: list[PageElement | str] = list(reversed(table.contents))
    while stack:
        node = stack.pop()
        into = cells[rows[-1][-1]] if rows and rows[-1] else outside
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):
                into.append(node)
        elif isinstance(node, Tag):
            if _skipped(node):
                continue
            if node.name == "table":
                into += (" ", inner[id(node)], " ")
                continue
            if node.name == "tr":
                rows.append([])
            elif node.name in _CELLS:
                if not rows:
                    rows.append([])
                rows[-1].append(len(cells))
                cells.append([])
                tags.append(node)
            elif node.name in _BLOCKS or node.name == "br":
                into.append(" ")
                stack.append(" ")
            stack.extend(reversed(node.contents))
        elif isinstance(node, str):  # the space due after a block's children
            into.append(node)
    grid = _grid(rows, tags, [any(map(_has_text, cell)) for cell in cells])
    layout = len(grid) < 2 or max(map(len, grid)) < 2 or str(table.get("role") or "").lower() in _LAYOUT_ROLES
    return _Table(outside, cells, grid, layout, filled=bool(grid) or any(map(_has_text, outside)))


def _grid(rows: list[list[int]], tags: list[Tag], filled: list[bool]) -> list[list[int | None]]:
    """Rows of cell numbers, each spanning cell's in every column and row it spans; rows of empty cells left out."""
    grid = []
    below: dict[int, tuple[int, int]] = {}  # column -> the cell above spanning into it, rows still to go
    for row in rows:
        line: list[int | None] = []
        for cell in row:
            while len(line) in below:
                _fill(line, below)
            rowspan = _span(tags[cell], "rowspan", _MAX_ROWSPAN)
            for _ in range(_span(tags[cell], "colspan", _MAX_COLSPAN)):
                below.pop(len(line), None)  # overlapping spans (a broken table): the later cell wins
                if rowspan > 1:
                    below[len(line)] = (cell, rowspan - 1)
                line.append(cell)
        while below and max(below) >= len(line):  # spans from above at the end of the row, holes before them
            if len(line) in below:
                _fill(line, below)
            else:
                line.append(None)
        if any(cell is not None and filled[cell] for cell in line):
            grid.append(line)
    return grid


def _fill(line: list[int | None], below: dict[int, tuple[int, int]]) -> None:
    """The next column of ``line``: the cell above that spans into it."""
    cell, rows = below.pop(len(line))
    if rows > 1:
        below[len(line)] = (cell, rows - 1)
    line.append(cell)


def _rows(table: _Table) -> list[list[str]]:
    """A data table's rows of cell texts, each as wide as the widest (so no cell is cut off under the header)."""
    texts = [_text(cell) for cell in table.cells]
    width = max(map(len, table.grid))
    return [[texts[c] if c is not None else "" for c in row] + [""] * (width - len(row)) for row in table.grid]


def _text(parts: list[str | _Table]) -> str:
    """Text on one line, the tables in it flattened: their text outside cells, then each cell's, in order."""
    out: list[str] = []
    stack = parts[::-1]
    while stack:
        part = stack.pop()
        if isinstance(part, str):
            out.append(part)
            continue
        for cell in reversed(part.cells):
            stack += [" ", *reversed(cell)]
        stack += [" ", *reversed(part.outside)]
    return " ".join("".join(out).split())


def _has_text(part: str | _Table) -> bool:
    return part.filled if isinstance(part, _Table) else bool(part) and not part.isspace()


def _span(cell: Tag, name: str, cap: int) -> int:
    """A cell's colspan or rowspan: its leading digits, from 1 to ``cap`` (rowspan="0" counts as 1)."""
    match = _SPAN.match(str(cell.get(name) or ""))
    return min(max(int(match[1]), 1), cap) if match else 1


def _skipped(tag: Tag) -> bool:
    return tag.name in _INVISIBLE or _hidden(tag)


def _hidden(tag: Tag) -> bool:
    style = str(tag.get("style") or "").replace(" ", "").lower()
    return tag.has_attr("hidden") or "display:none" in style
