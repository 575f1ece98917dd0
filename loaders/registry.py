"""The format registry: which loader reads which extension, and the metadata every Document carries.

Every Document from `read` has ``source``, ``file_type``, ``start_index`` and ``file_hash``; formats add their own
place in the file: ``page`` (PDF page, slide), ``section`` (Word and OpenDocument headings), ``sheet`` (Excel,
OpenDocument spreadsheets), ``row_start``/``row_end`` (sheets, CSV), ``cell`` (notebooks), ``language`` (code),
``ocr`` (text recognised from pixels). All values are str, int or bool, as Chroma requires.

A format's module is imported when a file of that format is first read, so that the Office, OCR and EPUB
libraries cost nothing to a run that never meets one.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loaders.capture import captured
from loaders.errors import LoadError, os_cause
from loaders.languages import LANGUAGES
from loaders.options import LayoutMode, OcrMode, PageErrorHandler, ReadOptions

if TYPE_CHECKING:  # LangChain's import is not needed to run
    from langchain_core.document_loaders import BaseLoader
    from langchain_core.documents import Document

    from loaders.source import SourceFile

Opener = Callable[[Path, ReadOptions], "BaseLoader"]

logger = logging.getLogger("loaders.registry")


@dataclass(frozen=True)
class Format:
    """A file type: the ``file_type`` metadata of its Documents, how to open a loader for one file, and whether
    `loaders.isolation` reads it in a worker process (third-party parsers) or in the caller's (our own streaming
    readers, and refusals)."""

    file_type: str
    open: Opener
    reads_in_worker: bool = True


@dataclass(frozen=True)
class LazyOpener:
    """Opens a loader from ``module``, imported on first use; its class ``name`` takes ``(path, options)``.

    A plain value rather than a closure, so a format can be handed to a worker process (pickled by name).
    """

    module: str
    name: str

    def __call__(self, path: Path, options: ReadOptions) -> BaseLoader:
        loader = getattr(importlib.import_module(self.module), self.name)
        return loader(path, options)


# Even the first formats are imported on first use: pypdf, BeautifulSoup and the text splitters cost a second.
def _pdf(path: Path, options: ReadOptions) -> BaseLoader:
    from loaders.pdf import PdfFileLoader

    return PdfFileLoader(
        path, password=options.pdf_password, on_page_error=options.on_page_error, ocr=options.ocr, layout=options.layout
    )


def _text(path: Path, options: ReadOptions) -> BaseLoader:
    from loaders.text import TextFileLoader

    return TextFileLoader(path)


def _html(path: Path, options: ReadOptions) -> BaseLoader:
    from loaders.html import HtmlFileLoader

    return HtmlFileLoader(path)


def _code(path: Path, options: ReadOptions) -> BaseLoader:
    from loaders.code import CodeFileLoader

    return CodeFileLoader(path, LANGUAGES[path.suffix.lower()])


_IMAGE = Format("image", LazyOpener("loaders.image", "ImageFileLoader"))

#: Extension (lower case, with the dot) -> its format. Read in the caller's process: our own pure-Python readers
#: (loaders.text, loaders.code; linear in the file, one block in memory, they cannot crash the interpreter, so a
#: worker would only add copying every block through a pipe).
FORMATS: dict[str, Format] = {
    ".pdf": Format("pdf", _pdf),
    ".txt": Format("text", _text, reads_in_worker=False),
    ".md": Format("markdown", _text, reads_in_worker=False),
    ".markdown": Format("markdown", _text, reads_in_worker=False),
    ".rst": Format("rst", _text, reads_in_worker=False),
    ".html": Format("html", _html),
    ".htm": Format("html", _html),
    ".docx": Format("docx", LazyOpener("loaders.docx", "DocxFileLoader")),
    ".pptx": Format("pptx", LazyOpener("loaders.pptx", "PptxFileLoader")),
    ".xlsx": Format("xlsx", LazyOpener("loaders.xlsx", "XlsxFileLoader")),
    ".xlsm": Format("xlsx", LazyOpener("loaders.xlsx", "XlsxFileLoader")),
    ".csv": Format("csv", LazyOpener("loaders.csv", "CsvFileLoader")),
    ".tsv": Format("csv", LazyOpener("loaders.csv", "CsvFileLoader")),
    ".epub": Format("epub", LazyOpener("loaders.epub", "EpubFileLoader")),
    ".ipynb": Format("notebook", LazyOpener("loaders.ipynb", "NotebookFileLoader")),
    # The formats older than Office 2007's, and OpenDocument: file types of their own, as each has its reader.
    ".doc": Format("doc", LazyOpener("loaders.doc", "DocFileLoader")),
    ".ppt": Format("ppt", LazyOpener("loaders.ppt", "PptFileLoader")),
    ".xls": Format("xls", LazyOpener("loaders.calamine", "CalamineFileLoader")),
    ".xlsb": Format("xlsb", LazyOpener("loaders.calamine", "CalamineFileLoader")),
    ".ods": Format("ods", LazyOpener("loaders.calamine", "CalamineFileLoader")),
    ".odt": Format("odt", LazyOpener("loaders.odt", "OdtFileLoader")),
    ".odp": Format("odp", LazyOpener("loaders.odp", "OdpFileLoader")),
    ".rtf": Format("rtf", LazyOpener("loaders.rtf", "RtfFileLoader")),
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"), _IMAGE),
} | {ext: Format("code", _code, reads_in_worker=False) for ext in LANGUAGES}

#: Extension -> the ``file_type`` metadata of its Documents.
FILE_TYPES: dict[str, str] = {ext: fmt.file_type for ext, fmt in FORMATS.items()}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(FORMATS)


def read(
    file: SourceFile,
    *,
    pdf_password: str | None = None,
    ocr: OcrMode = OcrMode.AUTO,
    on_page_error: PageErrorHandler | None = None,
    layout: LayoutMode = LayoutMode.AUTO,
) -> Iterator[Document]:
    """The Documents of `file`, lazily; raises `LoadError` (one-line cause) when the file cannot be read.

    `on_page_error` receives each page (PDF page, slide, sheet) that is skipped because it cannot be read (a
    `LoadError` with ``page``), and each parser warning that says content was lost (``page`` None,
    `loaders.capture`); by default those are logged as warnings, other parser warnings at DEBUG. A `LoadError`
    can come after some Documents were yielded (a text file undecodable past its first MiB): drop the file's
    Documents then.

    Usage::

        for item in walk([Path("docs")]):
            if isinstance(item, SourceFile):
                docs = list(read(item, pdf_password="secret"))
    """
    suffix = file.path.suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise LoadError(f"unsupported file type {suffix or '(no extension)'}")
    options = ReadOptions(
        pdf_password=pdf_password, ocr=OcrMode(ocr), layout=LayoutMode(layout), on_page_error=on_page_error
    )
    on_lost = on_page_error or functools.partial(_log_lost, file.source)
    try:
        common = {"source": file.source, "file_type": fmt.file_type, "file_hash": file.sha256()}
        for doc in captured(_load(fmt, file.path, options), file.source, on_lost):
            doc.metadata.update(common)
            yield doc
    except OSError as err:
        raise LoadError(os_cause(err)) from err


def _load(fmt: Format, path: Path, options: ReadOptions) -> Iterator[Document]:
    """The loader's Documents; opening it (its module's import, its constructor) runs within the first step, so
    that the warnings it raises are captured with the rest."""
    yield from fmt.open(path, options).lazy_load()


def _log_lost(source: str, error: LoadError) -> None:
    logger.warning("%s: %s", source, error)
