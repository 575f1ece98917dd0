"""The format registry: which loader reads which extension, and the metadata every Document carries.

Every Document from `read` has ``source``, ``file_type``, ``start_index`` and ``file_hash``; PDF pages add
``page``, code adds ``language``. All values are str or int, as Chroma requires.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.code import LANGUAGES, CodeFileLoader
from loaders.errors import LoadError, os_cause
from loaders.html import HtmlFileLoader
from loaders.pdf import PageErrorHandler, PdfFileLoader
from loaders.text import TextFileLoader

if TYPE_CHECKING:  # walk imports this module for SUPPORTED_EXTENSIONS
    from loaders.walk import SourceFile

#: Extension (lower case, with the dot) -> the ``file_type`` metadata of its Documents.
FILE_TYPES: dict[str, str] = {
    ".pdf": "pdf",
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
} | dict.fromkeys(LANGUAGES, "code")

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(FILE_TYPES)


def read(
    file: SourceFile, *, pdf_password: str | None = None, on_page_error: PageErrorHandler | None = None
) -> Iterator[Document]:
    """The Documents of `file`, lazily; raises `LoadError` (one-line cause) when the file cannot be read.

    `on_page_error` receives each PDF page that is skipped because it cannot be read (a `LoadError` with
    ``page``); by default those are logged as warnings on "loaders.pdf". A `LoadError` can come after some
    Documents were yielded (a text file undecodable past its first MiB): drop the file's Documents then.

    Usage::

        for item in walk([Path("docs")]):
            if isinstance(item, SourceFile):
                docs = list(read(item, pdf_password="secret"))
    """
    suffix = file.path.suffix.lower()
    file_type = FILE_TYPES.get(suffix)
    if file_type is None:
        raise LoadError(f"unsupported file type {suffix or '(no extension)'}")
    loader: BaseLoader
    if file_type == "pdf":
        loader = PdfFileLoader(file.path, password=pdf_password, on_page_error=on_page_error)
    elif file_type == "html":
        loader = HtmlFileLoader(file.path)
    elif file_type == "code":
        loader = CodeFileLoader(file.path, LANGUAGES[suffix])
    else:
        loader = TextFileLoader(file.path)
    try:
        common = {"source": file.source, "file_type": file_type, "file_hash": file.sha256()}
        for doc in loader.lazy_load():
            doc.metadata.update(common)
            yield doc
    except OSError as err:
        raise LoadError(os_cause(err)) from err
