"""Ruled tables on a PDF page, as a header and rows of cell texts: pdfplumber's table finder (MIT) gives the grid,
the words' positions give the rows.

Why the words and not pdfplumber's cells as they come: tables often rule only every few rows (the NICS table's
bands of five states), and pdfplumber then gives one cell holding five figures on five lines. Here each line of
words inside a ruled row is a row of its own, and each word goes to the column of the finest grid (every cell edge
of the table) its middle falls in. The header is the first ruled row with more than one cell: a label spanning
several columns (a group, "Pre-Pawn" over "Handgun | Long Gun | *Other") is put in front of each column's own label
("Pre-Pawn Handgun"), so that a piece of the table cut far from its top still says what each column is. Rows of
one cell across the whole table (a title, notes) are left to the page's text.

pdfplumber parses the page again with pdfminer (about a second for a dense page), so it runs only on pages whose
drawing has the rules of a grid: at least 3 horizontal and 3 vertical thin lines or rectangle edges
(:func:`has_rules`, PDFium, a few milliseconds).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loaders.pdf_text import Box

if TYPE_CHECKING:
    import pypdfium2 as pdfium

logger = logging.getLogger("loaders.pdf")

_THIN = 2.0  # points: a path this thin is a rule
_LONG = 8.0  # points: and at least this long
_MIN_RULES = 3
_SNAP = 2.0  # points: cell edges this close are one column edge


@dataclass(frozen=True, slots=True)
class Table:
    """A table found on a page: its header, its rows (all as wide as the header) and where it stands."""

    header: list[str]
    rows: list[list[str]]
    box: Box


def has_rules(page: pdfium.PdfPage) -> bool:
    """Whether the page draws at least 3 horizontal and 3 vertical rules (thin paths or the sides of boxes)."""
    import pypdfium2.raw as raw

    across = down = 0
    for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_PATH], max_depth=2):
        left, bottom, right, top = obj.get_bounds()
        width, height = right - left, top - bottom
        if height <= _THIN and width >= _LONG:
            across += 1
        elif width <= _THIN and height >= _LONG:
            down += 1
        elif width >= _LONG and height >= _LONG:  # a box: two of each
            across += 2
            down += 2
        if across >= _MIN_RULES and down >= _MIN_RULES:
            return True
    return False


class TableFinder:
    """pdfplumber's view of one PDF, opened on first use."""

    def __init__(self, path: Path, password: str | None) -> None:
        self.path = path
        self.password = password
        self._pdf: Any = None

    def tables(self, index: int) -> list[Table]:
        """The tables on page `index` (0-based)."""
        if self._pdf is None:
            import pdfplumber

            self._pdf = pdfplumber.open(self.path, password=self.password or "")
        page = self._pdf.pages[index]
        found = []
        for table in page.find_tables():
            shaped = _shape(table, page.crop(table.bbox).extract_words())
            if shaped is not None:
                found.append(shaped)
        page.close()
        return found

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None


def _shape(table: Any, words: list[dict[str, Any]]) -> Table | None:
    """The header and rows of a pdfplumber table from the words in it; None for a grid of fewer than 2 columns or
    without a data row (a framed paragraph, a box around a figure)."""
    edges = _edges([cell for cell in table.cells])
    width = len(edges) - 1
    if width < 2:
        return None
    ruled = [row for row in table.rows if sum(cell is not None for cell in row.cells) > 1]
    if len(ruled) < 2:
        return None
    header_row, *data_rows = ruled
    header = _header(header_row, words, edges)
    rows = [cells for row in data_rows for cells in _lines(row.bbox, words, edges)]
    if not rows:
        return None
    used = [c for c in range(width) if header[c] or any(row[c] for row in rows)]
    top, bottom = header_row.bbox[1], data_rows[-1].bbox[3]
    return Table(
        [header[c] for c in used],
        [[row[c] for c in used] for row in rows],
        (float(table.bbox[0]), float(top), float(table.bbox[2]), float(bottom)),
    )


def _edges(cells: Sequence[Sequence[float]]) -> list[float]:
    """The distinct x of all cell sides, close ones snapped together: the finest columns' edges."""
    edges: list[float] = []
    for x in sorted({round(float(v), 1) for cell in cells for v in (cell[0], cell[2])}):
        if not edges or x - edges[-1] > _SNAP:
            edges.append(x)
    return edges


def _column(x: float, edges: list[float]) -> int:
    for k in range(len(edges) - 1):
        if x < edges[k + 1]:
            return k
    return len(edges) - 2


def _inside(word: dict[str, Any], box: Sequence[float]) -> bool:
    x, y = (word["x0"] + word["x1"]) / 2, (word["top"] + word["bottom"]) / 2
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def _lines(box: Sequence[float], words: list[dict[str, Any]], edges: list[float]) -> list[list[str]]:
    """The lines of words inside `box`, each as cells of the finest columns."""
    inside = sorted((w for w in words if _inside(w, box)), key=lambda w: (w["top"], w["x0"]))
    lines: list[list[dict[str, Any]]] = []
    for word in inside:
        middle = (word["top"] + word["bottom"]) / 2
        if lines and abs(middle - (lines[-1][0]["top"] + lines[-1][0]["bottom"]) / 2) < word["bottom"] - word["top"]:
            lines[-1].append(word)
        else:
            lines.append([word])
    out = []
    for line in lines:
        cells: list[list[str]] = [[] for _ in range(len(edges) - 1)]
        for word in sorted(line, key=lambda w: w["x0"]):
            cells[_column((word["x0"] + word["x1"]) / 2, edges)].append(word["text"])
        out.append([" ".join(cell) for cell in cells])
    return out


def _header(row: Any, words: list[dict[str, Any]], edges: list[float]) -> list[str]:
    """Each finest column's label: the labels of the header cell it is under, the group labels first."""
    labels: list[list[str]] = [[] for _ in range(len(edges) - 1)]
    for cell in row.cells:
        if cell is None:
            continue
        first, last = _column(cell[0] + _SNAP, edges), _column(cell[2] - _SNAP, edges)
        lines = _lines(cell, words, edges)
        if first == last:
            labels[first] += [line[first] for line in lines if line[first]]
            continue
        *groups, own = lines or [[]]
        group = " ".join(text for line in groups for text in line if text)
        for column in range(first, last + 1):
            labels[column] += [text for text in (group, own[column] if own else "") if text]
    return [" ".join(label) for label in labels]
