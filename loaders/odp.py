"""OpenDocument presentations (.odp): each slide's text in reading order, its tables as their own Documents, its
speaker notes last; from ``content.xml`` (`loaders.odf`).

The Documents are those of `loaders.pptx` (assembled by `loaders.slides`): ``page`` is the slide's number from 1,
``title`` the text of its title frame (``presentation:class="title"``) when it has one. Frames are read title
first, then by position (top, then left); a group's shapes take the group's place. Left out: the page number,
date and footer fields (the same on every slide), and the masters' and layouts' text (in ``styles.xml``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from lxml import etree

from loaders.errors import LoadError
from loaders.odf import DRAW, OFFICE, PRESENTATION, SVG, TABLE, TEXT, paragraph_lines, read_content, t, table_rows
from loaders.options import ReadOptions
from loaders.slides import NOTES_PREFIX, Block, slide_documents
from loaders.source import AnyPath

_KIND = "OpenDocument presentation"
_MIMETYPE = "application/vnd.oasis.opendocument.presentation"
_PAGE, _GROUP, _NOTES = t(DRAW, "page"), t(DRAW, "g"), t(PRESENTATION, "notes")
_CLASS = t(PRESENTATION, "class")
_BOILERPLATE = frozenset({"page-number", "footer", "date-time", "header"})
_TABLE, _P, _H = t(TABLE, "table"), t(TEXT, "p"), t(TEXT, "h")
_LENGTH = re.compile(r"(-?[\d.]+)\s*(cm|mm|in|pt|pc|px)?")
_TO_CM = {"cm": 1.0, "mm": 0.1, "in": 2.54, "pt": 2.54 / 72, "pc": 2.54 / 6, "px": 2.54 / 96, None: 1.0}


class OdpFileLoader(BaseLoader):
    """An .odp file as Documents per slide (``page``, ``title``, ``start_index``); tables apart, notes last.

    Raises `LoadError` for empty, encrypted, corrupt files and for files without text on any slide.

    Usage (a LangChain document loader: any str or path-like)::

        docs = OdpFileLoader("汇报.odp").load()
        for doc in OdpFileLoader("汇报.odp").lazy_load():
            print(doc.metadata["page"], doc.metadata.get("title"), doc.page_content[:60])
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)  # the whole content.xml is parsed at once: no slide is skipped alone

    def lazy_load(self) -> Iterator[Document]:
        root = read_content(self.path, _MIMETYPE, _KIND)
        body = root.find(f"{{{OFFICE}}}body/{{{OFFICE}}}presentation")
        found = False
        for number, page in enumerate(body.iter(_PAGE) if body is not None else (), 1):
            docs = _slide_documents(page, number)
            found = found or bool(docs)
            yield from docs
        if not found:
            raise LoadError("no text in the OpenDocument presentation")


def _slide_documents(page: etree._Element, number: int) -> list[Document]:
    shapes = [child for child in page if child.tag != _NOTES and isinstance(child.tag, str)]
    title_frame = next((shape for shape in shapes if shape.get(_CLASS) == "title"), None)
    title = " ".join(_lines(title_frame)) if title_frame is not None else ""
    metadata: dict[str, str | int] = {"page": number} | ({"title": title} if title else {})
    blocks: list[Block] = [_block(shape) for shape in _reading_order(shapes, title_frame)]
    notes = page.find(_NOTES)
    if notes is not None:
        text = "\n".join(line for frame in notes if frame.get(_CLASS) == "notes" for line in _lines(frame))
        blocks.append(NOTES_PREFIX + text if text else "")
    return slide_documents(blocks, metadata)


def _reading_order(shapes: list[etree._Element], title: etree._Element | None) -> Iterator[etree._Element]:
    """The shapes to read, title first, then top to bottom and left to right; groups expanded in place."""
    ordered = sorted(shapes, key=lambda shape: (shape is not title, _cm(shape, "y"), _cm(shape, "x")))
    for shape in ordered:
        if shape.tag == _GROUP:
            yield from _reading_order([child for child in shape if isinstance(child.tag, str)], None)
        elif shape.get(_CLASS) not in _BOILERPLATE:
            yield shape


def _block(shape: etree._Element) -> Block:
    table = shape.find(f".//{_TABLE}")
    if table is not None:
        return table_rows(table)
    return "\n".join(_lines(shape))


def _lines(shape: etree._Element) -> list[str]:
    """The lines of the paragraphs in a frame or shape (lists included), outermost paragraphs only."""
    lines: list[str] = []
    for p in shape.iter(_P, _H):
        if not any(ancestor.tag in (_P, _H) for ancestor in p.iterancestors()):
            lines.extend(paragraph_lines(p))
    return lines


def _cm(shape: etree._Element, axis: str) -> float:
    """A shape's position on `axis` in centimetres (0 when it has none, a group or a connector)."""
    match = _LENGTH.match(shape.get(t(SVG, axis), "") or "")
    return float(match.group(1)) * _TO_CM[match.group(2)] if match else 0.0
