"""Ruled tables on a PDF page, as a header and rows of cell texts: pdfplumber's table finder (MIT) turns the page's
rules into a grid of cells, the glyphs' positions give the rows.

pdfplumber is used for its algorithm, not its parser: its ``lines`` strategy (snap and join the rules, find their
crossings, cells from the crossings, tables from touching cells) runs on rules read with PDFium (thin paths and
the sides of boxes, as pdfplumber makes edges of them) and on PDFium's glyphs. pdfplumber's own parsing (pdfminer)
costs about a second per dense page; this costs tens of milliseconds, so it runs on every page whose drawing has a
grid (:func:`grid_edges`) without spoiling the default's speed.

Why the glyphs and not the cells' text as pdfplumber extracts it: tables often rule only every few rows (the NICS
table's bands of five states), and a cell then holds five figures on five lines. Here each line of words inside a
ruled row is a row of its own, and each word goes to the column of the finest grid (every cell edge of the table)
its middle falls in. The header is the first ruled row with more than one cell: a label spanning several columns
(a group, "Pre-Pawn" over "Handgun | Long Gun | *Other") is put in front of each column's own label ("Pre-Pawn
Handgun"), so that a piece of the table cut far from its top still says what each column is. Rows of one cell
across the whole table (a title, notes) are left to the page's text. Words are glyphs less than 3 points apart
(pdfplumber's default ``x_tolerance``).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loaders.pdf_text import Box, Char, page_chars

if TYPE_CHECKING:
    import pypdfium2 as pdfium

_THIN = 2.0  # points: a path this thin is a rule
_LONG = 8.0  # points: and at least this long
_MIN_RULES = 3
_BOX_SEGMENTS = 5  # a rectangle's path: a move, three lines and a close (a curve has many more)
_TOLERANCE = 3.0  # points: pdfplumber's default snap, join, intersection and x tolerances
_SNAP = 2.0  # points: cell edges this close are one column edge


@dataclass(frozen=True, slots=True)
class Table:
    """A table found on a page: its header, its rows (all as wide as the header) and where it stands."""

    header: list[str]
    rows: list[list[str]]
    box: Box


def grid_edges(page: pdfium.PdfPage) -> list[dict[str, Any]]:
    """The page's rules as pdfplumber edges (top-left origin), if they form a grid: rules of one extent at 3 or
    more heights and rules of one extent at 3 or more x positions; else none. A frame (2 and 2), a fraction bar,
    the axes of a diagram are not a grid: the rows and columns of a ruled table share their ends."""
    import pypdfium2.raw as raw

    height = page.get_height()
    edges: list[dict[str, Any]] = []
    across: dict[tuple[int, int], set[int]] = defaultdict(set)  # (x0, x1) -> the heights ruled over it
    down: dict[tuple[int, int], set[int]] = defaultdict(set)  # (top, bottom) -> the x ruled along it
    for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_PATH], max_depth=2):
        left, bottom, right, top = obj.get_bounds()
        top, bottom = height - top, height - bottom
        if bottom - top <= _THIN and right - left >= _LONG:
            sides = [("h", left, right, (top + bottom) / 2)]
        elif right - left <= _THIN and bottom - top >= _LONG:
            sides = [("v", top, bottom, (left + right) / 2)]
        elif right - left >= _LONG and bottom - top >= _LONG and raw.FPDFPath_CountSegments(obj.raw) <= _BOX_SEGMENTS:
            sides = [
                ("h", left, right, top),
                ("h", left, right, bottom),
                ("v", top, bottom, left),
                ("v", top, bottom, right),
            ]
        else:
            continue
        for orientation, start, end, at in sides:
            if orientation == "h":
                across[round(start), round(end)].add(round(at))
                edges.append(
                    {
                        "orientation": "h",
                        "x0": start,
                        "x1": end,
                        "top": at,
                        "bottom": at,
                        "width": end - start,
                        "height": 0.0,
                    }
                )
            else:
                down[round(start), round(end)].add(round(at))
                edges.append(
                    {
                        "orientation": "v",
                        "x0": at,
                        "x1": at,
                        "top": start,
                        "bottom": end,
                        "width": 0.0,
                        "height": end - start,
                    }
                )
    if max(map(len, across.values()), default=0) < _MIN_RULES or max(map(len, down.values()), default=0) < _MIN_RULES:
        return []
    return edges


def page_tables(page: pdfium.PdfPage) -> list[Table]:
    """The ruled tables on the page (none when it draws no grid)."""
    edges = grid_edges(page)
    if not edges:
        return []
    from pdfplumber.table import Table as Grid
    from pdfplumber.table import cells_to_tables, edges_to_intersections, intersections_to_cells, merge_edges

    merged = [
        e
        for e in merge_edges(edges, _TOLERANCE, _TOLERANCE, _TOLERANCE, _TOLERANCE)
        if (e["x1"] - e["x0"] if e["orientation"] == "h" else e["bottom"] - e["top"]) >= _TOLERANCE
    ]
    cells = intersections_to_cells(edges_to_intersections(merged, _TOLERANCE, _TOLERANCE))
    grids = [Grid(None, group) for group in cells_to_tables(cells)]  # type: ignore[arg-type]  # rows and bbox need no page
    if not grids:
        return []
    words = glyph_words(page_chars(page))
    return [table for grid in grids if (table := _shape(grid, words)) is not None]


def glyph_words(chars: list[Char]) -> list[dict[str, Any]]:
    """Glyphs less than `_TOLERANCE` points apart on one line and no space between them, as pdfplumber-like
    words."""
    words: list[dict[str, Any]] = []
    broken = False  # a space since the last glyph
    for char in sorted(chars, key=lambda c: (round((c.box[1] + c.box[3]) / 2), c.box[0])):
        x0, top, x1, bottom = char.box
        if char.text.isspace():
            broken = True
            continue
        last = None if broken or not words else words[-1]
        broken = False
        if (
            last is not None
            and abs((top + bottom) / 2 - (last["top"] + last["bottom"]) / 2) < (bottom - top) / 2
            and -_TOLERANCE <= x0 - last["x1"] <= _TOLERANCE
        ):
            last.update(
                text=last["text"] + char.text,
                x1=max(x1, last["x1"]),
                top=min(top, last["top"]),
                bottom=max(bottom, last["bottom"]),
            )
        else:
            words.append({"text": char.text, "x0": x0, "x1": x1, "top": top, "bottom": bottom})
    return words


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


def words_table(words: list[dict[str, Any]], box: Box) -> Table | None:
    """A table without rules (a region the layout model calls a table) from its words: rows are lines of words,
    columns the x ranges no word crosses; the first row is the header. None for fewer than 2 rows or columns."""
    inside = [w for w in words if _inside(w, box)]
    spans: list[list[float]] = []
    for word in sorted(inside, key=lambda w: w["x0"]):
        if spans and word["x0"] <= spans[-1][1] + _TOLERANCE:
            spans[-1][1] = max(spans[-1][1], word["x1"])
        else:
            spans.append([word["x0"], word["x1"]])
    if len(spans) < 2:
        return None
    edges = [box[0], *((a[1] + b[0]) / 2 for a, b in itertools.pairwise(spans)), box[2]]
    header, *rows = _lines(box, inside, edges)
    if not rows:
        return None
    return Table(header, rows, box)
