"""What goes wrong while reading files: `LoadError` (raised) and `Problem` (reported, the walk goes on).

Both carry a cause a user can act on, in one line: the CLI prints them next to the file name, so a message with
a traceback or a newline in it would break its output.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces: third-party messages may span lines."""
    return " ".join(text.split())


#: A cause quoted from a parser is cut here: some put a whole XML fragment or a repr of a large object in it.
REASON_CHARS = 160


def reason(err: BaseException) -> str:
    """A third-party exception's message as (part of) a cause: one line, at most `REASON_CHARS`, its type's name
    when it says nothing, and a KeyError's key without the quotes its str() adds."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = one_line(text) or type(err).__name__
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def os_cause(err: OSError) -> str:
    """The one-line cause of a failed file-system call, without the path (the caller names the file)."""
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, FileNotFoundError):
        return "no such file or folder"
    if err.errno == errno.ELOOP:
        return "symlink loop"
    return one_line(err.strerror or str(err))


class LoadError(Exception):
    """A file (or one page of it) that cannot be read; str() is one line: the cause, user-facing, no traceback.

    The caller knows the file and adds its name; `page` (1-based) says where inside a PDF it happened.

    Usage::

        try:
            docs = list(read(file))
        except LoadError as err:
            print(f"{file.source}: {err}")
    """

    def __init__(self, cause: str, *, page: int | None = None) -> None:
        self.cause = one_line(cause)
        self.page = page
        super().__init__(self.cause)


def nothing_read(failed: LoadError | None, unit: str, empty: str) -> LoadError:
    """The whole file's error when it gave no text: with `failed`, the last of its pages (``unit``: page, slide,
    sheet, chapter, frame) that could not be read, "no slide could be read (<cause> on slide 3)"; else `empty`, what
    a file whose pages were all read but held no text says."""
    if failed is None:
        return LoadError(empty)
    return LoadError(f"no {unit} could be read ({failed.cause} on {unit} {failed.page})")


@dataclass(frozen=True)
class Problem:
    """A reported, non-fatal issue: the file (or folder) is skipped and the rest goes on.

    Usage::

        Problem("docs/secret.pdf", "encrypted PDF: needs a password (use --pdf-password)")
    """

    source: str  # path relative to the ingested root (posix)
    cause: str  # one line
    page: int | None = None
