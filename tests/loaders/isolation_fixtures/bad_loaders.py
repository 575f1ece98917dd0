"""Loaders that fail the ways real parsers do, as a format's loader class: ``Loader(path, options)``.

Registered by the tests under made-up extensions (``.hang``, ``.segv``, ...), so that a worker process receives
them from its parent like any format.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.options import ReadOptions

BULK_DOCS = 200  # of BULK_SIZE characters each: far more than a pipe holds
BULK_SIZE = 64 << 10


class _Misbehaving(BaseLoader):
    def __init__(self, path: Path, options: ReadOptions) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        self.misbehave()
        yield Document(page_content="unreachable")

    def misbehave(self) -> None:
        raise NotImplementedError


class HangLoader(_Misbehaving):
    """Backtracks for ever in a regular expression, holding the GIL all along, as real parsers' regexes can."""

    def misbehave(self) -> None:
        re.fullmatch(r"(a+)+$", "a" * 64 + "!")


class SegfaultLoader(_Misbehaving):
    def misbehave(self) -> None:
        ctypes.string_at(0)


class ExitLoader(_Misbehaving):
    def misbehave(self) -> None:
        os._exit(3)


class KilledLoader(_Misbehaving):
    """Ends as the OOM killer would end it."""

    def misbehave(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


class MemoryLoader(_Misbehaving):
    def misbehave(self) -> None:
        bytearray(1 << 60)


class RaiseLoader(_Misbehaving):
    def misbehave(self) -> None:
        raise TypeError("bad\ninput")


class BulkLoader(BaseLoader):
    """Many large Documents, quickly."""

    def __init__(self, path: Path, options: ReadOptions) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        for number in range(BULK_DOCS):
            yield Document(page_content=f"{number:08d}".ljust(BULK_SIZE, "x"), metadata={"start_index": number})
