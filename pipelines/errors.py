"""One base for every error a user can act on: its ``str()`` is one line (what, where, what to do), and it knows
which HTTP status the service answers with. The CLI prints any of them as one line (the traceback only with
``--debug``); the service and the MCP server map them by ``http_status``.

>>> str(ConfigError("bad  value\\n for --mode"))
'bad value for --mode'
>>> StoreUnavailable("cannot reach the Chroma server").http_status
503
"""

from __future__ import annotations

from typing import ClassVar

from loaders.errors import one_line


class QwenRagError(Exception):
    """A problem the user can fix. Subclasses set ``http_status``."""

    http_status: ClassVar[int] = 500

    def __str__(self) -> str:
        # Third-party causes folded into a message may span lines; a CLI line or a JSON detail must not.
        return one_line(super().__str__()) or type(self).__name__


class ConfigError(QwenRagError):
    """A setting or argument that cannot work (a reranker URL that is neither a URL nor a directory, ...)."""

    http_status: ClassVar[int] = 400


class DatasetError(QwenRagError):
    """An evaluation dataset that is missing or malformed; the message names the file (and line)."""

    http_status: ClassVar[int] = 400


class StoreError(QwenRagError):
    """The collection is missing, or was built with another model or dimension."""

    http_status: ClassVar[int] = 409


class StoreUnavailable(StoreError):
    """The store itself cannot be reached (a Chroma server that is down)."""

    http_status: ClassVar[int] = 503


class EmbeddingServerError(QwenRagError):
    """The embedding server refused or could not be reached; ``str()`` is the server's own message."""

    http_status: ClassVar[int] = 503

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class IngestError(QwenRagError):
    """The ingest could not go on (its reader died); what was written stays, the next run resumes."""

    http_status: ClassVar[int] = 500
