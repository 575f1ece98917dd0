"""OCR: the text in an image, with RapidOCR (PP-OCRv6 detection and recognition models on onnxruntime).

Why RapidOCR: its wheel ships the models (no download, no model hub), one multilingual recogniser reads Chinese
and English together, and it runs on the CPU through onnxruntime, which the project already has.

The engine is created once per process, on first use: importing rapidocr (OpenCV, onnxruntime) and loading the
two models take about a second, which a run that never meets an image or a scanned page should not pay. This
module itself imports neither until then.

Parallelism is by image, not inside one: the engine's onnxruntime sessions run each call on the calling thread
(one intra-op thread), and a caller with several pages reads `page_workers()` of them at once in threads, sharing
the engine (onnxruntime sessions take concurrent calls; RapidOCR keeps no per-call state). Measured on 2 cores
with benchmarks/bench_ocr.py, dense A4 pages: on an idle machine one thread reads a page in 2.9-3.7 s, two
onnxruntime threads in 1.7-2.7 s for 15-40% more CPU (they spin and synchronise on every operator), and two pages
side by side, one thread each, in 1.7-2.0 s per page at the one-thread CPU cost (93% of it is spent inside
onnxruntime, GIL released). With other processes taking 1.4 of the 2 cores, two threads per page is the slowest
(9.0 s/page against 6.8, 5.7 CPU seconds against 4.1). So: one thread per page, one page per core.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loaders.errors import LoadError

if TYPE_CHECKING:
    from PIL import Image
    from rapidocr import RapidOCR
    from rapidocr.utils.output import RapidOCROutput

logger = logging.getLogger("loaders.ocr")

#: Longest side, in pixels, of what the detector is given. RapidOCR shrinks any larger image to this itself (its
#: detector is trained on pages of about 960-2000 px, and text lines are read from the shrunk copy too); doing it
#: first, with a good filter, spares converting a 50-megapixel photo to an array only to throw most of it away.
MAX_SIDE = 2000
# The files inside the rapidocr 3.10.0 wheel. Naming them makes rapidocr open them directly: given no path, it
# looks them up in its model list and calls its downloader, which only skips the download when the file exists
# and its SHA-256 matches.
_MODELS = {"Det": "PP-OCRv6_det_small.onnx", "Rec": "PP-OCRv6_rec_small.onnx"}
# Chinese and Japanese put no spaces between words: two pieces of one row meeting at such a character are joined
# without one. Hangul is left out: Korean separates words with spaces.
_CJK = re.compile(
    "[\u2e80-\u2fdf\u3000-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f"
    "\uff00-\uffef\U00020000-\U0003134f]"
)
# Two pieces are on one row when their vertical centres are closer than this fraction of the smaller height:
# pieces of one line differ by a few pixels (skew, descenders); consecutive lines by more than a line height.
_ROW_TOLERANCE = 0.5

_engine: RapidOCR | None = None
_engine_lock = threading.Lock()


class _Demote(logging.Handler):
    """Passes RapidOCR's records on to our logger at DEBUG level."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("rapidocr: %s", record.getMessage())


def page_workers() -> int:
    """How many images to read at once, each in its own thread: one per core this process may run on."""
    return len(os.sched_getaffinity(0))


def create_engine(threads: int = 1) -> RapidOCR:
    """A new RapidOCR engine on the models shipped in its wheel, the text-line rotation classifier off, with
    `threads` onnxruntime intra-op threads per call.

    The classifier is off because RapidOCR 3.x's turns upright English lines upside down (they then read as
    garbage); pages are upright in practice, and photographed ones are turned by their EXIF orientation.
    """
    import rapidocr
    from rapidocr.utils.log import logger as rapidocr_logger

    # RapidOCR prints to stderr through its own handler ("the text detection result is empty" for every blank
    # page). That is its business, not the user's: keep the records, at DEBUG, on our logger.
    for handler in list(rapidocr_logger.handlers):
        rapidocr_logger.removeHandler(handler)
    rapidocr_logger.addHandler(_Demote())

    models = Path(rapidocr.__file__).parent / "models"
    params: dict[str, object] = {
        "Global.use_cls": False,
        "Global.log_level": "warning",
        "Global.max_side_len": MAX_SIDE,
        # RapidOCR's default scales an image *up* until its short side is 736 px: a one-line 1000x180 crop is
        # detected at 4089x736, a page's worth of work for one line. Only scaling down (pages are unchanged:
        # 200 dpi A4 is 1414x2000 after MAX_SIDE) made small images ~30x faster to read, and no less accurate
        # down to 10 px text.
        "Det.limit_type": "max",
        "Det.limit_side_len": MAX_SIDE,
        # One session runs one model at a time: inter-op threads would only idle.
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
    }
    for section, name in _MODELS.items():
        path = models / name
        if not path.is_file():
            raise LoadError(f"OCR model missing: {path} (reinstall rapidocr==3.10.0)")
        params[f"{section}.model_path"] = str(path)
    return rapidocr.RapidOCR(params=params)


def engine() -> RapidOCR:
    """This process's engine, created on first call (thread-safe); every call after that returns it.

    One onnxruntime thread per call: parallelism comes from calling it from several threads (`page_workers`).
    """
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = create_engine()
    return _engine


def recognise(image: Image.Image, ocr: RapidOCR | None = None) -> str:
    """The text in `image`: its lines in reading order, one per line; "" when none is found.

    `ocr` is the engine to use (default: this process's). Any Pillow mode is accepted; transparent pixels count
    as white (a transparent PNG's background is often black underneath).

    Usage::

        with Image.open("scan.png") as image:
            text = recognise(image)
    """
    result = _run(_prepare(image), ocr)
    if not result.txts or result.boxes is None:
        return ""
    return reading_order(result.boxes.tolist(), result.txts)


def recognise_boxes(
    image: Image.Image, ocr: RapidOCR | None = None
) -> list[tuple[tuple[float, float, float, float], str]]:
    """The text boxes in `image`, each ``((x0, top, x1, bottom), text)`` in `image`'s pixels, as detected; for a
    caller that lays the page out itself (loaders.pdf)."""
    prepared = _prepare(image)
    result = _run(prepared, ocr)
    if not result.txts or result.boxes is None:
        return []
    scale = image.width / prepared.width
    boxes = []
    for box, text in zip(result.boxes, result.txts, strict=True):
        if text.strip():
            xs, ys = [float(p[0]) * scale for p in box], [float(p[1]) * scale for p in box]
            boxes.append(((min(xs), min(ys), max(xs), max(ys)), text.strip()))
    return boxes


def _run(image: Image.Image, ocr: RapidOCR | None) -> RapidOCROutput:
    """RapidOCR on a prepared image (given a PIL image, it turns RGB into the BGR it expects)."""
    from rapidocr.utils.output import RapidOCROutput

    result = (ocr or engine())(image)
    assert isinstance(result, RapidOCROutput)  # detection and recognition are on: the whole pipeline's output
    return result


def reading_order(boxes: Sequence[Sequence[Sequence[float]]], texts: Sequence[str]) -> str:
    """The `texts` of detected `boxes` (4 corner points each, pixels) as lines: rows top to bottom, the pieces of
    a row left to right, joined by a space (none where a CJK character meets its neighbour).

    Several columns side by side come out row by row across the columns: telling columns apart is layout
    analysis, which this does not attempt.
    """
    pieces = [_Piece.of(box, text) for box, text in zip(boxes, texts, strict=True) if text.strip()]
    return "\n".join(_join_row(row) for row in _rows(pieces))


def _prepare(image: Image.Image) -> Image.Image:
    """`image` as RGB on a white background, its longest side at most `MAX_SIDE`."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        flat = Image.new("RGBA", image.size, "white")
        flat.alpha_composite(image.convert("RGBA"))
        image = flat
    elif image.mode.startswith("I") or image.mode == "F":
        image = _stretch_to_8_bits(image)
    image = image.convert("L" if image.mode in ("1", "L") else "RGB")  # shrink grey pages as grey: a third the work
    if max(image.size) > MAX_SIDE:
        ratio = MAX_SIDE / max(image.size)
        size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image.convert("RGB")


def _stretch_to_8_bits(image: Image.Image) -> Image.Image:
    """A 16- or 32-bit grey image (archival and medical scans) as 8-bit grey, its darkest pixel black and its
    lightest white. Pillow's own conversion clips every value over 255 to white: the page would come out blank."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(image, dtype=np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    return Image.fromarray(((pixels - low) * (255 / max(high - low, 1))).astype(np.uint8))


@dataclass(frozen=True)
class _Piece:
    """One detected text box: its vertical extent, left edge and recognised text."""

    top: float
    bottom: float
    left: float
    text: str

    @classmethod
    def of(cls, box: Sequence[Sequence[float]], text: str) -> _Piece:
        ys = [float(point[1]) for point in box]
        return cls(min(ys), max(ys), min(float(point[0]) for point in box), text.strip())

    @property
    def centre(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def height(self) -> float:
        return self.bottom - self.top


def _rows(pieces: Iterable[_Piece]) -> list[list[_Piece]]:
    """`pieces` grouped into rows, top to bottom, each row left to right."""
    rows: list[list[_Piece]] = []
    for piece in sorted(pieces, key=lambda p: p.centre):
        if rows:
            row = rows[-1]
            centre = sum(p.centre for p in row) / len(row)
            height = min(piece.height, *(p.height for p in row))
            if abs(piece.centre - centre) <= _ROW_TOLERANCE * height:
                row.append(piece)
                continue
        rows.append([piece])
    return [sorted(row, key=lambda p: p.left) for row in rows]


def _join_row(row: Sequence[_Piece]) -> str:
    text = row[0].text
    for piece in row[1:]:
        cjk = _CJK.match(text[-1:]) or _CJK.match(piece.text[:1])
        text += ("" if cjk else " ") + piece.text
    return text
