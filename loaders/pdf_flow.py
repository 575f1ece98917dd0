"""From a PDF's lines (loaders.pdf_text) to running text: the page furniture dropped, footnotes after the body,
the lines of a paragraph joined, words broken at a line's end made whole again.

The rules, and why they are ours (no library does this on PDFium's lines; pdfplumber and pymupdf4llm have their own
extraction, at 10-30 times the cost):

- **Running headers and footers**: a line in the top or bottom tenth of the page whose text, digits aside, stands
  in that band on at least 3 pages (2 in a document of 2-3 pages), and a page number: the topmost or bottommost
  line, in the fifth of the page next to its edge, when it is only a number ("12", "- 12 -", "Page 3 of 9", "xii")
  and not all the page has.
- **Footnotes**: lines in the lower half of the page, in a smaller size than the body text, with no body-size line
  below them in the same column, go after the page's body, in their order.
- **Paragraphs**: a new one where the size changes, the gap to the line before is wider than the line spacing, the
  line is indented, or the text moves to a new column after a sentence's end (a sentence that goes on in the
  next column stays one paragraph). A piece drawn apart but beside the end of the line before, on its baseline or
  as a superscript, is appended to that line.
- **Joining lines**: nothing between two CJK characters (Chinese is set without spaces; a newline there would sit
  inside a word), a space otherwise.
- **Hyphens at a line's end**: the word is joined (``ingre-``/``dient`` -> ``ingredient``) unless the document
  itself says the hyphen belongs: the hyphenated form occurs elsewhere and the joined one does not, the part before
  is already a compound (``state-of-the-``/``art``), or both halves are words the document uses and their join is
  not (``well-``/``known``). The document is its own dictionary: it knows its terms, in its language, and needs no
  word list to ship.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loaders.pdf_text import Box, Line, union

_MARGIN = 0.1  # of the page's height: where running headers and footers stand
_SMALL = 0.85  # of the body size: footnotes and superscripts are set smaller
_PAGE_NUMBER = re.compile(r"[-–—\s]*(?:page|seite|p\.)?\s*(?:\d+|[ivxlc]+)(?:\s*(?:/|of|von)\s*\d+)?[-–—\s]*", re.I)
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_CJK = re.compile(r"[\u2e80-\u2fff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_SENTENCE_END = re.compile(r"[.!?:;。！？：；]['\")\]”’」』）]*$")
_HYPHEN_END = re.compile(r"([^\W\d_]+(?:-[^\W\d_]+)*)-$")
_FIRST_WORD = re.compile(r"^([^\W\d_]+)")


def body_size(pages: Sequence[Sequence[Line]]) -> float:
    """The font size most of the document's characters are set in (0 when it has no text)."""
    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            sizes[round(line.size * 2) / 2] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def drop_running(pages: Sequence[list[Line]], heights: Sequence[float]) -> list[list[Line]]:
    """The pages without their running headers, footers and page numbers (see the module docstring)."""
    seen: Counter[str] = Counter()
    for lines, height in zip(pages, heights, strict=True):
        seen.update({_signature(line) for line in lines if _in_margin(line, height)})
    needed = 2 if len(pages) <= 3 else 3
    kept = []
    for lines, height in zip(pages, heights, strict=True):
        ends = _ends(lines, height)
        kept.append(
            [
                line
                for line in lines
                if not (_in_margin(line, height) and seen[_signature(line)] >= needed)
                and not (id(line) in ends and len(lines) > 1 and _PAGE_NUMBER.fullmatch(line.text))
            ]
        )
    return kept


def _ends(lines: Sequence[Line], height: float) -> set[int]:
    """The topmost and the bottommost line of the page, when in the fifth of the page next to its edge."""
    if not lines:
        return set()
    top = min(lines, key=lambda line: line.box[1])
    bottom = max(lines, key=lambda line: line.box[3])
    return {id(line) for line in (top, bottom) if line.box[3] <= 0.2 * height or line.box[1] >= 0.8 * height}


def _in_margin(line: Line, height: float) -> bool:
    return line.box[3] <= _MARGIN * height or line.box[1] >= (1 - _MARGIN) * height


def _signature(line: Line) -> str:
    return _DIGITS.sub("#", " ".join(line.text.lower().split()))


def footnotes_last(lines: list[Line], body: float, height: float) -> list[Line]:
    """The page's lines with its footnotes moved after its body."""
    notes = [
        k
        for k, line in enumerate(lines)
        if line.size <= _SMALL * body
        and line.box[1] > height / 2
        and not any(
            other.size > _SMALL * body and other.box[1] > line.box[1] and _overlap(other.box, line.box)
            for other in lines
        )
    ]
    if not notes:
        return lines
    chosen = set(notes)
    return [line for k, line in enumerate(lines) if k not in chosen] + [lines[k] for k in notes]


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2]


@dataclass(slots=True)
class Vocabulary:
    """The words a document uses (lower-cased), apart from the halves of words broken at a line's end."""

    words: set[str] = field(default_factory=set)
    hyphenated: set[str] = field(default_factory=set)

    def add(self, lines: Sequence[Line]) -> None:
        for line in lines:
            tokens = _WORD.findall(line.text.lower())
            if tokens and line.text.endswith("-"):
                tokens.pop()
            for token in tokens:
                (self.hyphenated if "-" in token else self.words).add(token)

    def keeps_hyphen(self, before: str, after: str) -> bool:
        """Whether ``before-`` at a line's end and ``after`` at the next line's start are one hyphenated word."""
        stem, tail = before.lower(), after.lower()
        if "-" in stem:
            return True
        if stem + tail in self.words:
            return False
        if f"{stem}-{tail}" in self.hyphenated:
            return True
        return len(stem) > 1 and len(tail) > 1 and stem in self.words and tail in self.words


@dataclass(slots=True)
class Paragraph:
    """Lines that read as one block of text; ``text`` is them joined, ``spans`` where each line's text is in it."""

    lines: list[Line]
    text: str = ""
    spans: list[tuple[int, int, Box]] = field(default_factory=list)


def paragraphs(lines: Sequence[Line], heading: Callable[[Line], bool]) -> list[list[Line]]:
    """The lines in paragraphs (see the module docstring); a line `heading` says is one stands alone."""
    out: list[list[Line]] = []
    for line in lines:
        if out and _same_line(out[-1][-1], line):
            last = out[-1][-1]
            space = " " if line.box[0] - last.box[2] > 0.2 * min(last.size, line.size) else ""
            size = max(last.size, line.size)  # the base line's, not a superscript's
            out[-1][-1] = Line(last.text + space + line.text, union([last.box, line.box]), size, last.bold)
            continue
        titled = heading(line)
        if not out or titled != heading(out[-1][-1]) or _breaks(out[-1][-1], line, indents=not titled):
            out.append([line])
        else:
            out[-1].append(line)
    return out


def _same_line(before: Line, line: Line) -> bool:
    """`line` goes on where `before` ends, on its baseline or beside a superscript (a footnote's number)."""
    return (
        line.box[1] < before.box[3]
        and line.box[3] > before.box[1]
        and 0 <= line.box[0] - before.box[2] + 1 < min(before.size, line.size)
    )


def _breaks(before: Line, line: Line, *, indents: bool) -> bool:
    """Whether `line` starts a new paragraph after `before` (by its indent too, unless lines are centred)."""
    if abs(line.size - before.size) > 0.1 * before.size:
        return True
    gap = line.box[1] - before.box[3]
    if gap < -0.5 * before.height or line.box[0] >= before.box[2]:  # up, or to the right: the next column
        return bool(_SENTENCE_END.search(before.text)) or not (line.text[:1].islower() or _CJK.match(line.text))
    if line.box[3] - before.box[3] > 1.7 * before.size:  # more than a line's pitch between the two
        return True
    # A first line's indent, after a line that ends a sentence or stops short: not the hanging indent of a
    # reference list, whose first line runs to the column's end.
    return (
        indents
        and line.box[0] > before.box[0] + 0.8 * line.size
        and (bool(_SENTENCE_END.search(before.text)) or before.box[2] < line.box[2] - 2 * line.size)
    )


def join(lines: Sequence[Line], vocabulary: Vocabulary) -> Paragraph:
    """The paragraph's lines as one string: no space between CJK characters, line-end hyphens repaired."""
    text = ""
    spans: list[tuple[int, int, Box]] = []
    for line in lines:
        piece = line.text
        if text:
            broken = _HYPHEN_END.search(text)
            following = _FIRST_WORD.match(piece)
            if broken and following and piece[:1].islower():
                if not vocabulary.keeps_hyphen(broken.group(1), following.group(1)):
                    text = text[:-1]
                    start, end, box = spans[-1]
                    spans[-1] = (start, end - 1, box)
            elif not (_CJK.match(text[-1]) and _CJK.match(piece[0])):
                text += " "
        spans.append((len(text), len(text) + len(piece), line.box))
        text += piece
    return Paragraph(list(lines), text, spans)
