"""Plain text (.txt, Markdown, reStructuredText): pick the encoding, then stream the file in blocks.

Why not langchain-community's ``TextLoader``: it reads the whole file into one string (unbounded memory) and
guesses encodings with chardet. Here the rules are few and fixed — a byte-order mark, else UTF-8, else GB18030
(Chinese text saved on Windows) — and a file of any size is read in blocks of about `BLOCK_SIZE` bytes, each cut
after its last newline, so memory stays bounded.

The same decoding serves code files (`loaders.code`) and HTML (`loaders.html`).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.errors import LoadError
from loaders.source import AnyPath

BLOCK_SIZE = 1 << 20
_SNIFF_SIZE = 8 << 10  # NUL bytes this early mean binary data (a text file has none)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    # UTF-16 is what Windows Notepad ("Unicode") and PowerShell 5 redirection write; it always carries a BOM.
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_FALLBACKS = ("utf-8", "gb18030")
_LABELS = {"utf-8": "UTF-8", "gb18030": "GB18030", "utf-16-le": "UTF-16", "utf-16-be": "UTF-16"}


def choose_encoding(head: bytes, *, complete: bool, declared: str | None = None) -> tuple[str, int]:
    """The codec for data that starts with `head`, and the length of its byte-order mark (0 if none).

    A BOM decides; else `declared` (e.g. an HTML meta charset) if `head` decodes with it; else UTF-8; else
    GB18030. `complete` says `head` is all the data, so a multi-byte character cut off at its end is an error
    rather than the edge of a block. Raises `LoadError` for binary data and for bytes no candidate decodes.
    """
    marked = next(((codec, len(bom)) for bom, codec in _BOMS if head.startswith(bom)), None)
    # UTF-16 text is full of NUL bytes; in anything else they mean binary data.
    if not (marked and marked[0].startswith("utf-16")) and b"\x00" in head[:_SNIFF_SIZE]:
        raise LoadError("binary file with a text extension")
    if marked:
        return marked
    candidates = (declared, *_FALLBACKS) if declared else _FALLBACKS
    for codec in candidates:
        if _decodes(head, codec, final=complete):
            return codec, 0
    raise LoadError("not valid UTF-8 or GB18030 text")


def decode_bytes(data: bytes, *, declared: str | None = None) -> str:
    """All of `data` as text, by the rules of `choose_encoding` (the BOM is not part of the text)."""
    codec, bom = choose_encoding(data, complete=True, declared=declared)
    return data[bom:].decode(codec)


def _decodes(data: bytes, codec: str, *, final: bool) -> bool:
    try:
        codecs.getincrementaldecoder(codec)().decode(data, final=final)
    except (UnicodeDecodeError, LookupError):  # LookupError: a declared charset Python does not know
        return False
    return True


class TextFileLoader(BaseLoader):
    """A text file as Documents of about `block_size` bytes, each cut after a newline when the block has one.

    Every Document has metadata ``start_index``: its character offset in the whole decoded text. Blocks holding
    only whitespace are skipped; a file with nothing else raises ``LoadError("empty file")``. The encoding is
    chosen from the first block; a later block it cannot decode raises `LoadError` after the earlier Documents
    were yielded, so a caller must drop a file's Documents when reading it fails.

    Usage (a LangChain document loader: any str or path-like)::

        docs = TextFileLoader("notes.md").load()
        for doc in TextFileLoader("notes.md").lazy_load():
            print(doc.metadata["start_index"], len(doc.page_content))
    """

    def __init__(self, path: AnyPath, *, block_size: int = BLOCK_SIZE) -> None:
        self.path = Path(path)
        self.block_size = block_size

    def lazy_load(self) -> Iterator[Document]:
        empty = True
        with self.path.open("rb") as stream:
            for offset, text in _blocks(stream, self.block_size):
                empty = False
                yield Document(page_content=text, metadata={"start_index": offset})
        if empty:
            raise LoadError("empty file")


def _blocks(stream: BinaryIO, block_size: int) -> Iterator[tuple[int, str]]:
    """(character offset, text) of each block of `stream` that holds more than whitespace."""
    head = stream.read(block_size)
    codec, bom = choose_encoding(head, complete=len(head) < block_size)
    decoder = codecs.getincrementaldecoder(codec)()
    raw, position, offset, carry = head[bom:], bom, 0, ""
    while raw:
        following = stream.read(block_size)  # read ahead: the last block must be decoded with final=True
        final = not following
        try:
            text = carry + decoder.decode(raw, final=final)
        except UnicodeDecodeError as err:
            raise LoadError(
                f"not valid {_LABELS[codec]} text (undecodable bytes near byte {position + err.start})"
            ) from err
        # Cut after the last newline so no line is split between two Documents; a block without one (a
        # minified file, a huge single line) is cut where it ends — the decoder only returns whole characters.
        cut = len(text) if final else (text.rfind("\n") + 1 or len(text))
        block, carry = text[:cut], text[cut:]
        if block.strip():
            yield offset, block
        offset += len(block)
        position += len(raw)
        raw = following
