"""PDF: the text of each page from its glyph positions (PDFium), in paragraphs under a section breadcrumb, with
where each line stands; ruled tables as Markdown tables; pages without a text layer rendered and read by OCR.

The pieces, one job each: loaders.pdf_text (lines and glyphs from PDFium's text page), loaders.pdf_flow (running
headers/footers, footnotes, paragraphs, hyphens), loaders.pdf_sections (outline or headings -> ``section``),
loaders.pdf_tables (ruled tables), loaders.positions (line boxes -> each chunk's ``boxes``). This module reads
the file and puts them together, page by page.

pypdf still opens the file: it tells "needs a password" from "wrong password" and a damaged file from a wrong one,
and it is the fallback when PDFium cannot read a page or the file (one warning; the page's plain text, as before).

Why not langchain-community's ``PyPDFLoader``/``PyPDFParser``: one page that raises ends the whole file there, an
encrypted file gets no "needs a password" vs "wrong password" answer, pages without text still become Documents,
pages count from 0, and the PDF's info dictionary is copied into the metadata with values of any type.

Why pypdfium2 for OCR's pages: PDFium (Chromium's PDF engine) draws a page in tens of milliseconds.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from pypdf import PageObject, PasswordType, PdfReader

from loaders import ocr
from loaders.errors import LoadError, nothing_read, reason
from loaders.options import LayoutMode, OcrMode, PageErrorHandler
from loaders.pdf_layer import TextLayer as _TextLayer
from loaders.pdf_layout import Region, image_regions
from loaders.pdf_text import CLEANUP, Line
from loaders.source import AnyPath

if TYPE_CHECKING:
    import pypdfium2 as pdfium
    from PIL import Image

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
_OCR_DPI = 200  # 10 pt text is then ~28 px tall, well inside what the recogniser reads best
_OCR_BELOW_CHARS = 20  # AUTO: a text layer shorter than this over an image is a scan's stamp, not its text
_MAX_RENDER_SIDE = 2 * ocr.MAX_SIDE  # pixels; OCR shrinks further to ocr.MAX_SIDE with a better filter
_LOOKAHEAD = 16  # pages read ahead of the one being waited for (text pages cost a string each)
_BLANK_CONTRAST = 32  # grey levels between the darkest and lightest pixel of a page with anything on it


class PdfFileLoader(BaseLoader):
    """A PDF as Documents of running text, page by page: a new Document at each heading (``section``, the
    breadcrumb of open headings, from the outline or the headings' look), then the page's tables as table
    Documents (loaders.tables). Metadata: ``page`` (1-based), ``start_index`` (the Document's offset in its page's
    text) and ``line_boxes`` (where its lines stand: loaders.positions; the chunker turns it into each chunk's
    ``boxes``); a table has its ``boxes`` directly.

    Encrypted files are tried with the empty password, then `password`. A page that cannot be read is skipped and
    handed to `on_page_error` as a `LoadError` with its ``page`` (default: logged as a warning on "loaders.pdf");
    whole-file failures (not a PDF, corrupt, encrypted, no text on any page) raise `LoadError`. A page (or file)
    PDFium cannot read is read by pypdf as plain text, with one warning.

    `ocr` says which pages are rendered (200 dpi) and read by OCR (see `OcrMode`): with AUTO, a page without a
    text layer, or with a scrap of one (under 20 non-space characters: a scanner's stamp, a page number) over an
    image; with ALWAYS, every page. Their Documents have ``ocr`` True and ``start_index`` 0.

    `layout` says which pages the layout model reads (see `LayoutMode`): with MODEL, every page with a text
    layer; its regions drop headers and footers, mark headings, shape tables without rules and order the columns.
    OCR's pages are read one per core at a time, in threads; the Documents still come out in page order.

    Usage (a LangChain document loader: any str or path-like)::

        docs = PdfFileLoader("paper.pdf").load()
        for page in PdfFileLoader("paper.pdf", password="secret").lazy_load():
            print(page.metadata["page"], page.page_content[:80])
    """

    def __init__(
        self,
        path: AnyPath,
        *,
        password: str | None = None,
        on_page_error: PageErrorHandler | None = None,
        ocr: OcrMode = OcrMode.AUTO,
        layout: LayoutMode = LayoutMode.AUTO,
    ) -> None:
        self.path = Path(path)
        self.layout = LayoutMode(layout)
        self.password = password
        self.ocr = OcrMode(ocr)
        self.on_page_error = on_page_error or self._log_page_error

    def lazy_load(self) -> Iterator[Document]:
        reader, password = self._open()
        try:
            pages = reader.pages
            count = len(pages)
        except Exception as err:  # pypdf raises many types (KeyError, ValueError, ...) on a broken page tree
            raise LoadError(f"corrupt PDF: {reason(err)}") from err
        failed: LoadError | None = None
        extracted = False
        layer = None if self.ocr is OcrMode.ALWAYS else _TextLayer.read(self.path, password, count, self.layout)
        reading = _Reading(self.path, password)
        try:
            for page in self._in_order(pages, count, reading, layer):
                try:
                    docs = page.documents()
                except LoadError as err:
                    failed = err
                    self.on_page_error(err)
                    continue
                if docs:
                    extracted = True
                    yield from docs
        finally:
            reading.close()
            if layer is not None:
                layer.close()
        if not extracted:
            no_ocr = self.ocr is OcrMode.NEVER
            empty = "no extractable text (scanned PDF? use --ocr auto)" if no_ocr else "no text found, not even by OCR"
            raise nothing_read(failed, "page", empty)

    def _in_order(
        self, pages: Sequence[PageObject], count: int, reading: _Reading, layer: _TextLayer | None
    ) -> Iterator[_Page]:
        """Every page, in order. While a page is being read by OCR, the pages after it are started (the next ones
        that need OCR go to the other workers) and wait here, up to `_LOOKAHEAD` of them."""
        pending: deque[_Page] = deque()
        for number in range(1, count + 1):
            pending.append(self._start(pages[number - 1], number, reading, layer))
            while pending and (pending[0].done() or len(pending) > _LOOKAHEAD):
                yield pending.popleft()
        yield from pending

    def _start(self, page: PageObject, number: int, reading: _Reading, layer: _TextLayer | None) -> _Page:
        """Reads the text layer of one page and, if the page needs OCR, renders it and starts reading it."""
        docs: list[Document] = []
        if self.ocr is not OcrMode.ALWAYS:  # ALWAYS ignores the text layer: do not pay for reading it
            try:
                text = ""
                if layer is not None and layer.has(number):
                    docs, text = layer.documents(number), layer.text(number)
                if not text.strip():
                    # PDFium could not read this page (or the file), or shows no text on it: pypdf's plain text,
                    # as it comes (a damaged content stream PDFium skips in silence is an error to report here).
                    text = page.extract_text().translate(CLEANUP)
                    docs = [doc] if (doc := _document(text, number)) is not None else []
            except Exception as err:  # one broken page (bad font, bad stream) must not cost the others
                return _Page(number, error=LoadError(f"unreadable page: {reason(err)}", page=number))
            if self.ocr is OcrMode.NEVER or not _needs_ocr(page, text):
                return _Page(number, docs)
        try:
            return _Page(number, docs, reading.start(number, model=self.layout is not LayoutMode.OFF), layer=layer)
        except LoadError as err:
            return _Page(number, error=err)

    def _open(self) -> tuple[PdfReader, str | None]:
        """The decrypted reader, and the password that opened it (None: none needed or the empty one)."""
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
            raise LoadError(f"corrupt or truncated PDF: {reason(err)}") from err
        try:
            locked = encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED
            if locked and self.password is not None:
                locked = reader.decrypt(self.password) == PasswordType.NOT_DECRYPTED
                if not locked:
                    return reader, self.password
        except Exception as err:  # an unsupported algorithm, a damaged /Encrypt dictionary
            raise LoadError(f"encrypted PDF: cannot decrypt: {reason(err)}") from err
        if locked:
            if self.password is None:
                raise LoadError("encrypted PDF: needs a password (use --pdf-password)")
            raise LoadError("encrypted PDF: wrong password")
        return reader, None

    def _log_page_error(self, error: LoadError) -> None:
        logger.warning("%s: page %s skipped: %s", self.path, error.page, error)


def _document(text: str, number: int) -> Document | None:
    content = text.strip()
    if not content:
        return None
    start = len(text) - len(text.lstrip())
    return Document(page_content=content, metadata={"page": number, "start_index": start})


def _needs_ocr(page: PageObject, text: str) -> bool:
    """AUTO's rule: no text layer at all, or a scrap of one (fewer than 20 non-space characters) over an image.

    A scrap alone (a title page, a figure's label over vector art) is left as it is: it is all the page says.
    """
    visible = sum(not c.isspace() for c in text)
    if visible == 0:
        return True
    if visible >= _OCR_BELOW_CHARS:
        return False
    try:
        return len(page.images) > 0
    except Exception:  # a damaged resource dictionary: rendering may still work, and OCR will tell
        return True


@dataclass
class _Page:
    """A page on its way out: its text layer's Documents, its OCR under way, or why it cannot be read."""

    number: int
    docs: list[Document] = field(default_factory=list)
    ocr: Future[_Recognised] | None = None
    error: LoadError | None = None
    layer: _TextLayer | None = None

    def done(self) -> bool:
        return self.ocr is None or self.ocr.done()

    def documents(self) -> list[Document]:
        """The page's Documents (waits for its OCR), none when it has no text; raises its `LoadError`."""
        if self.error is not None:
            raise self.error
        if self.ocr is not None:
            try:
                recognised = self.ocr.result()
            except LoadError as err:  # the engine cannot start (its model is missing)
                raise LoadError(err.cause, page=self.number) from err
            except Exception as err:  # onnxruntime and OpenCV raise their own types
                raise LoadError(f"OCR failed: {reason(err)}", page=self.number) from err
            if recognised.lines and self.layer is not None:
                return self.layer.ocr_documents(self.number, recognised.lines, recognised.regions)
            if recognised.lines:  # no text layer to go on from (OCR ALWAYS): the OCR's rows, as they come
                corners = [
                    [(b[0], b[1]), (b[2], b[1]), (b[2], b[3]), (b[0], b[3])] for b in (x.box for x in recognised.lines)
                ]
                text = ocr.reading_order(corners, [line.text for line in recognised.lines])
                return [Document(page_content=text, metadata={"page": self.number, "start_index": 0, "ocr": True})]
        return self.docs  # OCR found nothing: a scrap of text layer beats nothing


class _Reading:
    """Renders pages with PDFium (in the caller's thread: PDFium is not thread-safe) and reads them by OCR in a
    pool of threads, one page per core (``loaders.ocr.page_workers``); the document and the pool are opened on the
    first page that needs them.

    Threads, not processes: 93% of a page's CPU time is spent in onnxruntime with the GIL released, so two threads
    read two pages side by side, and share the one engine (no second copy of the models, no start-up).
    """

    def __init__(self, path: Path, password: str | None) -> None:
        self.path = path
        self.password = password
        self._pdf: pdfium.PdfDocument | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._workers = ocr.page_workers()
        self._running: list[Future[_Recognised]] = []

    def start(self, number: int, *, model: bool) -> Future[_Recognised]:
        """Starts reading page `number` (1-based) as soon as a worker is free; the future's text is "" for a blank
        page. Raises `LoadError` with `page` when the page cannot be rendered.

        Waiting for a free worker, rather than queueing, bounds the rendered pages held in memory to one per worker.
        """
        try:
            image, points = self._render(number)  # while the workers are still busy with the pages before
        except Exception as err:  # PDFium's own errors on a damaged page or file
            raise LoadError(f"cannot render page for OCR: {reason(err)}", page=number) from err
        if _is_blank(image):
            done: Future[_Recognised] = Future()
            done.set_result(_Recognised([], None))
            return done
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="ocr")
        self._running = [future for future in self._running if not future.done()]
        if len(self._running) >= self._workers:
            wait(self._running, return_when=FIRST_COMPLETED)
            self._running = [future for future in self._running if not future.done()]
        future = self._pool.submit(_recognise, image, points, model)
        self._running.append(future)
        return future

    def _render(self, number: int) -> tuple[Image.Image, float]:
        """The page's picture for OCR, and the points one of its pixels spans."""
        import pypdfium2 as pdfium

        if self._pdf is None:
            self._pdf = pdfium.PdfDocument(self.path, password=self.password)
        page = self._pdf[number - 1]
        try:
            # A poster-sized page at 200 dpi would be hundreds of megapixels; OCR shrinks to ocr.MAX_SIDE anyway.
            scale = min(_OCR_DPI / 72, _MAX_RENDER_SIDE / max(page.get_size()))
            return page.render(scale=scale, grayscale=True).to_pil(), 1 / scale
        finally:
            page.close()

    def close(self) -> None:
        """Waits for the pages being read (a consumer that stops early does not leave threads behind)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None


@dataclass(frozen=True)
class _Recognised:
    """A page read by OCR: its text boxes as lines (in points), and the layout model's regions (None: not run)."""

    lines: list[Line]
    regions: list[Region] | None


def _recognise(image: Image.Image, points: float, model: bool) -> _Recognised:
    """OCR's text boxes of a page's picture as lines in points (their height as their size); with `model`, the
    layout model's regions of the same picture too (None, with the text rows kept, if the model fails)."""
    lines = [
        Line(text, (x0 * points, top * points, x1 * points, bottom * points), (bottom - top) * points, False)
        for (x0, top, x1, bottom), text in ocr.recognise_boxes(image)
    ]
    regions = None
    if model and lines:
        import numpy as np

        try:
            regions = image_regions(np.asarray(image.convert("RGB")), points)
        except Exception as err:  # onnxruntime or OpenCV: the OCR's rows are still there
            logger.warning("layout model failed on an OCR'd page (%s): its text rows kept", reason(err))
    return _Recognised(lines, regions)


def _is_blank(image: Image.Image) -> bool:
    """A page with no contrast at all: detection would take a second or two to find nothing on it."""
    darkest, lightest = cast("tuple[float, float]", image.getextrema())  # one band (grayscale): (min, max)
    return lightest - darkest < _BLANK_CONTRAST
