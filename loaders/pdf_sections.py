"""A PDF's section breadcrumb (``"1 Topologische Grundbegriffe > 1.1 Topologische Räume"``), like the Word loader's:
from the PDF's outline (bookmarks) when it has one, else from headings found by their size and weight.

A heading found by its look is a line of at most 15 words, not ending in a comma, starting with a letter or a
number, its brackets closed, and: set at least 1.2 times the body size and bold or numbered; or bold and numbered
("2.3 Data", "A.1 Proofs"); or bold, larger than the body and at most 5 words without footnote marks (author names
in a paper's title block carry ``†``, ``∗``). Size alone is not enough: the labels in a paper's figures are often
the largest text on their page. Its rank is its size first, then the depth of its numbering: a heading closes the
open ones it does not outrank.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loaders.pdf_text import Line

if TYPE_CHECKING:
    import pypdfium2 as pdfium

_NUMBERED = re.compile(r"(\d+(?:\.\d+)*|[A-Z](?:\.\d+)+|[IVX]+)\.?\s+\S")
_NUMBER = re.compile(r"^\s*(?:\d+(?:\.\d+)*|[A-Z](?:\.\d+)+)\.?\s*")
_MARKS = re.compile(r"[†‡∗*@,;:\d]")
_XYZ = 1  # PDFium's view mode for a destination (left, top, zoom)

#: (size rank, depth): lower outranks higher.
Rank = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Heading:
    title: str
    rank: Rank


@dataclass(frozen=True, slots=True)
class OutlineEntry:
    page: int  # 0-based
    top: float | None  # from the page's top, in points
    title: str
    level: int


def outline(pdf: pdfium.PdfDocument, heights: list[float]) -> list[OutlineEntry]:
    """The outline's entries that point at a page of this PDF, in outline order."""
    entries = []
    for item in pdf.get_toc():
        dest = item.get_dest()
        title = " ".join((item.get_title() or "").split())
        if dest is None or not title:
            continue
        page = dest.get_index()
        if page is None or not 0 <= page < len(heights):
            continue
        mode, position = dest.get_view()
        top = heights[page] - position[1] if mode == _XYZ and len(position) > 1 and position[1] else None
        entries.append(OutlineEntry(page, top, title, item.level))
    return entries


def outline_headings(entries: list[OutlineEntry], page: int, lines: list[Line]) -> dict[int, Heading]:
    """The lines of one page (by index) that the outline's entries for that page start, with their heading."""
    found: dict[int, Heading] = {}
    for entry in (e for e in entries if e.page == page):
        key = _squash(_NUMBER.sub("", entry.title))[:24]
        candidates = [
            k
            for k, line in enumerate(lines)
            if k not in found
            and (squashed := _squash(_NUMBER.sub("", line.text))).startswith(key)
            and len(squashed) <= len(_squash(entry.title)) + 2  # the heading, not a sentence that starts alike
        ]
        if not candidates and entry.top is not None:
            candidates = [k for k, line in enumerate(lines) if k not in found and line.box[1] >= entry.top - 2]
        if candidates:
            found[candidates[0]] = Heading(entry.title, (0, entry.level))
    return found


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def rank(line: Line) -> Rank:
    """A heading line's rank: its size, then the depth of its numbering."""
    numbered = _NUMBERED.match(line.text)
    return (-round(line.size), numbered.group(1).count(".") + 1 if numbered else 1)


def looks_like_heading(line: Line, body: float) -> Heading | None:
    """The heading `line` is by its look (see the module docstring), or None."""
    text = line.text
    words = len(text.split())
    if words > 15 or text.endswith((",", ";")) or line.size < 0.95 * body or not any(c.isalpha() for c in text):
        return None
    numbered = _NUMBERED.match(text)
    if (not text[0].isalpha() and not numbered) or text.count("(") != text.count(")"):
        return None  # labels of a figure's parts ("+ Query paper (P", "PQ"): not a heading
    if line.size >= 1.2 * body and (line.bold or numbered):
        return Heading(text, rank(line))
    if not (line.bold and line.size >= 0.95 * body):
        return None
    if numbered or (line.size >= 1.05 * body and words <= 5 and not _MARKS.search(text)):
        return Heading(text, rank(line))
    return None


@dataclass
class Trail:
    """The open headings, outermost first."""

    open: list[Heading] = field(default_factory=list)

    def enter(self, heading: Heading) -> None:
        while self.open and self.open[-1].rank >= heading.rank:
            self.open.pop()
        self.open.append(heading)

    def section(self) -> str:
        return " > ".join(heading.title for heading in self.open)
