"""Word 97-2003 (.doc): the text by headings, tables as their own Documents, through Debian's ``antiword``.

antiword writes the document as DocBook XML (``-x db``), which keeps what the heading styles and tables mean:
``chapter``/``sect1``..``sect5`` with their ``title`` (Word's "Heading 1".."Heading 6"), ``para``,
``informaltable`` rows, list items. The Documents are those of `loaders.docx`: text grouped under its heading
breadcrumb in ``metadata["section"]`` ("第一章 总则 > 第三条"), each table a Markdown table
(`loaders.tables.table_document`, first row as the header) with the section it stands in, ``start_index``
counted in all the Documents' texts joined by blank lines. antiword's "[pic]" placeholders are left out.

Files named .doc that are not Word 97 binaries are common (Word, WPS and web sites save RTF or HTML so): RTF is
read as RTF (`loaders.rtf`); a .docx, an HTML page or a WordPerfect file gets a cause saying what it is.
Word 6/95 files, which antiword reads poorly, come out as it reads them. An encrypted file, an empty one and a
damaged one each get their own cause; antiword missing, one line naming the Debian package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from lxml import etree

from loaders import external
from loaders.errors import LoadError, one_line
from loaders.options import ReadOptions
from loaders.rtf import RTF_MAGIC, RtfFileLoader
from loaders.source import AnyPath
from loaders.tables import table_document

SEPARATOR = "\n\n"  # between two Documents in the text that ``start_index`` counts in
LIST_PREFIX = "- "

_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SECTIONS = frozenset({"chapter", "sect1", "sect2", "sect3", "sect4", "sect5", "section", "appendix"})
_TABLES = frozenset({"informaltable", "table"})
_LISTS = frozenset({"itemizedlist", "orderedlist"})
_PICTURE = "[pic]"
_ENCRYPTED = "encrypted Word file: remove the password (save a copy without one)"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")
# No DTD is loaded (antiword names DocBook's on the web), no entity expanded, nothing fetched.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True, huge_tree=True)


class DocFileLoader(BaseLoader):
    """A .doc file as Documents of text under one heading breadcrumb (``section``) and tables, each with
    ``start_index``. Raises `LoadError` for an empty, encrypted, damaged or text-less file.

    Usage (a LangChain document loader: any str or path-like)::

        docs = DocFileLoader("规章.doc").load()
        for doc in DocFileLoader("规章.doc").lazy_load():
            print(doc.metadata.get("section"), doc.page_content[:60])
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)
        self.options = options or ReadOptions()

    def lazy_load(self) -> Iterator[Document]:
        with self.path.open("rb") as stream:
            head = stream.read(512)
        if not head.strip():
            raise LoadError("empty file")
        if head.lstrip().startswith(RTF_MAGIC):
            yield from RtfFileLoader(self.path, self.options).lazy_load()
            return
        if not head.startswith(_CFB_MAGIC):
            raise LoadError(_not_word(head))
        result = external.run("antiword", "antiword", ["-x", "db"], self.path)
        if result.returncode != 0:
            raise LoadError(_failure(result.stderr, self.path))
        docs = _Reader().documents(etree.fromstring(result.stdout, _PARSER) if result.stdout.strip() else None)
        if not docs:
            raise LoadError("no text in the Word document")
        offset = 0
        for doc in docs:
            doc.metadata["start_index"] = offset
            offset += len(doc.page_content) + len(SEPARATOR)
            yield doc


class _Reader:
    """One pass over antiword's DocBook: text Documents per breadcrumb, tables where they stand."""

    def __init__(self) -> None:
        self.trail: list[str] = []
        self.lines: list[str] = []
        self.out: list[Document] = []

    def documents(self, root: etree._Element | None) -> list[Document]:
        if root is not None:
            self._children(root)
        self._flush()
        return self.out

    def _children(self, element: etree._Element, skip: etree._Element | None = None) -> None:
        for child in element:
            tag = child.tag
            if child is skip:
                continue
            if not isinstance(tag, str) or tag == "bookinfo":  # comments, processing instructions; the author
                continue
            if tag in _SECTIONS:
                self._section(child)
            elif tag in _TABLES:
                self._table(child)
            elif tag in _LISTS:
                for item in child.iter("listitem"):
                    text = _text(item)
                    if text:
                        self.lines.append(LIST_PREFIX + text)
            elif tag in ("para", "title", "simpara", "literallayout", "programlisting", "blockquote", "note"):
                self.lines.extend(_lines(child))
            else:
                self._children(child)

    def _section(self, section: etree._Element) -> None:
        title = section.find("title")
        heading = _text(title) if title is not None else ""
        self._flush()
        if heading:
            self.trail.append(heading)
            self.lines.append(heading)
        self._children(section, skip=title)
        self._flush()
        if heading:
            self.trail.pop()

    def _table(self, table: etree._Element) -> None:
        rows = [[_text(entry) for entry in row.iter("entry")] for row in table.iter("row")]
        rows = [row for row in rows if any(row)]
        if not rows:
            return
        self._flush()
        width = max(map(len, rows))
        rows = [row + [""] * (width - len(row)) for row in rows]
        self.out.append(table_document(rows[0], rows[1:], self._metadata()))

    def _flush(self) -> None:
        if self.lines:
            self.out.append(Document(page_content="\n".join(self.lines), metadata=self._metadata()))
            self.lines = []

    def _metadata(self) -> dict[str, str]:
        return {"section": " > ".join(self.trail)} if self.trail else {}


def _lines(element: etree._Element) -> list[str]:
    text = "".join(cast("Iterator[str]", element.itertext()))  # lxml-stubs say str or bytes: parsed XML gives str
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [line for line in lines if line and line != _PICTURE]


def _text(element: etree._Element) -> str:
    return " ".join(_lines(element))


def _not_word(head: bytes) -> str:
    """What a file named .doc that is no Word 97 binary is, from its first bytes."""
    if head.startswith(b"PK"):
        return "not a Word 97-2003 file: it is a zip archive (a .docx? rename it to .docx)"
    if head.startswith(b"\xffWPC"):
        return "a WordPerfect file, not a Word file: save it as .docx"
    lower = head.lstrip().lower()
    if lower.startswith((b"<html", b"<!doctype html", b"mime-version", b"<?xml")):
        return "not a Word 97-2003 file: it is a web page or XML (save it as .docx, or rename an HTML page to .html)"
    return "corrupt Word file: not an OLE compound file"


def _failure(stderr: bytes, path: Path) -> str:
    message = one_line(stderr.decode("utf-8", errors="replace"))
    if "Encrypted documents are not supported" in message or _encrypted_package(path):
        return _ENCRYPTED
    if "Excel spreadsheet" in message:
        return "not a Word file: it is an Excel workbook (rename it to .xls)"
    if "not a Word Document" in message or "does not contain a Word document" in message:
        return "corrupt Word file: no Word document inside the OLE file"
    return f"corrupt Word file: antiword says {message or 'nothing'}"


def _encrypted_package(path: Path) -> bool:
    """An encrypted .docx is an OLE file holding the encrypted package, named by its ``EncryptionInfo`` stream."""
    with path.open("rb") as stream:
        return _ENCRYPTION_INFO in stream.read(1 << 20)
