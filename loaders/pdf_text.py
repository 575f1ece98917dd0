"""A PDF page's text lines from its glyph positions (PDFium's text page), each with its box, size and weight.

Why PDFium (pypdfium2, already a dependency for rendering) and not pdfplumber/pdfminer or pypdf: measured on the
shared samples (benchmarks/bench_pdf.py, docs/benchmarks.md), the whole PDF loader on PDFium (these lines, the
rules, the tables) reads 58-70 pages per CPU second, pdfplumber's ``extract_text()`` alone 8 and pypdf's 29;
PDFium puts a space where glyphs stand apart (the NICS table's "0 2,248 1,135" that pypdf fused to
"02,2481,135") and breaks lines where the baseline moves, in the order the page draws them, which for the
typesetters of the samples (LaTeX, Word, InDesign) is column order. pdfplumber stays for what it does best: finding
ruled tables (loaders.pdf_tables).

Coordinates are PDF points with the origin at the top-left corner of the page (y grows downwards), as pdfplumber and
image renderers count: ``(x0, top, x1, bottom)``.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pypdfium2 as pdfium

#: (x0, top, x1, bottom) in PDF points from the page's top-left corner.
Box = tuple[float, float, float, float]

# Latin ligature glyphs (ﬁ, ﬂ, ...) come out of many fonts as single characters; "ﬁlled" then matches neither
# "filled" in lexical search nor its usual tokens. Only these are replaced: NFKC would also rewrite CJK punctuation.
# Control characters are glyphs of fonts without a Unicode map (TeX math fonts put the minus sign at code 0); a NUL
# or stray C1 byte is no use downstream, so they become spaces. U+FFFE is PDFium's mark for a hyphen it found at a
# line's end: it becomes the hyphen it was, and loaders.pdf_flow decides whether the word is joined.
CLEANUP = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st", "\ufffe": "-", "\u00ad": "-"}
    | dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)], " ")
)
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi|cmbx|-bd|medi", re.IGNORECASE)
_BOLD_WEIGHT = 600
_LINE = re.compile(r"[^\n\ufffe]*(?:\ufffe|\n)|[^\n\ufffe]+$")


@dataclass(slots=True)
class Line:
    """One line of text as the page draws it."""

    text: str
    box: Box
    size: float  # font size in points
    bold: bool

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(slots=True)
class Char:
    """One glyph, for cutting a table into cells."""

    text: str
    box: Box
    size: float


def page_lines(page: pdfium.PdfPage) -> list[Line]:
    """The page's lines in drawing order, blank ones left out."""
    import pypdfium2.raw as raw

    textpage = page.get_textpage()
    try:
        height = page.get_height()
        text = textpage.get_text_range()
        lines: list[Line] = []
        # PDFium ends a line at "\r\n", except after a hyphen it took for a soft one: then it writes U+FFFE and
        # goes on with the next line, which must stay a line of its own (its own box; loaders.pdf_flow decides).
        for match in _LINE.finditer(text):
            start, content = match.start(), match.group().rstrip("\r\n")
            stripped = content.strip()
            if not stripped:
                continue
            first = start + len(content) - len(content.lstrip())
            last = first + len(stripped) - 1
            lo = raw.FPDFText_GetCharIndexFromTextIndex(textpage, first)
            hi = raw.FPDFText_GetCharIndexFromTextIndex(textpage, last)
            if lo < 0 or hi < lo:
                continue
            box = _range_box(textpage, lo, hi - lo + 1, height)
            if box is None:
                continue
            clean = " ".join(stripped.translate(CLEANUP).split())
            if clean:
                # A line's size: the middle one of its first, middle and last glyph's (a footnote starts with a
                # superscript, a line of a formula may start or end with a subscript).
                size = sorted(raw.FPDFText_GetFontSize(textpage, k) for k in (lo, (lo + hi) // 2, hi))[1]
                # Bold: the whole line (its first and last glyph), not a run-in heading's first words.
                lines.append(Line(clean, box, size, _bold(textpage, lo) and _bold(textpage, hi)))
        return lines
    finally:
        textpage.close()


def page_chars(page: pdfium.PdfPage) -> list[Char]:
    """Every glyph of the page with its box, the spaces the page has too (PDFium's own guesses at spaces and line
    breaks left out)."""
    import pypdfium2.raw as raw

    textpage = page.get_textpage()
    try:
        height = page.get_height()
        rect = raw.FS_RECTF()
        chars: list[Char] = []
        for index in range(textpage.count_chars()):
            if raw.FPDFText_IsGenerated(textpage, index) == 1:
                continue
            code = raw.FPDFText_GetUnicode(textpage, index)
            # The loose box: the font's ascent to descent and the glyph's advance, the same height for every glyph
            # of a line (a comma's tight box would sit below the digits' line) and no gap inside a word.
            if code in (0x0A, 0x0D, 0xFFFE) or not raw.FPDFText_GetLooseCharBox(textpage, index, rect):
                continue
            chars.append(
                Char(
                    chr(code).translate(CLEANUP),
                    (rect.left, height - rect.top, rect.right, height - rect.bottom),
                    raw.FPDFText_GetFontSize(textpage, index),
                )
            )
        return chars
    finally:
        textpage.close()


def _range_box(textpage: pdfium.PdfTextPage, index: int, count: int, height: float) -> Box | None:
    """The union of PDFium's text rectangles over the glyphs ``index`` .. ``index + count - 1``."""
    rects = [textpage.get_rect(k) for k in range(textpage.count_rects(index, count))]
    if not rects:
        return None
    return (
        min(r[0] for r in rects),
        height - max(r[3] for r in rects),
        max(r[2] for r in rects),
        height - min(r[1] for r in rects),
    )


def _bold(textpage: pdfium.PdfTextPage, index: int) -> bool:
    """Weight from the font when it says (many embedded fonts say -1), else from the font's name (CMBX10, *-Bold)."""
    import pypdfium2.raw as raw

    weight = raw.FPDFText_GetFontWeight(textpage, index)
    if weight > 0:
        return bool(weight >= _BOLD_WEIGHT)
    size = raw.FPDFText_GetFontInfo(textpage, index, None, 0, None)
    if size <= 0:
        return False
    buffer = ctypes.create_string_buffer(size)
    raw.FPDFText_GetFontInfo(textpage, index, buffer, size, None)
    return bool(_BOLD_NAME.search(buffer.value.decode("utf-8", "replace")))


def union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
