"""HTML: the text a reader sees — title first, one block element per line, whitespace collapsed.

Why not langchain-community's ``BSHTMLLoader``: its ``get_text()`` keeps script and style bodies, runs the text
of adjacent blocks together and needs lxml. This walks BeautifulSoup's tree with the builtin "html.parser".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from bs4 import BeautifulSoup
from bs4.dammit import EncodingDetector
from bs4.element import NavigableString, PageElement, PreformattedString, Tag
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.errors import LoadError
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


class HtmlFileLoader(BaseLoader):
    """An HTML file as one Document of its visible text (metadata ``start_index``: 0).

    Charset: a byte-order mark, else the page's ``<meta charset>``, else UTF-8, else GB18030. Raises `LoadError`
    for an empty file and for a page without visible text.

    Usage::

        doc = next(HtmlFileLoader(Path("site/index.html")).lazy_load())
        title = doc.page_content.splitlines()[0]
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        data = self.path.read_bytes()
        declared = EncodingDetector.find_declared_encoding(data[:_PRESCAN], is_html=True)
        markup = decode_bytes(data, declared=_CHARSET_ALIASES.get(declared or "", declared))
        if not markup.strip():
            raise LoadError("empty file")
        text = visible_text(BeautifulSoup(markup, "html.parser"))
        if not text:
            raise LoadError("no visible text in the HTML")
        yield Document(page_content=text, metadata={"start_index": 0})


def visible_text(soup: BeautifulSoup) -> str:
    """The title, then the visible text: one line per block element, table cells joined by " | "."""
    parts: list[str] = []
    # An explicit stack, not recursion: broken pages can nest thousands of unclosed tags.
    stack: list[PageElement | str] = [soup]
    while stack:
        node = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctype, CDATA, processing instructions
                parts.append(_SPACES.sub(" ", node))
        elif isinstance(node, Tag):
            if node.name in _INVISIBLE or _hidden(node):
                continue
            if node.name == "br":
                parts.append(_LINE)
            elif node.name == "pre":  # keep its line breaks
                parts.extend((_LINE, node.get_text().replace(_CELL, " "), _LINE))
            else:
                if node.name in _CELLS:
                    parts.append(_CELL)
                edge = _LINE if node.name in _BLOCKS else ""
                parts.append(edge)
                stack.append(edge)
                stack.extend(reversed(node.contents))
        else:  # a marker pushed above, due after the element's children
            parts.append(node)
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    lines = [title] if title else []
    for line in "".join(parts).split(_LINE):
        cells = (" ".join(cell.split()) for cell in line.split(_CELL))
        if joined := " | ".join(cell for cell in cells if cell):
            lines.append(joined)
    return "\n".join(lines)


def _hidden(tag: Tag) -> bool:
    style = str(tag.get("style") or "").replace(" ", "").lower()
    return tag.has_attr("hidden") or "display:none" in style
