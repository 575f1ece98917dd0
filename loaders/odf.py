"""OpenDocument files (.odt, .odp; LibreOffice's and WPS's own format): the checked content XML, and the text of
its paragraphs and tables, shared by `loaders.odt` and `loaders.odp`.

Why the XML directly rather than odfpy: odfpy is a toolkit to build and edit documents, whose reader loads the
whole package into its own DOM; the structure needed here (``text:h`` with its outline level, ``text:p``,
``text:list``, ``table:table``, ``draw:page``) is a few element names of ``content.xml``, read with lxml (already
there for python-docx), through `loaders.archive.open_zip` like the Office formats (bomb checks).

A password-protected package keeps ``content.xml`` encrypted and says so in its manifest; a package whose
``mimetype`` is another kind of OpenDocument (a spreadsheet named .odt) is named for what it is.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from loaders.archive import open_zip
from loaders.errors import LoadError, reason

TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
SVG = "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"

_KINDS = {
    "application/vnd.oasis.opendocument.text": "a text document (.odt)",
    "application/vnd.oasis.opendocument.spreadsheet": "a spreadsheet (.ods)",
    "application/vnd.oasis.opendocument.presentation": "a presentation (.odp)",
    "application/vnd.oasis.opendocument.graphics": "a drawing (.odg)",
}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
#: The most columns or rows a repeat count stands for: a row "repeated" 1,048,576 times is empty filler.
MAX_REPEAT = 1000


def t(namespace: str, name: str) -> str:
    """An element or attribute name in Clark notation, as lxml gives it."""
    return f"{{{namespace}}}{name}"


_S, _TAB, _LINE_BREAK = t(TEXT, "s"), t(TEXT, "tab"), t(TEXT, "line-break")
_NOTE, _NOTE_CITATION, _TRACKED = t(TEXT, "note"), t(TEXT, "note-citation"), t(TEXT, "tracked-changes")
_ANNOTATION = t(OFFICE, "annotation")
_TABLE_ROW, _TABLE_CELL, _COVERED = t(TABLE, "table-row"), t(TABLE, "table-cell"), t(TABLE, "covered-table-cell")
_ROW_GROUPS = frozenset(t(TABLE, name) for name in ("table-header-rows", "table-rows", "table-row-group"))
_P, _H, _LIST = t(TEXT, "p"), t(TEXT, "h"), t(TEXT, "list")


def read_content(path: Path, expected: str, kind: str) -> etree._Element:
    """The root of ``content.xml`` of the `kind` file at `path` (an OpenDocument of mimetype `expected`).

    Raises `LoadError` for an empty, encrypted, damaged or other-kind file.
    """
    if path.stat().st_size == 0:
        raise LoadError("empty file")
    with open_zip(path, kind) as archive:
        names = set(archive.namelist())
        raw = _member(archive, "mimetype", kind) if "mimetype" in names else b""
        mimetype = raw.decode("ascii", errors="replace").strip()
        if "META-INF/manifest.xml" in names and b"encryption-data" in _member(archive, "META-INF/manifest.xml", kind):
            raise LoadError(f"encrypted {kind} file: remove the password (save a copy without one)")
        if mimetype and mimetype != expected and not mimetype.startswith(expected + "-"):  # "-template" is fine
            raise LoadError(f"not {kind_article(kind)} file: it holds {_KINDS.get(mimetype, mimetype)}")
        if "content.xml" not in names:
            raise LoadError(f"corrupt {kind} file: no content.xml in it")
        data = _member(archive, "content.xml", kind)
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as err:
        raise LoadError(f"corrupt {kind} file: {reason(err)}") from err


def kind_article(kind: str) -> str:
    return f"an {kind}" if kind[0].lower() in "aeiou" else f"a {kind}"


def _member(archive: zipfile.ZipFile, name: str, kind: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as err:  # bad CRC, truncated member
        raise LoadError(f"corrupt {kind} file: {name}: {reason(err)}") from err
    except RuntimeError as err:  # zipfile's own encryption (not ODF's): "File ... is encrypted"
        raise LoadError(f"encrypted {kind} file: remove the password (save a copy without one)") from err


# -- text ------------------------------------------------------------------------------------------------------


def paragraph_lines(element: etree._Element) -> list[str]:
    """A paragraph or heading as lines (split at line breaks), spaces collapsed, empty lines dropped; notes and
    comments are left out of the sentence they stand in (`notes` reads them)."""
    parts: list[str] = []
    _inline(element, parts)
    return [line for line in (" ".join(raw.split()) for raw in "".join(parts).split("\n")) if line]


def _inline(element: etree._Element, parts: list[str]) -> None:
    # Recursion is bounded: lxml refuses XML nested deeper than 256 levels.
    if element.text:
        parts.append(element.text)
    for child in element:
        tag = child.tag
        if tag == _S:
            parts.append(" " * min(int(child.get(t(TEXT, "c"), "1") or 1), 80))
        elif tag == _TAB:
            parts.append("\t")
        elif tag == _LINE_BREAK:
            parts.append("\n")
        elif tag not in (_NOTE, _ANNOTATION, _TRACKED):
            _inline(child, parts)
        if child.tail:
            parts.append(child.tail)


def text_of(element: etree._Element) -> str:
    """All the paragraphs under `element` (a table cell, a text box) as one line."""
    return " ".join(line for p in element.iter(_P, _H) for line in paragraph_lines(p))


def notes(root: etree._Element) -> list[str]:
    """Footnotes and endnotes as "[n] text" lines, in order."""
    lines: list[str] = []
    for note in root.iter(_NOTE):
        body = note.find(t(TEXT, "note-body"))
        text = text_of(body) if body is not None else ""
        if text:
            lines.append(f"[{len(lines) + 1}] {text}")
    return lines


# -- tables ----------------------------------------------------------------------------------------------------


def table_rows(table: etree._Element) -> list[list[str]]:
    """The table's non-empty rows, a merged cell's value at every grid position it covers."""
    rows: list[list[str]] = []
    spanned: dict[tuple[int, int], str] = {}  # (row, column) covered by a merge -> its value
    for row in _rows(table):
        repeat = min(int(row.get(t(TABLE, "number-rows-repeated"), "1") or 1), MAX_REPEAT)
        for _ in range(repeat):
            number = len(rows)
            cells: list[str] = []
            for cell in row:
                if cell.tag not in (_TABLE_CELL, _COVERED):
                    continue
                count = min(int(cell.get(t(TABLE, "number-columns-repeated"), "1") or 1), MAX_REPEAT)
                if cell.tag == _COVERED:
                    cells.extend(spanned.get((number, len(cells) + i), "") for i in range(count))
                    continue
                value = text_of(cell)
                across = int(cell.get(t(TABLE, "number-columns-spanned"), "1") or 1)
                down = int(cell.get(t(TABLE, "number-rows-spanned"), "1") or 1)
                if value and (across > 1 or down > 1):
                    for r in range(number, number + min(down, MAX_REPEAT)):
                        for c in range(len(cells), len(cells) + min(across, MAX_REPEAT)):
                            spanned[(r, c)] = value
                cells.extend([value] * count)
            rows.append(cells)
    kept = [row for row in rows if any(row)]
    width = max((max((i + 1 for i, v in enumerate(row) if v), default=0) for row in kept), default=0)
    return [row[:width] + [""] * (width - len(row)) for row in kept]


def _rows(table: etree._Element) -> Iterator[etree._Element]:
    for child in table:
        if child.tag == _TABLE_ROW:
            yield child
        elif child.tag in _ROW_GROUPS:
            yield from _rows(child)
