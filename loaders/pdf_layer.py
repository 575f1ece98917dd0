"""A PDF's text layer read as a whole, then handed out page by page as Documents: paragraphs under their section,
each with its line boxes (see loaders.pdf for the pieces).

Whole first, because the rules need the whole: a running header is text that repeats across pages, the body size
and the document's own words (the hyphen rule's dictionary) are the document's. PDFium reads 100+ pages a second
and a page's lines are a few KB, so a 1,000-page file holds a few MB of lines here; the Documents are still made
one page at a time as the loader asks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document

from loaders.errors import reason
from loaders.options import LayoutMode
from loaders.pdf_flow import Paragraph, Vocabulary, body_size, drop_running, footnotes_last, join, paragraphs
from loaders.pdf_layout import Region, page_regions, reading_order, region_of
from loaders.pdf_sections import Heading, OutlineEntry, Trail, looks_like_heading, outline, outline_headings, rank
from loaders.pdf_tables import Table, glyph_words, page_tables, words_table
from loaders.pdf_text import Box, Line, page_chars, page_lines
from loaders.positions import BOXES, LINE_BOXES, LineBox, box_json, line_boxes_json
from loaders.tables import table_document

if TYPE_CHECKING:
    import pypdfium2 as pdfium

logger = logging.getLogger("loaders.pdf")

_PARAGRAPH = "\n\n"


class TextLayer:
    """The lines of every page PDFium could read, and the document-wide facts the rules need."""

    def __init__(
        self,
        pdf: pdfium.PdfDocument,
        pages: list[list[Line] | None],
        heights: list[float],
        tables: dict[int, list[Table]],
        path: Path,
        layout: LayoutMode,
    ) -> None:
        self._pdf = pdf
        self._path = path
        self._model = layout is LayoutMode.MODEL
        self._model_failed: list[int] = []
        self._tables = tables
        readable = [lines for lines in pages if lines is not None]
        readable_heights = [h for lines, h in zip(pages, heights, strict=True) if lines is not None]
        kept = iter(drop_running(readable, readable_heights))
        self._pages = [None if lines is None else next(kept) for lines in pages]
        self._heights = heights
        self._body = body_size(readable)
        self._words = Vocabulary()
        for lines in readable:
            self._words.add(lines)
        self._outline: list[OutlineEntry] = outline(pdf, heights)
        self._trail = Trail()

    @classmethod
    def read(
        cls, path: Path, password: str | None, count: int, layout: LayoutMode = LayoutMode.AUTO
    ) -> TextLayer | None:
        """The file's text layer; None (and one warning) when PDFium cannot open it: the loader then reads
        every page's plain text with pypdf."""
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(path, password=password)
        except Exception as err:  # PDFium's own errors on a file pypdf could open
            logger.warning("%s: layout not read (%s): plain text instead", path, reason(err))
            return None
        if len(pdf) != count:  # the two readers disagree on the page tree: PDFium's page n may not be pypdf's
            logger.warning(
                "%s: layout not read (PDFium finds %d pages, not %d): plain text instead", path, len(pdf), count
            )
            pdf.close()
            return None
        pages: list[list[Line] | None] = []
        tables: dict[int, list[Table]] = {}
        heights: list[float] = []
        failed: list[int] = []
        for index in range(min(count, len(pdf))):
            try:
                page = pdf[index]
                try:
                    heights.append(page.get_height())
                    pages.append(page_lines(page))
                    tables[index] = _tables(page, path, index)
                finally:
                    page.close()
            except Exception:  # one page PDFium cannot read: pypdf reads it
                failed.append(index + 1)
                pages.append(None)
                if len(heights) < len(pages):
                    heights.append(0.0)
        if failed:
            logger.warning("%s: layout not read on page(s) %s: plain text instead", path, _numbers(failed))
        pages += [None] * (count - len(pages))
        heights += [0.0] * (count - len(heights))
        return cls(pdf, pages, heights, tables, path, layout)

    def has(self, number: int) -> bool:
        return self._pages[number - 1] is not None

    def text(self, number: int) -> str:
        """The page's text, lines as they come (for the OCR rule: how much text the page has)."""
        return "\n".join(line.text for line in self._pages[number - 1] or ())

    def documents(self, number: int) -> list[Document]:
        """The page's Documents: a new one at each heading, each with ``page``, ``start_index`` (its offset in the
        page's text), ``section`` while a heading is open, and its line boxes; then its tables, as table Documents
        (loaders.tables) with their ``boxes``. Call in page order: the section goes on from the page before."""
        tables = list(self._tables.get(number - 1, []))
        lines = [line for line in self._pages[number - 1] or () if not any(_within(line.box, t.box) for t in tables)]
        titles: dict[int, Heading] | None = None  # the model's headings, when it read the page
        if self._model and lines:
            try:
                page = self._pdf[number - 1]
                try:
                    regions = page_regions(page)
                    width = page.get_width()
                    words = glyph_words(page_chars(page)) if any(r.kind == "table" for r in regions) else []
                finally:
                    page.close()
            except Exception:  # onnxruntime, OpenCV or PDFium: the rules still read the page
                self._model_failed.append(number)
            else:
                lines, titles = _by_regions(lines, regions, width, words, tables)
        return self._documents(number, lines, tables, titles, self._body, {})

    def ocr_documents(self, number: int, lines: list[Line], regions: list[Region] | None) -> list[Document]:
        """The Documents of a page read by OCR, from its text boxes (`lines`, in points) and, when the layout model
        read its picture, its `regions`: the same rules as a text page's, with ``ocr`` True."""
        width = self._pdf[number - 1].get_width() if number <= len(self._pdf) else 0.0
        tables: list[Table] = []
        titles: dict[int, Heading] | None = None
        if regions is not None:
            words = [
                {"text": line.text, "x0": line.box[0], "top": line.box[1], "x1": line.box[2], "bottom": line.box[3]}
                for line in lines
            ]
            lines, titles = _by_regions(lines, regions, width, words, tables)
        else:
            lines = _rows(lines)
        body = sorted(line.size for line in lines)[len(lines) // 2] if lines else 0.0
        return self._documents(number, lines, tables, titles, body, {"ocr": True})

    def _documents(
        self,
        number: int,
        lines: list[Line],
        tables: list[Table],
        titles: dict[int, Heading] | None,
        body: float,
        extra: dict[str, object],
    ) -> list[Document]:
        ordered = footnotes_last(lines, body, self._heights[number - 1])
        found = outline_headings(self._outline, number - 1, ordered) if self._outline else {}
        by_line = {id(ordered[k]): heading for k, heading in found.items()}

        def heading(line: Line) -> Heading | None:
            if self._outline:
                return by_line.get(id(line))
            if titles is not None:
                return titles.get(id(line))
            return looks_like_heading(line, body)

        docs: list[Document] = []
        group: list[Paragraph] = []
        offset = 0  # of the group's text in the page's text
        for block in paragraphs(ordered, lambda line: heading(line) is not None):
            paragraph = join(block, self._words)
            opened = heading(block[0])
            if opened is not None:
                offset = self._flush(docs, group, number, offset, extra)
                group = []
                title = opened.title if self._outline else paragraph.text
                self._trail.enter(Heading(title, opened.rank))
            group.append(paragraph)
        offset = self._flush(docs, group, number, offset, extra)
        for table in tables:
            metadata = {"page": number, "start_index": offset, **extra, BOXES: box_json(number, table.box)}
            if section := self._trail.section():
                metadata["section"] = section
            doc = table_document(table.header, table.rows, metadata)
            docs.append(doc)
            offset += len(doc.page_content) + len(_PARAGRAPH)
        return docs

    def _flush(
        self, docs: list[Document], group: list[Paragraph], number: int, offset: int, extra: dict[str, object]
    ) -> int:
        """Appends the Document of `group` (if it has any text); the offset after it."""
        if not group:
            return offset
        text = _PARAGRAPH.join(p.text for p in group)
        boxes: list[LineBox] = []
        at = 0
        for paragraph in group:
            boxes += [(at + start, at + end, number, *box) for start, end, box in paragraph.spans]
            at += len(paragraph.text) + len(_PARAGRAPH)
        metadata: dict[str, object] = {"page": number, "start_index": offset, **extra}
        if section := self._trail.section():
            metadata["section"] = section
        metadata[LINE_BOXES] = line_boxes_json(boxes)
        docs.append(Document(page_content=text, metadata=metadata))
        return offset + len(text) + len(_PARAGRAPH)

    def close(self) -> None:
        if self._model_failed:
            logger.warning(
                "%s: layout model failed on page(s) %s: read by the text rules",
                self._path,
                _numbers(self._model_failed),
            )
        self._pdf.close()


def _by_regions(
    lines: list[Line], regions: list[Region], width: float, words: list[dict[str, Any]], tables: list[Table]
) -> tuple[list[Line], dict[int, Heading]]:
    """The page's lines as the layout model reads it: headers and footers dropped, in the regions' reading order,
    the titles as headings; the tables of its table regions (from `words`) appended to `tables`."""
    order = {id(region): k for k, region in enumerate(reading_order(regions, width))}
    for region in regions:
        if (
            region.kind == "table"
            and not any(_within(region.box, t.box) for t in tables)
            and (table := words_table(words, region.box)) is not None
        ):
            tables.append(table)
    kept: list[tuple[int, int, Line]] = []
    titles: dict[int, Heading] = {}
    rank_before = -1
    for position, line in enumerate(lines):
        holder = region_of(line.box, regions)
        if holder is not None and holder.kind in ("header", "footer"):
            continue
        if any(_within(line.box, t.box) for t in tables):
            continue
        rank_before = order[id(holder)] if holder is not None else rank_before  # outside all: with the one before
        if holder is not None and holder.kind == "title":
            titles[id(line)] = Heading(line.text, rank(line))
        kept.append((rank_before, position, line))
    kept.sort(key=lambda item: (item[0], item[1]))
    return [line for _, _, line in kept], titles


def _rows(lines: list[Line]) -> list[Line]:
    """OCR's text boxes without a layout: rows top to bottom (boxes whose middles are within half a box's height
    are one row), each row left to right."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda line: (line.box[1] + line.box[3]) / 2):
        middle = (line.box[1] + line.box[3]) / 2
        if rows and abs(middle - (rows[-1][0].box[1] + rows[-1][0].box[3]) / 2) <= 0.5 * min(
            line.height, rows[-1][0].height
        ):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda line: line.box[0])]


def _tables(page: pdfium.PdfPage, path: Path, index: int) -> list[Table]:
    """The page's ruled tables; none, with a warning, when finding them fails (the table stays in the text)."""
    try:
        return page_tables(page)
    except Exception as err:  # pdfplumber's geometry on an odd drawing: the text is still there
        logger.warning("%s: tables not read on page %d (%s): left in the text", path, index + 1, reason(err))
        return []


def _within(inner: Box, outer: Box) -> bool:
    x, y = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] <= x <= outer[2] and outer[1] <= y <= outer[3]


def _numbers(pages: list[int]) -> str:
    shown = ", ".join(map(str, pages[:10]))
    return shown + (f" and {len(pages) - 10} more" if len(pages) > 10 else "")
