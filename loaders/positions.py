"""Where a chunk's text stands on its pages: the contract between the PDF loader and the chunker.

A loader that knows where its lines are puts ``metadata[LINE_BOXES]``: a JSON string (metadata stays str, int,
float and bool everywhere) of one ``[start, end, page, x0, top, x1, bottom]`` per line, ``start``/``end``
character offsets in the Document's ``page_content``, the box in PDF points from the page's top-left corner. The
chunker removes it and gives each chunk ``boxes``: the union of the boxes of the lines its text meets, one per
page, as a compact JSON string as well: ``[[page, x0, top, x1, bottom], ...]``.

>>> chunk_boxes([(0, 5, 1, 10, 20, 100, 30), (6, 11, 1, 10, 32, 90, 42), (12, 20, 2, 5, 5, 50, 15)], 3, 8)
'[[1,10,20,100,42]]'
"""

from __future__ import annotations

import json
from collections.abc import Sequence

#: Metadata key of a Document's line positions; the chunker turns it into ``boxes``.
LINE_BOXES = "line_boxes"
#: Metadata key of a chunk's boxes (a JSON string).
BOXES = "boxes"

LineBox = tuple[int, int, int, float, float, float, float]


def line_boxes_json(lines: Sequence[LineBox]) -> str:
    """``metadata[LINE_BOXES]`` for these lines."""
    return json.dumps([[a, b, page, *(round(v, 1) for v in box)] for a, b, page, *box in lines], separators=(",", ":"))


def chunk_boxes(lines: str | Sequence[Sequence[float]], start: int, end: int) -> str | None:
    """The boxes of the text ``[start, end)``, per page (see the module docstring); None if no line is in it.
    `lines` is ``metadata[LINE_BOXES]`` (its JSON string, or the list it holds)."""
    rows: Sequence[Sequence[float]] = json.loads(lines) if isinstance(lines, str) else lines
    pages: dict[int, list[float]] = {}
    for first, stop, number, x0, top, x1, bottom in rows:
        page = int(number)
        if first >= end or stop <= start:
            continue
        box = pages.get(page)
        if box is None:
            pages[page] = [x0, top, x1, bottom]
        else:
            box[:] = [min(box[0], x0), min(box[1], top), max(box[2], x1), max(box[3], bottom)]
    if not pages:
        return None
    return ",".join(box_json(page, box)[1:-1] for page, box in pages.items()).join("[]")


def box_json(page: int, box: Sequence[float]) -> str:
    """One box on one page as ``boxes`` metadata."""
    return json.dumps([[page, *(round(v, 1) for v in box)]], separators=(",", ":"))


def parse_boxes(value: object) -> list[list[float]]:
    """``boxes`` metadata back as a list (empty when absent or unreadable), for what shows passages."""
    if not isinstance(value, str):
        return []
    try:
        boxes = json.loads(value)
    except ValueError:
        return []
    return [list(box) for box in boxes if isinstance(box, list) and len(box) == 5] if isinstance(boxes, list) else []
