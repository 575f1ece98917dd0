"""Pages for the OCR tests, rendered from known text: images of a few short lines, image-only PDFs, and PDFs
with a real text layer.

Kept small on purpose (a few lines, well under a megapixel): OCR takes seconds on a dense page, and the suite
must stay fast. Chinese needs a CJK font; without one the tests fail and say which Debian package to install.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

FONT_PACKAGE = "fonts-wqy-microhei"
DPI = 200
TEXT_PX = 40  # glyph size: about 14 pt at 200 dpi, body text in a scan
MARGIN = 60


@cache
def cjk_font() -> str:
    """A font with Chinese (and Latin) glyphs, found by fontconfig; fails the test when there is none."""
    try:
        found = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:  # no fontconfig at all
        found = ""
    paths = sorted(line.split(":")[0].strip() for line in found.splitlines() if line.strip())
    if not paths:
        pytest.fail(f"no CJK font for the OCR tests: apt-get install -y {FONT_PACKAGE}", pytrace=False)
    return paths[0]


def render(lines: Sequence[str], *, width: int = 1000) -> Image.Image:
    """`lines` in black on a white RGB canvas, one per row, 1.5 lines apart."""
    font = ImageFont.truetype(cjk_font(), TEXT_PX)
    pitch = TEXT_PX * 3 // 2
    image = Image.new("RGB", (width, 2 * MARGIN + pitch * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        assert font.getlength(line) <= width - 2 * MARGIN, f"line too long for the page: {line!r}"
        draw.text((MARGIN, MARGIN + row * pitch), line, font=font, fill="black")
    return image


def image_pdf(path: Path, pages: Sequence[Image.Image]) -> Path:
    """An image-only PDF (no text layer), one page per image, at `DPI` (a scan)."""
    pages[0].save(path, save_all=True, append_images=list(pages[1:]), resolution=DPI)
    return path


def text_pdf(path: Path, lines: Sequence[str], *, images: Sequence[Image.Image] = ()) -> Path:
    """A PDF whose first page has `lines` as real text (Helvetica, ASCII), then one image-only page per image."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=420, height=300)
    helvetica = {"/Type": "/Font", "/Subtype": "/Type1", "/BaseFont": "/Helvetica"}
    font = DictionaryObject({NameObject(k): NameObject(v) for k, v in helvetica.items()})
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
    )
    shown = " ".join(f"({line}) Tj 0 -30 Td" for line in lines)
    content = DecodedStreamObject()
    content.set_data(f"BT /F1 18 Tf 30 250 Td {shown} ET".encode("ascii"))
    page.replace_contents(content)
    if images:
        scanned = image_pdf(path.with_suffix(".scan.pdf"), images)
        for scanned_page in PdfReader(scanned).pages:
            writer.add_page(scanned_page)
    writer.write(path)
    return path
