"""PowerPoint 97-2003 (.ppt): each slide's text as a Document with ``page``, through ``catppt`` (Debian's catdoc).

catppt prints the text PowerPoint keeps in the presentation's slide list (titles, bodies, text placeholders), in
slide order, and a form feed between two slides with text. So ``page`` is the slide's number when every slide
has text; a slide without any (a picture only) prints nothing and no form feed, and the slides after it get a
number one too low. catppt does not tell a title from a body line, so no ``title`` comes out (as `loaders.pptx`
gives); it does not read speaker notes or tables either. Text after the last slide (a master's name, such as
"Office Theme") comes out as a page of its own: catppt cannot tell it from a slide.

``start_index`` is the offset in the slide's text, 0. An encrypted file (its ``EncryptedSummary`` stream), an
empty one and a damaged one each get their own cause; catppt missing, one line naming the Debian package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders import external
from loaders.errors import LoadError, one_line
from loaders.options import ReadOptions
from loaders.source import AnyPath

_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_SUMMARY = "EncryptedSummary".encode("utf-16-le")
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")  # an encrypted .pptx under a .ppt name
_POWERPOINT_DOCUMENT = "PowerPoint Document".encode("utf-16-le")
_SLIDE_BREAK = "\f"
_SCAN_BLOCK = 1 << 20


class PptFileLoader(BaseLoader):
    """A .ppt file as one Document per slide with text (``page``, ``start_index`` 0); raises `LoadError` for an
    empty, encrypted, damaged or text-less file.

    Usage (a LangChain document loader: any str or path-like)::

        docs = PptFileLoader("汇报.ppt").load()
        for doc in PptFileLoader("汇报.ppt").lazy_load():
            print(doc.metadata["page"], doc.page_content[:60])
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)  # `options`: no pages are skipped (catppt reads all or nothing), no password, no pixels

    def lazy_load(self) -> Iterator[Document]:
        with self.path.open("rb") as stream:
            head = stream.read(len(_CFB_MAGIC))
        if not head:
            raise LoadError("empty file")
        if head != _CFB_MAGIC:
            zipped = head.startswith(b"PK")
            raise LoadError(
                "not a PowerPoint 97-2003 file: it is a zip archive (a .pptx? rename it to .pptx)"
                if zipped
                else "corrupt PowerPoint file: not an OLE compound file"
            )
        result = external.run("catppt", "catdoc", ["-d", "utf-8"], self.path)
        if result.returncode != 0:
            message = one_line(result.stderr.decode("utf-8", errors="replace"))
            raise LoadError(f"corrupt PowerPoint file: catppt says {message or 'nothing'}")
        found = False
        for number, slide in enumerate(result.stdout.decode("utf-8", errors="replace").split(_SLIDE_BREAK), 1):
            lines = (" ".join(line.split()) for line in slide.splitlines())
            text = "\n".join(line for line in lines if line)
            if text:
                found = True
                yield Document(page_content=text, metadata={"page": number, "start_index": 0})
        if not found:
            raise LoadError(self._why_no_text())

    def _why_no_text(self) -> str:
        """From the stream names in the file (UTF-16, in its directory): encrypted, not a presentation, or empty."""
        names = _stream_names(self.path, (_ENCRYPTED_SUMMARY, _ENCRYPTION_INFO, _POWERPOINT_DOCUMENT))
        if names & {_ENCRYPTED_SUMMARY, _ENCRYPTION_INFO}:
            return "encrypted PowerPoint file: remove the password (save a copy without one)"
        if _POWERPOINT_DOCUMENT not in names:
            return "not a PowerPoint file: no presentation inside the OLE file"
        return "no text in the PowerPoint file"


def _stream_names(path: Path, names: tuple[bytes, ...]) -> set[bytes]:
    """Which of `names` occur in the file, read a block at a time."""
    found: set[bytes] = set()
    overlap = max(map(len, names))
    with path.open("rb") as stream:
        tail = b""
        while block := stream.read(_SCAN_BLOCK):
            data = tail + block
            found.update(name for name in names if name in data)
            tail = data[-overlap:]
    return found
