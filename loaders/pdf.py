"""PDF: the text of each page, with pypdf.

Why not langchain-community's ``PyPDFLoader``/``PyPDFParser`` (also pypdf underneath): one page that raises
ends the whole file there, an encrypted file gets no "needs a password" vs "wrong password" answer, pages without
text still become Documents, pages count from 0, and the PDF's info dictionary is copied into the metadata with
values of any type (Chroma takes str/int/float/bool only).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from pypdf import PasswordType, PdfReader

from loaders.errors import LoadError, one_line
from loaders.options import OcrMode, PageErrorHandler

logger = logging.getLogger("loaders.pdf")


class _Demote(logging.Handler):
    """Passes pypdf's records on to our logger at DEBUG level."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("pypdf: %s", record.getMessage())


# pypdf logs every repair it makes to a non-compliant file as a WARNING on "pypdf.*" (one per font, object or
# xref entry). With no handler configured, Python's last-resort handler prints each to stderr; with the CLI's
# handler at WARNING they would flood it too. They are pypdf's business, not the user's: keep them, at DEBUG.
_pypdf_logger = logging.getLogger("pypdf")
_pypdf_logger.addHandler(_Demote())
_pypdf_logger.propagate = False

_HEADER_WINDOW = 1024  # readers accept the "%PDF-" header anywhere in the first KiB
# Applied to every page's text. Latin ligature glyphs (ﬁ, ﬂ, ...) come out of many fonts as single characters;
# "ﬁlled" then matches neither "filled" in lexical search nor its usual tokens. Only these are replaced: NFKC
# would also rewrite CJK punctuation. Control characters are glyphs of fonts without a Unicode map (TeX math
# fonts put the minus sign at code 0); a NUL or stray C1 byte is no use downstream, so they become spaces.
_CLEANUP = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
    | dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)], " ")
)


class PdfFileLoader(BaseLoader):
    """A PDF as one Document per page that has text; metadata ``page`` (1-based) and ``start_index``.

    ``start_index`` is the offset of the (stripped) content within the page's extracted text. Encrypted files
    are tried with the empty password, then `password`. A page that cannot be read is skipped and handed to
    `on_page_error` as a `LoadError` with its ``page`` (default: logged as a warning on "loaders.pdf"); whole-file
    failures (not a PDF, corrupt, encrypted, no text on any page) raise `LoadError`.

    Usage::

        for page in PdfFileLoader(Path("paper.pdf"), password=None).lazy_load():
            print(page.metadata["page"], page.page_content[:80])
    """

    def __init__(
        self,
        path: Path,
        *,
        password: str | None = None,
        on_page_error: PageErrorHandler | None = None,
        ocr: OcrMode = OcrMode.AUTO,
    ) -> None:
        self.path = path
        self.password = password
        self.ocr = ocr
        self.on_page_error = on_page_error or self._log_page_error

    def lazy_load(self) -> Iterator[Document]:
        reader = self._open()
        try:
            pages = reader.pages
            count = len(pages)
        except Exception as err:  # pypdf raises many types (KeyError, ValueError, ...) on a broken page tree
            raise LoadError(f"corrupt PDF: {_reason(err)}") from err
        failed: LoadError | None = None
        extracted = False
        for number in range(1, count + 1):
            try:
                text = pages[number - 1].extract_text().translate(_CLEANUP)
            except Exception as err:  # one broken page (bad font, bad stream) must not cost the others
                failed = LoadError(f"unreadable page: {_reason(err)}", page=number)
                self.on_page_error(failed)
                continue
            content = text.strip()
            if content:
                extracted = True
                start = len(text) - len(text.lstrip())
                yield Document(page_content=content, metadata={"page": number, "start_index": start})
        if not extracted:
            if failed is not None:
                raise LoadError(f"no page could be read ({failed.cause} on page {failed.page})")
            raise LoadError("no extractable text (scanned PDF? OCR is not supported)")

    def _open(self) -> PdfReader:
        with self.path.open("rb") as stream:
            head = stream.read(_HEADER_WINDOW)
        if b"%PDF-" not in head:
            raise LoadError("not a PDF file (no %PDF- header)")
        try:
            reader = PdfReader(self.path)  # tries the empty password itself, silently
            encrypted = reader.is_encrypted
        except OSError:
            raise  # the caller reports file-system errors (permission denied, ...) the same way for all formats
        except Exception as err:  # pypdf's parser raises many types on damaged files
            raise LoadError(f"corrupt or truncated PDF: {_reason(err)}") from err
        try:
            locked = encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED
            if locked and self.password is not None:
                locked = reader.decrypt(self.password) == PasswordType.NOT_DECRYPTED
        except Exception as err:  # an unsupported algorithm, a damaged /Encrypt dictionary
            raise LoadError(f"encrypted PDF: cannot decrypt: {_reason(err)}") from err
        if locked:
            if self.password is None:
                raise LoadError("encrypted PDF: needs a password (use --pdf-password)")
            raise LoadError("encrypted PDF: wrong password")
        return reader

    def _log_page_error(self, error: LoadError) -> None:
        logger.warning("%s: page %s skipped: %s", self.path, error.page, error)


def _reason(err: Exception) -> str:
    return one_line(str(err)) or type(err).__name__
