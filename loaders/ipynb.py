"""Jupyter notebooks (.ipynb): the text of the markdown and code cells, one Document per cell, outputs left out.

Why not langchain-community's ``NotebookLoader``: it makes one Document of the whole notebook, mixing outputs
(tracebacks, dataframes, base64 images) in with the prose and code, so the chunker cannot tell code from text.
The format is plain JSON: read with ``json``, without nbformat (a test-only dependency here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.errors import LoadError
from loaders.options import ReadOptions
from loaders.source import AnyPath

_SEPARATOR = "\n\n"  # between cells, in the notebook text that ``start_index`` counts in
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\r?\n)+")
# Kernel language names that differ from the `langchain_text_splitters.Language` value the chunker looks up.
_LANGUAGE_ALIASES = {"c++": "cpp", "c#": "csharp", "javascript": "js", "typescript": "ts"}


class NotebookFileLoader(BaseLoader):
    """A notebook (nbformat 4, or 2-3 with worksheets) as one Document per non-empty markdown or code cell.

    Metadata: ``cell`` (1-based position among all the notebook's cells, raw and empty ones included),
    ``start_index`` (the cell's offset in the notebook text: the cells' texts joined by a blank line, "\\n\\n") and,
    for code cells, ``language`` (the kernel's language, lower case, "python" if the notebook does not say; names
    as in LangChain's ``Language``, e.g. "js", "cpp", so the chunker splits on code boundaries).

    A cell's text is its source without trailing whitespace and leading blank lines. Outputs, attachments and raw
    cells (nbconvert passthrough, front matter) are left out. Raises `LoadError` for what is not a notebook and for
    a notebook without text.

    Usage (a LangChain document loader: any str or path-like)::

        docs = NotebookFileLoader("analysis.ipynb").load()
        for cell in NotebookFileLoader("analysis.ipynb").lazy_load():
            print(cell.metadata["cell"], cell.metadata.get("language", "markdown"))
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)  # `options` holds nothing that applies to notebooks

    def lazy_load(self) -> Iterator[Document]:
        notebook = _parse(self.path.read_bytes())
        cells = _cells(notebook)
        language = _language(notebook)
        offset = 0
        for number, cell in enumerate(cells, 1):
            kind = cell.get("cell_type") if isinstance(cell, dict) else None
            if kind not in ("markdown", "code", "heading"):
                continue
            text = _LEADING_BLANK_LINES.sub("", _source(cell, number).rstrip())
            if not text:
                continue
            metadata: dict[str, str | int] = {"cell": number, "start_index": offset}
            if kind == "heading":  # nbformat 3: a markdown heading of its own
                text = "#" * _level(cell) + " " + text
            elif kind == "code":
                metadata["language"] = _normalise(cell.get("language")) or language  # nbformat 3: per cell
            yield Document(page_content=text, metadata=metadata)
            offset += len(text) + len(_SEPARATOR)
        if offset == 0:  # nothing yielded
            raise LoadError("empty notebook")


def _parse(data: bytes) -> dict[str, Any]:
    if not data.strip():
        raise LoadError("empty file")
    try:
        notebook = json.loads(data)  # bytes: json detects UTF-8/16/32 itself
    except json.JSONDecodeError as err:
        raise LoadError(f"not a Jupyter notebook: invalid JSON at line {err.lineno}") from err
    except UnicodeDecodeError as err:
        raise LoadError("not a Jupyter notebook: not UTF-8 text") from err
    if not isinstance(notebook, dict):
        raise LoadError("not a Jupyter notebook: no cells")
    return notebook


def _cells(notebook: dict[str, Any]) -> list[Any]:
    """The cells, in order: nbformat 4 lists them at the top; 2 and 3 inside worksheets."""
    cells = notebook.get("cells")
    if isinstance(cells, list):
        return cells
    worksheets = notebook.get("worksheets")
    if isinstance(worksheets, list):
        nested = [sheet.get("cells") for sheet in worksheets if isinstance(sheet, dict)]
        lists = [sheet_cells for sheet_cells in nested if isinstance(sheet_cells, list)]
        if len(lists) == len(nested):
            return [cell for sheet_cells in lists for cell in sheet_cells]
    raise LoadError("not a Jupyter notebook: no cells")


def _source(cell: dict[str, Any], number: int) -> str:
    """A cell's text: a string, or a list of lines (each with its own newline). nbformat 3 calls code "input"."""
    source = cell.get("source", cell.get("input", ""))
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    if isinstance(source, str):
        return source
    raise LoadError(f"not a Jupyter notebook: cell {number} has a malformed source")


def _level(cell: dict[str, Any]) -> int:
    level = cell.get("level")
    return min(max(level, 1), 6) if isinstance(level, int) else 1


def _language(notebook: dict[str, Any]) -> str:
    """The kernel's language: ``kernelspec.language``, else ``language_info.name``, else "python"."""
    metadata = notebook.get("metadata")
    if isinstance(metadata, dict):
        for key, field in (("kernelspec", "language"), ("language_info", "name")):
            section = metadata.get(key)
            if isinstance(section, dict) and (name := _normalise(section.get(field))):
                return name
    return "python"


def _normalise(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip().lower()
    return _LANGUAGE_ALIASES.get(name, name)
