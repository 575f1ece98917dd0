"""A page's layout from its picture: rapid-layout's PP-Layout CDLA model (Apache-2.0, 7.4 MB ONNX shipped in the
wheel, no download) finds regions of text, title, figure, table, header, footer, reference, equation and captions.

What the loader takes from it (loaders.pdf_layer): lines in ``header``/``footer`` regions are dropped, lines in a
``title`` region are headings, lines in a ``table`` region become a table (:func:`loaders.pdf_tables.words_table`),
and the lines are read region by region in column order (:func:`reading_order`). The text itself still comes from
the text layer (or the OCR): the model only says what the text is and in which order it goes.

Cost: about 0.28 CPU seconds a page, 1 page a second on the busy 2 cores, and 240 MB more peak memory
(benchmarks/bench_pdf.py), against 15-20 CPU milliseconds for the text rules: see loaders.options.LayoutMode for
when it runs. The engine is created once per process, on first use,
with one onnxruntime thread (pages are read one per core, like OCR's).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loaders.pdf_text import Box

if TYPE_CHECKING:
    import pypdfium2 as pdfium

logger = logging.getLogger("loaders.pdf")
_SCALE = 1.0  # render at 72 dpi: the model resizes every page to 800 x 608 pixels anyway
_lock = threading.Lock()
_engine: Any = None


@dataclass(frozen=True, slots=True)
class Region:
    kind: str  # text, title, figure, figure_caption, table, table_caption, header, footer, reference, equation
    box: Box  # PDF points from the page's top-left corner
    score: float


def engine() -> Any:
    """This process's layout model, created on first call (thread-safe)."""
    global _engine
    with _lock:
        if _engine is None:
            from rapid_layout import RapidLayout

            _quiet()
            _engine = RapidLayout(engine_cfg={"intra_op_num_threads": 1, "inter_op_num_threads": 1})
        return _engine


class _Demote(logging.Handler):
    """Passes rapid-layout's records on to our logger at DEBUG level."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("rapid-layout: %s", record.getMessage())


def _quiet() -> None:
    """rapid-layout gives each of its modules a logger with its own coloured stderr handler at INFO ("File exists
    and is valid", "Using engine_name"): its business, kept at DEBUG on ours."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("rapid_layout", "RapidLayout")):
            found = logging.getLogger(name)
            for handler in list(found.handlers):
                found.removeHandler(handler)
            found.addHandler(_Demote())
            found.propagate = False


def page_regions(page: pdfium.PdfPage) -> list[Region]:
    """The regions the model finds on a page (rendered here at 72 dpi: one pixel, one point)."""
    image = page.render(scale=_SCALE).to_numpy()
    return image_regions(image, 1 / _SCALE)


def image_regions(image: Any, points_per_pixel: float) -> list[Region]:
    """The regions in a page's picture (an RGB array), their boxes in points."""
    result = engine()(image)
    if result.boxes is None:
        return []
    return [
        Region(
            str(kind),
            (x0 * points_per_pixel, y0 * points_per_pixel, x1 * points_per_pixel, y1 * points_per_pixel),
            float(score),
        )
        for (x0, y0, x1, y1), kind, score in zip(result.boxes, result.class_names, result.scores, strict=True)
    ]


def region_of(box: Box, regions: Sequence[Region]) -> Region | None:
    """The region holding the middle of `box` (the smallest, where they nest)."""
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    holding = [r for r in regions if r.box[0] <= x <= r.box[2] and r.box[1] <= y <= r.box[3]]
    return min(holding, key=lambda r: (r.box[2] - r.box[0]) * (r.box[3] - r.box[1]), default=None)


def reading_order(regions: Sequence[Region], width: float) -> list[Region]:
    """Regions in the order a reader takes them: a region as wide as most of the page (a title, a figure across
    both columns) ends a band; within a band, the left column top to bottom, then the right one."""
    ordered: list[Region] = []
    band: list[Region] = []

    def flush() -> None:
        middle = width / 2
        band.sort(key=lambda r: (r.box[0] >= middle - 0.05 * width, r.box[1]))
        ordered.extend(band)
        band.clear()

    for region in sorted(regions, key=lambda r: r.box[1]):
        if region.box[2] - region.box[0] > 0.55 * width:
            flush()
            ordered.append(region)
        else:
            band.append(region)
    flush()
    return ordered
