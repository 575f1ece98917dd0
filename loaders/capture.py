"""What parser libraries say while reading a file, kept off the user's terminal: Python warnings are captured per
file, and the library loggers that would print through Python's last-resort handler are demoted to DEBUG.

A parser library warns about what it repaired or dropped: Pillow about corrupt EXIF data (the photo's metadata,
not its pixels), openpyxl about features it does not support (data validation, conditional formatting: never a
cell's value), pypdf about repaired cross-reference tables. With no handler configured (a parser worker, a script)
each reaches stderr raw, with its source line, amid the ingest's one-line report. So `captured` records the
warnings raised while a loader runs (between two Documents, not while the caller holds one) and sorts them:

- one that means part of the file's content was lost (`LOST`: truncated data, data that could not be read or
  decoded) goes to the file's problem report through ``on_page_error``, as a `LoadError` without a page;
- the rest go to the debug log ("loaders.capture"), with the library's module, for whoever runs ``--debug``.

Pillow also *logs* some problems at ERROR before raising (``More samples per pixel than can be decoded``, then
"Invalid value for samples per pixel"): the exception already becomes the file's cause, so its logger is demoted
to DEBUG here, as `loaders.pdf` does for pypdf's and `loaders.ocr` for RapidOCR's.

``warnings.catch_warnings`` swaps the process's warning state, so a warning another thread raises during that
moment is captured too (and logged at DEBUG against this file): the ingest reads files in one thread.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from loaders.errors import LoadError, one_line

if TYPE_CHECKING:  # the registry imports this module, and walk the registry: LangChain is not needed to run
    from langchain_core.documents import Document

logger = logging.getLogger("loaders.capture")

#: Warnings whose message says content was lost (rather than repaired, or metadata dropped).
LOST = re.compile(r"truncated|(?:could not|cannot|can't|unable to) (?:be )?(?:read|decod)|data (?:was )?lost", re.I)
_DEMOTED_LOGGERS = ("PIL",)


class _Demote(logging.Handler):
    """Passes a library's records on to our logger at DEBUG level."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("%s: %s", record.name, record.getMessage())


for _name in _DEMOTED_LOGGERS:
    logging.getLogger(_name).addHandler(_Demote())
    logging.getLogger(_name).propagate = False


def captured(docs: Iterator[Document], source: str, on_lost: Callable[[LoadError], None]) -> Iterator[Document]:
    """`docs`, with the warnings raised while producing each sorted as the module docstring says."""
    while True:
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")  # every occurrence, even one the process's filters show once or hide
                doc = next(docs, None)
        finally:  # also those raised before the loader failed
            for warning in caught:
                _sort(warning, source, on_lost)
        if doc is None:
            return
        yield doc


def _sort(warning: warnings.WarningMessage, source: str, on_lost: Callable[[LoadError], None]) -> None:
    message = one_line(str(warning.message))
    origin = _library(warning.filename)
    if LOST.search(message):
        on_lost(LoadError(f"part of the file could not be read ({origin}: {message})"))
    else:
        logger.debug("%s: %s %s: %s", source, origin, warning.category.__name__, message)


def _library(filename: str) -> str:
    """The top-level package a warning came from ("PIL", "openpyxl"), from its file's path."""
    parts = filename.replace("\\", "/").split("/")
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        return rest[0].removesuffix(".py") if rest else filename
    return parts[-1].removesuffix(".py")
