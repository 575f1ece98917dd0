"""Image files (PNG, JPEG, TIFF, BMP, WebP): their text, read by OCR, one Document per frame.

An image has no text layer: without OCR there is nothing to index, so ``--ocr never`` refuses image files with a
cause rather than returning nothing. Pillow decodes; ``loaders.ocr`` reads.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from PIL import Image, ImageOps, UnidentifiedImageError

from loaders import ocr
from loaders.errors import LoadError, nothing_read, reason
from loaders.options import OcrMode, ReadOptions
from loaders.source import AnyPath

logger = logging.getLogger("loaders.image")


class ImageFileLoader(BaseLoader):
    """An image file as one Document per frame with text; metadata ``ocr`` True, ``start_index`` 0, and ``page``
    (1-based) when the file has several frames (a multi-page TIFF).

    Raises `LoadError` when OCR is off, the image cannot be decoded or is too large (Pillow's decompression-bomb
    limit, ``Image.MAX_IMAGE_PIXELS``), or no frame has any text. A frame of a multi-frame file that cannot be
    decoded is skipped and handed to ``options.on_page_error``, like a PDF page.

    Usage (a LangChain document loader: any str or path-like)::

        docs = ImageFileLoader("receipt.jpg").load()
        for doc in ImageFileLoader("receipt.jpg").lazy_load():
            print(doc.page_content)
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)
        self.options = options or ReadOptions()

    def lazy_load(self) -> Iterator[Document]:
        if self.options.ocr is OcrMode.NEVER:
            raise LoadError("image file: OCR is off (--ocr never)")
        found = False
        failed: LoadError | None = None
        with self.path.open("rb") as stream, _open(stream) as image:  # file-system errors stay OSError
            try:
                count = getattr(image, "n_frames", 1)  # a TIFF walks its chain of frames to count them
            except Exception as err:
                raise LoadError(f"corrupt or unsupported image: {reason(err)}") from err
            for index in range(count):
                page = index + 1 if count > 1 else None
                try:
                    text = _read(image, index, page)
                except LoadError as err:
                    if page is None:
                        raise
                    failed = err
                    self._page_error(err)
                    continue
                if text:
                    found = True
                    metadata: dict[str, str | int | bool] = {"start_index": 0, "ocr": True}
                    if page is not None:
                        metadata["page"] = page
                    yield Document(page_content=text, metadata=metadata)
        if not found:
            raise nothing_read(failed, "frame", "no text found in the image (OCR)")

    def _page_error(self, error: LoadError) -> None:
        if self.options.on_page_error is None:
            logger.warning("%s: page %s skipped: %s", self.path, error.page, error)
        else:
            self.options.on_page_error(error)


def _open(stream: BinaryIO) -> Image.Image:
    """The image in `stream`, header read, pixels not yet decoded."""
    try:
        # Pillow warns (and only raises beyond twice the limit) on an image over MAX_IMAGE_PIXELS: a few hundred
        # bytes of PNG can claim gigapixels and exhaust memory when decoded. Refuse both. (catch_warnings swaps
        # the process's warning filters, for the moment the header takes to read.)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise LoadError(f"image too large to decode safely: {reason(err)}") from err
    except UnidentifiedImageError as err:  # its message names the file; the caller does that
        raise LoadError("corrupt or unsupported image: not a known image format") from err
    except Exception as err:  # Pillow's plugins raise many types (SyntaxError, ValueError, struct.error) on bad headers
        raise LoadError(f"corrupt or unsupported image: {reason(err)}") from err
    if image.format == "JPEG":
        # libjpeg can decode at 1/2, 1/4 or 1/8 scale directly: a 48-megapixel photo then never exists in memory
        # at full size, and OCR would shrink it to ocr.MAX_SIDE anyway.
        image.draft("RGB", (ocr.MAX_SIDE, ocr.MAX_SIDE))
    return image


def _read(image: Image.Image, index: int, page: int | None) -> str:
    """The OCR text of frame `index`; `LoadError` (with `page`) when it cannot be decoded or read."""
    try:
        image.seek(index)
    except Exception as err:  # a frame table pointing past the end of the file
        raise LoadError(f"corrupt or unsupported image: {reason(err)}", page=page) from err
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > limit:  # Image.open checks the first frame only
        raise LoadError(f"image too large to decode safely: {image.width}x{image.height} pixels", page=page)
    try:
        image.load()
        # A phone photo is stored sideways with an EXIF tag saying how to turn it; upright lines read far better.
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as err:  # truncated data, a broken codec stream
        raise LoadError(f"corrupt or unsupported image: {reason(err)}", page=page) from err
    try:
        return ocr.recognise(image)
    except LoadError:
        raise
    except Exception as err:  # onnxruntime and OpenCV raise their own types
        raise LoadError(f"OCR failed: {reason(err)}", page=page) from err
