"""Word (.docx): the body in reading order — text grouped by heading, each table its own Document — then the
headers and footers once, then the footnotes and endnotes; read with python-docx.

Why not langchain-community's ``Docx2txtLoader``: it flattens the file to one string, so tables lose their
rows and columns, headings leave no trace in the metadata, and every section repeats its header and footer.

How the text is read, and why:

- Body blocks are walked in XML order, through content controls (``w:sdt``, ``w:customXml``), which
  python-docx's ``iter_inner_content()`` steps over: a table of contents or a form field lives in one.
- A paragraph's text is its ``w:t`` in order, inserted text (tracked changes) included, deleted and moved-away
  text left out, so the text is the document as it reads with its changes accepted. Text boxes are read as
  blocks right after the paragraph anchoring them; their VML fallback copy (``mc:Fallback``) is skipped.
- A heading is a paragraph whose style is named "Heading 1".."Heading 9" / "标题 1".."标题 9" (level 1..9) or
  "Title" / "标题" (level 0), else one with an outline level (``w:outlineLvl``), set on it or on its style.
  Headings build the breadcrumb in ``metadata["section"]`` ("第一章 总则 > 第三条"); each heading starts a new
  Document, and the paragraphs under it are one Document with that ``section``. Numbering that Word computes
  ("第一章" from a numbered heading style, "1." of a list) is not in the file's text and does not come out.
- List paragraphs (numbering on the paragraph or its style) start with "- ".
- Tables: `loaders.tables.table_document`, first non-empty row as the header; a merged cell's value fills
  every grid position it covers. The grid is walked here (linear, no recursion) rather than with python-docx's
  ``_Row.cells``, which looks up the cell above each vertically merged one recursively.
- After the body: the distinct texts of all sections' headers and footers, once per file, as one Document with
  ``section`` "headers and footers"; then the footnotes and the endnotes, as "[1] ..." lines in a Document
  each, ``section`` "footnotes" / "endnotes" (python-docx 1.2 has no API for them: their parts are parsed here).
  Neutral English labels, as the rest of the metadata; the body's own text decides the language of a chunk.

``start_index`` is the offset of a Document's text in the file's rendered text: all its Documents' texts, in
order, joined by blank lines. Every Document carries the file's core properties that are set: ``title``, ``author``,
``created``, ``modified`` (`loaders.properties`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docx
from docx.document import Document as WordDocument
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.part import Part, XmlPart
from docx.oxml.ns import qn
from docx.oxml.parser import parse_xml
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from lxml import etree

from loaders.archive import open_zip
from loaders.errors import LoadError, reason
from loaders.options import ReadOptions
from loaders.properties import properties
from loaders.source import AnyPath
from loaders.tables import table_document

HEADERS_AND_FOOTERS = "headers and footers"
FOOTNOTES = "footnotes"
ENDNOTES = "endnotes"
SEPARATOR = "\n\n"  # between two Documents in the rendered text that ``start_index`` counts in
LIST_PREFIX = "- "

_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_P, _TBL, _TR, _TC = qn("w:p"), qn("w:tbl"), qn("w:tr"), qn("w:tc")
_T, _TAB, _NB_HYPHEN, _TXBX = qn("w:t"), qn("w:tab"), qn("w:noBreakHyphen"), qn("w:txbxContent")
_BREAKS = frozenset({qn("w:br"), qn("w:cr")})
# Wrappers whose content is read as if it stood in their place: content controls, custom XML, smart tags.
_WRAPPERS = frozenset({qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml"), qn("w:smartTag")})
# Never read inside a paragraph: removed text (tracked changes), properties, text boxes (read as blocks, see
# `_text_boxes`) and the VML copy of a drawing that Word writes beside the DrawingML one.
_OPAQUE = frozenset({qn("w:del"), qn("w:moveFrom"), qn("w:pPr"), qn("w:rPr"), _TXBX, _MC_FALLBACK})
_HEADING_NAME = re.compile(r"(?:heading|标题)\s*([1-9])", re.IGNORECASE)
_TITLE_NAMES = frozenset({"title", "标题"})
_BODY_TEXT = 9  # the w:outlineLvl of body text; 0..8 are heading levels 1..9
_CONTENT_TYPES = "[Content_Types].xml"  # the first part of every Office file


class DocxFileLoader(BaseLoader):
    """A .docx file as Documents of text under one heading breadcrumb (``section``), tables, headers and
    footers, notes; each with ``start_index``. Raises `LoadError` for encrypted, legacy, corrupt or empty files.

    Usage (a LangChain document loader: any str or path-like)::

        docs = DocxFileLoader("规章.docx").load()
        for doc in DocxFileLoader("规章.docx").lazy_load():
            print(doc.metadata.get("section"), doc.page_content[:60])
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)  # `options` hold nothing for Word files: no pages to skip, no passwords, no pixels

    def lazy_load(self) -> Iterator[Document]:
        # The whole file is parsed up front anyway; building every Document before yielding the first keeps
        # the parser's exceptions (damaged files) in one place.
        yield from _with_offsets(self._documents())

    def _documents(self) -> list[Document]:
        with open_zip(self.path, "Word") as archive:  # refuses encrypted, legacy, corrupt and bomb files first
            if _CONTENT_TYPES not in archive.namelist():
                raise LoadError("not a Word file: a zip archive without a Word document in it")
        try:
            document = docx.Document(str(self.path))
            docs = _Reader(document).documents()
            own = _core_properties(document)
        except (LoadError, OSError):
            raise
        except ValueError as err:
            raise LoadError(_wrong_kind(str(err)) or f"corrupt Word file: {reason(err)}") from err
        except Exception as err:  # python-docx, lxml and zipfile raise many types on damaged files
            raise LoadError(f"corrupt Word file: {reason(err)}") from err
        if not docs:
            raise LoadError("no text in the Word document")
        for doc in docs:
            doc.metadata.update(own)
        return docs


def _core_properties(document: WordDocument) -> dict[str, str]:
    """The file's title, author and dates (its core properties), on every Document."""
    core = document.core_properties
    return properties(title=core.title, author=core.author, created=core.created, modified=core.modified)


@dataclass(frozen=True)
class _Style:
    named: int | None  # heading level from the style's name ("Heading 2": 2, "Title": 0)
    outline: int | None  # heading level from the first outline level along ``basedOn``
    listed: bool  # numbering set on the style or one it is based on


_PLAIN = _Style(None, None, False)


class _Reader:
    """One pass over a document: the text Documents of each breadcrumb, and tables where they stand."""

    def __init__(self, document: WordDocument) -> None:
        self.document = document
        elements = _style_elements(document)
        self.styles = {sid: _resolve_style(sid, elements) for sid in elements}
        self.default_style = next((sid for sid, el in elements.items() if el.get(qn("w:default")) in ("1", "true")), "")
        self.trail: list[tuple[int, str]] = []  # the open headings: (level, text)
        self.lines: list[str] = []  # the paragraphs of the Document being built
        self.out: list[Document] = []

    def documents(self) -> list[Document]:
        body = self.document.element.body
        if body is not None:
            for block in _blocks(body):
                self._block(block)
        self._flush()
        self._append(_headers_and_footers(self.document), {"section": HEADERS_AND_FOOTERS})
        for reltype, section in ((RT.FOOTNOTES, FOOTNOTES), (RT.ENDNOTES, ENDNOTES)):
            self._append(_notes(self.document, reltype), {"section": section})
        return self.out

    def _block(self, block: etree._Element) -> None:
        if block.tag == _TBL:
            self._table(block)
            return
        self._paragraph(block)
        for box in _text_boxes(block):
            for inner in _blocks(box):
                self._block(inner)

    def _paragraph(self, p: etree._Element) -> None:
        lines = _paragraph_lines(p)
        if not lines:
            return
        properties = p.find(qn("w:pPr"))
        style = self.styles.get(_val(properties, "w:pStyle") or self.default_style, _PLAIN)
        level = self._heading_level(properties, style)
        if level is not None:
            self._flush()
            while self.trail and self.trail[-1][0] >= level:
                self.trail.pop()
            self.trail.append((level, " ".join(lines)))
        elif _numbered(properties, style):
            lines[0] = LIST_PREFIX + lines[0]
        self.lines.extend(lines)

    @staticmethod
    def _heading_level(properties: etree._Element | None, style: _Style) -> int | None:
        """The style's name decides; else an outline level on the paragraph; else one along its style's chain."""
        if style.named is not None:
            return style.named
        direct = _outline(properties)
        return _heading(direct) if direct is not None else style.outline

    def _table(self, tbl: etree._Element) -> None:
        rows = [row for row in _table_rows(tbl) if any(row)]
        if not rows:
            return
        self._flush()
        width = max(map(len, rows))
        rows = [row + [""] * (width - len(row)) for row in rows]
        self.out.append(table_document(rows[0], rows[1:], self._section()))

    def _flush(self) -> None:
        self._append("\n".join(self.lines), self._section())
        self.lines = []

    def _append(self, text: str, metadata: dict[str, str]) -> None:
        if text:
            self.out.append(Document(page_content=text, metadata=metadata))

    def _section(self) -> dict[str, str]:
        return {"section": " > ".join(text for _, text in self.trail)} if self.trail else {}


def _blocks(container: etree._Element) -> Iterator[etree._Element]:
    """The paragraphs and tables of a body, cell, text box, header or note, in order, through wrappers."""
    for child in container:
        if child.tag in (_P, _TBL):
            yield child
        elif child.tag in _WRAPPERS:
            yield from _blocks(child)


def _paragraph_lines(p: etree._Element) -> list[str]:
    """The paragraph's text as lines (split at line breaks), whitespace collapsed, empty lines dropped."""
    parts: list[str] = []
    _inline_text(p, parts)
    return [line for line in (" ".join(raw.split()) for raw in "".join(parts).split("\n")) if line]


def _inline_text(element: etree._Element, parts: list[str]) -> None:
    # Recursion is safe: the parser refuses XML nested deeper than 256 levels.
    for child in element:
        tag = child.tag
        if tag == _T:
            parts.append(child.text or "")
        elif tag == _TAB:
            parts.append("\t")
        elif tag in _BREAKS:
            parts.append("\n")
        elif tag == _NB_HYPHEN:
            parts.append("-")
        elif tag not in _OPAQUE:
            _inline_text(child, parts)


def _text_boxes(p: etree._Element) -> Iterator[etree._Element]:
    """The text boxes anchored in paragraph ``p`` (not those inside another text box, nor VML copies)."""
    for child in p:
        if child.tag == _TXBX:
            yield child
        elif child.tag != _MC_FALLBACK:
            yield from _text_boxes(child)


def _plain_text(blocks: Iterator[etree._Element]) -> str:
    """Blocks as plain lines: paragraphs (text boxes included), table rows as their cells' text."""
    lines: list[str] = []
    for block in blocks:
        if block.tag == _TBL:
            lines.extend(" ".join(cell for cell in row if cell) for row in _table_rows(block))
            continue
        lines.extend(_paragraph_lines(block))
        for box in _text_boxes(block):
            lines.append(_plain_text(_blocks(box)))
    return "\n".join(line for line in lines if line)


def _table_rows(tbl: etree._Element) -> list[list[str]]:
    """Each row's value at every grid position; a merged cell's value fills each position it covers."""
    rows: list[list[str]] = []
    above: dict[int, str] = {}  # grid column -> the value last placed there, for vertical merges
    for tr in _children(tbl, _TR):
        row = [""] * _int_val(tr.find(qn("w:trPr")), "w:gridBefore", 0)
        for tc in _children(tr, _TC):
            properties = tc.find(qn("w:tcPr"))
            span = max(_int_val(properties, "w:gridSpan", 1), 1)
            if _continues(properties, "w:vMerge"):
                value = above.get(len(row), "")
            elif _continues(properties, "w:hMerge") and row:  # the legacy horizontal merge
                value = row[-1]
            else:
                value = _plain_text(_blocks(tc))
            for column in range(len(row), len(row) + span):
                above[column] = value
            row.extend([value] * span)
        rows.append(row)
    return rows


def _children(parent: etree._Element, tag: str) -> Iterator[etree._Element]:
    """The ``tag`` children of ``parent``, also those wrapped in content controls or custom XML."""
    for child in parent:
        if child.tag == tag:
            yield child
        elif child.tag in _WRAPPERS:
            yield from _children(child, tag)


def _continues(properties: etree._Element | None, tag: str) -> bool:
    """Whether a ``w:vMerge``/``w:hMerge`` marks a cell as covered by the one before it (no val: continue)."""
    merge = properties.find(qn(tag)) if properties is not None else None
    return merge is not None and merge.get(qn("w:val"), "continue") == "continue"


def _style_elements(document: WordDocument) -> dict[str, etree._Element]:
    """Paragraph style id -> its ``w:style``; none for a file without a styles part (valid, if minimal)."""
    part = _related(document, RT.STYLES)
    if not isinstance(part, XmlPart):
        return {}
    styles = part.element.findall(qn("w:style"))
    return {el.get(qn("w:styleId"), ""): el for el in styles if el.get(qn("w:type"), "paragraph") == "paragraph"}


def _resolve_style(sid: str, elements: dict[str, etree._Element]) -> _Style:
    name = (_val(elements[sid], "w:name") or "").strip()
    match = _HEADING_NAME.fullmatch(name)
    named = int(match.group(1)) if match else (0 if name.lower() in _TITLE_NAMES else None)
    outline: int | None = None
    num_id: str | None = None
    seen: set[str] = set()
    current: str | None = sid
    while current in elements and current not in seen:  # a basedOn loop in a damaged file ends here
        seen.add(current)
        properties = elements[current].find(qn("w:pPr"))
        outline = _outline(properties) if outline is None else outline  # the nearest setting wins
        num_id = _num_id(properties) if num_id is None else num_id
        current = _val(elements[current], "w:basedOn")
    return _Style(named, _heading(outline), num_id not in (None, "0"))


def _outline(properties: etree._Element | None) -> int | None:
    """The ``w:outlineLvl`` set in ``properties`` (0..8: heading levels 1..9, 9: body text), or None."""
    level = _int_val(properties, "w:outlineLvl", -1)
    return level if 0 <= level <= _BODY_TEXT else None


def _heading(outline: int | None) -> int | None:
    return outline + 1 if outline is not None and outline < _BODY_TEXT else None


def _numbered(properties: etree._Element | None, style: _Style) -> bool:
    """Whether a paragraph is a list item: numbering on it (``numId`` 0 switches the style's off), or its style's."""
    num_id = _num_id(properties)
    return num_id != "0" if num_id is not None else style.listed


def _num_id(properties: etree._Element | None) -> str | None:
    numbering = properties.find(qn("w:numPr")) if properties is not None else None
    return _val(numbering, "w:numId")


def _related(document: WordDocument, reltype: str) -> Part | None:
    """The document part's first part of relationship ``reltype``, if any."""
    rels = document.part.rels.values()
    return next((rel.target_part for rel in rels if rel.reltype == reltype and not rel.is_external), None)


def _headers_and_footers(document: WordDocument) -> str:
    """The distinct texts of the headers and footers of all sections, in the order the sections name them."""
    texts: dict[str, None] = {}
    part = document.part
    for sect_pr in document.element.iter(qn("w:sectPr")):
        for reference in sect_pr:
            if reference.tag not in (qn("w:headerReference"), qn("w:footerReference")):
                continue
            related = part.related_parts.get(reference.get(qn("r:id"), ""))
            if isinstance(related, XmlPart):
                texts.setdefault(_plain_text(_blocks(related.element)))
    return "\n".join(text for text in texts if text)


def _notes(document: WordDocument, reltype: str) -> str:
    """Footnotes or endnotes as "[n] text" lines, numbered in order; Word's separator notes left out."""
    part = _related(document, reltype)
    if part is None:
        return ""
    notes = parse_xml(part.blob)  # a generic part in python-docx 1.2; its parser resolves no entities
    lines: list[str] = []
    for note in notes:
        if note.get(qn("w:type"), "normal") != "normal" or not (text := _plain_text(_blocks(note))):
            continue
        lines.append(f"[{len(lines) + 1}] {' '.join(text.split())}")
    return "\n".join(lines)


def _val(parent: etree._Element | None, tag: str) -> str | None:
    child = parent.find(qn(tag)) if parent is not None else None
    return child.get(qn("w:val")) if child is not None else None


def _int_val(parent: etree._Element | None, tag: str, default: int) -> int:
    value = _val(parent, tag)
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _with_offsets(docs: list[Document]) -> Iterator[Document]:
    offset = 0
    for doc in docs:
        doc.metadata["start_index"] = offset
        offset += len(doc.page_content) + len(SEPARATOR)
        yield doc


def _wrong_kind(message: str) -> str | None:
    """The cause for a zip renamed .docx, from python-docx's "not a Word file, content type is ..." message."""
    if "not a Word file" not in message:
        return None
    if "ms-word" in message or "wordprocessingml.template" in message:
        return "a Word template or macro-enabled document: save it as a .docx document"
    for marker, kind in (("spreadsheetml", "an Excel workbook"), ("presentationml", "a PowerPoint presentation")):
        if marker in message:
            return f"not a Word file: it holds {kind}"
    return "not a Word file: it holds another kind of Office document"
