"""How files are read: the reading policies a caller can set, in one small object.

Kept free of heavy imports: ``pipelines.settings`` takes its enums from here, and ``qwen-rag --help`` imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loaders.errors import LoadError

PageErrorHandler = Callable[["LoadError"], None]


class OcrMode(StrEnum):
    """When text is recognised from pixels (RapidOCR)."""

    AUTO = "auto"  # image files, and PDF pages without a text layer
    ALWAYS = "always"  # image files, and every PDF page (its text layer is ignored)
    NEVER = "never"  # no OCR: image files are not read, text-less PDF pages are reported


class LayoutMode(StrEnum):
    """When a PDF page's layout is read by the layout model (loaders.pdf_layout, about 0.28 CPU s a page) rather
    than by the text rules alone (about 0.02 CPU s a page)."""

    AUTO = "auto"  # pages read by OCR (their lines need an order, their tables a shape); the text rules elsewhere
    MODEL = "model"  # every page
    OFF = "off"  # never: the text rules (and the OCR's own line order) only


@dataclass(frozen=True)
class ReadOptions:
    """What every loader may be told. ``on_page_error`` receives each page (PDF page, slide, sheet) skipped
    because it cannot be read, as a ``LoadError`` with ``page``; None logs it as a warning."""

    pdf_password: str | None = None
    ocr: OcrMode = OcrMode.AUTO
    layout: LayoutMode = LayoutMode.AUTO
    on_page_error: PageErrorHandler | None = None
