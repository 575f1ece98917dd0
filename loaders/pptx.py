"""PowerPoint (.pptx): each slide's text in reading order, its tables as their own Documents, its speaker notes
last; read with python-pptx.

Why not langchain-community's ``UnstructuredPowerPointLoader``: it needs the ``unstructured`` package and its
dependencies, and in its default mode it returns the whole file as one Document, so no chunk knows its slide.

How a slide is read, and why:

- Shapes in reading order: the title first, then by position (top, then left); a group's shapes take the
  group's place, in their own reading order. Text frames give one line per paragraph and line break.
- Tables: `loaders.tables.table_document`, first row as the header; a merged cell's value fills every grid
  position it covers (python-pptx leaves the covered cells empty).
- Speaker notes close the slide's text, after "Notes: ".
- Left out: the slide number, date and footer placeholders (the same on every slide), charts, SmartArt and
  pictures, and the layouts' and masters' text.

A slide gives one or more Documents, with ``page`` (the slide's number, from 1), ``title`` (when the slide has
a title), ``start_index`` (the offset in the slide's rendered text: its Documents' texts joined by blank lines), and
the file's core properties that are set (`loaders.properties`): ``author``, ``created``, ``modified``, and its
title as ``document_title``, since ``title`` stays the slide's, the nearer citation. A slide that cannot be read is
handed to ``options.on_page_error`` (default: a warning on "loaders.pptx") and the other slides are read.
python-pptx parses every XML part when it opens the file, so malformed XML anywhere fails the whole file ("corrupt
PowerPoint file").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from pptx import Presentation
from pptx.enum.shapes import PP_PLACEHOLDER
from pptx.presentation import Presentation as PresentationObject
from pptx.shapes.autoshape import Shape
from pptx.shapes.base import BaseShape
from pptx.shapes.graphfrm import GraphicFrame
from pptx.shapes.group import GroupShape
from pptx.slide import Slide
from pptx.table import Table

from loaders.archive import open_zip
from loaders.errors import LoadError, nothing_read, reason
from loaders.options import ReadOptions
from loaders.properties import properties
from loaders.slides import NOTES_PREFIX, Block, slide_documents
from loaders.source import AnyPath

logger = logging.getLogger("loaders.pptx")

_CONTENT_TYPES = "[Content_Types].xml"  # the first part of every Office file
_BOILERPLATE = frozenset({PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.FOOTER})


class PptxFileLoader(BaseLoader):
    """A .pptx file as Documents per slide (``page``, ``title``, ``start_index``); tables apart, notes last.

    Raises `LoadError` for encrypted, legacy, corrupt files and for files without text on any slide.

    Usage (a LangChain document loader: any str or path-like)::

        docs = PptxFileLoader("deck.pptx").load()
        for doc in PptxFileLoader("deck.pptx").lazy_load():
            print(doc.metadata["page"], doc.metadata.get("title"), doc.page_content[:60])
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)
        self.on_page_error = (options.on_page_error if options else None) or self._log_page_error

    def lazy_load(self) -> Iterator[Document]:
        slides, own = self._slides()
        failed: LoadError | None = None
        found = False
        for number, slide in enumerate(slides, start=1):
            try:
                docs = _slide_documents(slide, number)
            except Exception as err:  # one broken slide (a bad shape, a bad table) must not cost the others
                failed = LoadError(f"unreadable slide: {reason(err)}", page=number)
                self.on_page_error(failed)
                continue
            found = found or bool(docs)
            for doc in docs:
                doc.metadata.update(own)
            yield from docs
        if not found:
            raise nothing_read(failed, "slide", "no text in the PowerPoint file")

    def _slides(self) -> tuple[list[Slide], dict[str, str]]:
        """The slides, and the file's core properties (its title as ``document_title``)."""
        with open_zip(self.path, "PowerPoint") as archive:  # refuses encrypted, legacy, corrupt and bomb files first
            if _CONTENT_TYPES not in archive.namelist():
                raise LoadError("not a PowerPoint file: a zip archive without a presentation in it")
        try:
            presentation: PresentationObject = Presentation(str(self.path))
            core = presentation.core_properties
            own = properties(title=core.title, author=core.author, created=core.created, modified=core.modified)
            if "title" in own:
                own["document_title"] = own.pop("title")
            return list(presentation.slides), own
        except (LoadError, OSError):
            raise
        except ValueError as err:
            raise LoadError(_wrong_kind(str(err)) or f"corrupt PowerPoint file: {reason(err)}") from err
        except Exception as err:  # python-pptx, lxml and zipfile raise many types on damaged files
            raise LoadError(f"corrupt PowerPoint file: {reason(err)}") from err

    def _log_page_error(self, error: LoadError) -> None:
        logger.warning("%s: slide %s skipped: %s", self.path, error.page, error)


def _slide_documents(slide: Slide, number: int) -> list[Document]:
    """The Documents of one slide: runs of text between its tables, the notes closing the last run."""
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    metadata: dict[str, str | int] = {"page": number} | ({"title": title} if title else {})
    blocks = [_block(shape) for shape in _reading_order(slide.shapes, title_shape)]
    blocks.append(_notes(slide))
    return slide_documents(blocks, metadata)


def _reading_order(shapes: Iterable[BaseShape], title: BaseShape | None) -> Iterator[BaseShape]:
    """The shapes to read, title first, then top to bottom and left to right; groups expanded in place."""
    title_id = title.shape_id if title is not None else None
    ordered = sorted(shapes, key=lambda shape: (shape.shape_id != title_id, shape.top or 0, shape.left or 0))
    for shape in ordered:
        if isinstance(shape, GroupShape):
            yield from _reading_order(shape.shapes, None)
        elif not (shape.is_placeholder and shape.placeholder_format.type in _BOILERPLATE):
            yield shape


def _block(shape: BaseShape) -> Block:
    if isinstance(shape, GraphicFrame) and shape.has_table:
        return _table_rows(shape.table)
    if isinstance(shape, Shape) and shape.has_text_frame:  # autoshapes, text boxes, placeholders
        return _lines(shape.text_frame.text)
    return ""


def _lines(text: str) -> str:
    """One line per paragraph and line break (python-pptx writes a break as a vertical tab), spaces collapsed."""
    lines = (" ".join(line.split()) for line in text.replace("\v", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


def _table_rows(table: Table) -> list[list[str]]:
    """The table's non-empty rows, each cell's text at every grid position its merge covers."""
    grid = [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row.cells):
            if not cell.is_merge_origin:
                continue
            for covered in grid[r : r + cell.span_height]:
                covered[c : c + cell.span_width] = [grid[r][c]] * len(covered[c : c + cell.span_width])
    return [row for row in grid if any(row)]


def _notes(slide: Slide) -> str:
    if not slide.has_notes_slide:  # asking for ``notes_slide`` would create one
        return ""
    frame = slide.notes_slide.notes_text_frame
    text = _lines(frame.text) if frame is not None else ""
    return NOTES_PREFIX + text if text else ""


def _wrong_kind(message: str) -> str | None:
    """The cause for a zip renamed .pptx, from python-pptx's "not a PowerPoint file, content type is ..." message."""
    if "not a PowerPoint file" not in message:
        return None
    if "presentationml" in message:  # a template (.potx) or a slide show (.ppsx): python-pptx opens neither
        return "a PowerPoint template or slide show: save it as a .pptx presentation"
    for marker, kind in (("spreadsheetml", "an Excel workbook"), ("wordprocessingml", "a Word document")):
        if marker in message:
            return f"not a PowerPoint file: it holds {kind}"
    return "not a PowerPoint file: it holds another kind of Office document"
