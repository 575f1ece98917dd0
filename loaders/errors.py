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


@dataclass(frozen=True)
class Problem:
    """A reported, non-fatal issue: the file (or folder) is skipped and the rest goes on.

    Usage::

        Problem("docs/secret.pdf", "encrypted PDF: needs a password (use --pdf-password)")
    """

    source: str  # path relative to the ingested root (posix)
    cause: str  # one line
    page: int | None = None
