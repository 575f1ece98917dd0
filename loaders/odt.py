"""OpenDocument text (.odt): the body in reading order, text grouped by heading, each table its own Document, then
the footnotes and endnotes; from ``content.xml`` (`loaders.odf`).

The Documents are those of `loaders.docx`: a heading (``text:h``, its ``text:outline-level``, 1 by default)
starts a Document, and the text under it carries the breadcrumb in ``metadata["section"]`` ("第一章 总则 >
第三条"); list items start with "- "; tables are Markdown tables (`loaders.tables.table_document`, first non-empty
row as the header, a merged cell's value in every position it covers) with the section they stand in; notes are
left out of their sentence and come last, as "[n] ..." lines with ``section`` "footnotes" (`loaders.docx`'s
label). Deleted text of tracked changes and comments are left out. Headers and footers live in ``styles.xml``
and are not read. ``start_index`` counts in all the Documents' texts joined by blank lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from lxml import etree

from loaders.docx import FOOTNOTES, LIST_PREFIX, SEPARATOR
from loaders.errors import LoadError
from loaders.odf import OFFICE, TABLE, TEXT, notes, paragraph_lines, read_content, t, table_rows
from loaders.options import ReadOptions
from loaders.source import AnyPath
from loaders.tables import table_document

_KIND = "OpenDocument text"
_MIMETYPE = "application/vnd.oasis.opendocument.text"
_H, _P, _LIST, _TABLE = t(TEXT, "h"), t(TEXT, "p"), t(TEXT, "list"), t(TABLE, "table")
_ITEMS = frozenset({t(TEXT, "list-item"), t(TEXT, "list-header")})
# Declarations and forms: no text of the document's own.
_SKIPPED = frozenset(
    {t(TEXT, "sequence-decls"), t(TEXT, "variable-decls"), t(TEXT, "tracked-changes"), t(OFFICE, "forms")}
)


class OdtFileLoader(BaseLoader):
    """An .odt file as Documents of text under one heading breadcrumb (``section``), tables and notes, each
    with ``start_index``. Raises `LoadError` for empty, encrypted, corrupt or text-less files.

    Usage (a LangChain document loader: any str or path-like)::

        docs = OdtFileLoader("规章.odt").load()
        for doc in OdtFileLoader("规章.odt").lazy_load():
            print(doc.metadata.get("section"), doc.page_content[:60])
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)  # `options` hold nothing for text documents: no pages to skip, no password, no pixels

    def lazy_load(self) -> Iterator[Document]:
        root = read_content(self.path, _MIMETYPE, _KIND)
        reader = _Reader()
        body = root.find(f"{{{OFFICE}}}body/{{{OFFICE}}}text")
        if body is not None:
            reader.container(body)
        reader.flush()
        reader.trail = []
        reader.lines = notes(root)
        reader.flush({"section": FOOTNOTES})
        if not reader.out:
            raise LoadError("no text in the OpenDocument text")
        offset = 0
        for doc in reader.out:
            doc.metadata["start_index"] = offset
            offset += len(doc.page_content) + len(SEPARATOR)
            yield doc


class _Reader:
    def __init__(self) -> None:
        self.trail: list[tuple[int, str]] = []  # the open headings: (level, text)
        self.lines: list[str] = []
        self.out: list[Document] = []

    def container(self, element: etree._Element) -> None:
        """The blocks of a body, section, list item or other wrapper, in order."""
        for child in element:
            tag = child.tag
            if tag == _H:
                self._heading(child)
            elif tag == _P:
                self.lines.extend(paragraph_lines(child))
            elif tag == _LIST:
                self._list(child)
            elif tag == _TABLE:
                self._table(child)
            elif isinstance(tag, str) and tag not in _SKIPPED:
                self.container(child)  # text:section, the table of contents' index body, ...

    def _heading(self, h: etree._Element) -> None:
        lines = paragraph_lines(h)
        if not lines:
            return
        try:
            level = int(h.get(t(TEXT, "outline-level"), "1"))
        except ValueError:
            level = 1
        self.flush()
        while self.trail and self.trail[-1][0] >= level:
            self.trail.pop()
        self.trail.append((level, " ".join(lines)))
        self.lines.extend(lines)

    def _list(self, element: etree._Element) -> None:
        for item in element:
            if item.tag not in _ITEMS:
                continue
            start = len(self.lines)
            self.container(item)
            if len(self.lines) > start:
                self.lines[start] = LIST_PREFIX + self.lines[start]

    def _table(self, table: etree._Element) -> None:
        rows = table_rows(table)
        if not rows:
            return
        self.flush()
        self.out.append(table_document(rows[0], rows[1:], self._section()))

    def flush(self, metadata: dict[str, str] | None = None) -> None:
        if self.lines:
            text = "\n".join(self.lines)
            self.out.append(Document(page_content=text, metadata=metadata if metadata else self._section()))
            self.lines = []

    def _section(self) -> dict[str, str]:
        return {"section": " > ".join(text for _, text in self.trail)} if self.trail else {}
