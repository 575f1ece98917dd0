"""A slide's Documents from its blocks in reading order, for every presentation format (`loaders.pptx`,
`loaders.odp`): runs of text lines between tables, each table its own Markdown table, the speaker notes closing
the last run after "Notes: "; each with the slide's metadata (``page``, ``title``) and ``start_index``, the offset
in the slide's rendered text (its Documents' texts joined by blank lines).
"""

from __future__ import annotations

from collections.abc import Iterable

from langchain_core.documents import Document

from loaders.tables import table_document

NOTES_PREFIX = "Notes: "
SEPARATOR = "\n\n"  # between two Documents of a slide in the rendered text that ``start_index`` counts in

#: Text lines (one string, lines separated by newlines), or a table's rows (the first is the header).
Block = str | list[list[str]]


def slide_documents(blocks: Iterable[Block], metadata: dict[str, str | int]) -> list[Document]:
    """The Documents of one slide's `blocks` (the notes, prefixed, as its last text block)."""
    docs: list[Document] = []
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            lines.extend(block.splitlines())
        elif block:
            docs.extend(_text_document(lines, metadata))
            lines = []
            docs.append(table_document(block[0], block[1:], metadata))
    docs.extend(_text_document(lines, metadata))
    offset = 0
    for doc in docs:
        doc.metadata["start_index"] = offset
        offset += len(doc.page_content) + len(SEPARATOR)
    return docs


def _text_document(lines: list[str], metadata: dict[str, str | int]) -> list[Document]:
    return [Document(page_content="\n".join(lines), metadata=dict(metadata))] if lines else []
