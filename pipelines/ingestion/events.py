"""What the ingest's front tells its writer: chunks, and the events around them, as typed dataclasses.

The front may run in a child process, so every event is a plain picklable dataclass (no exceptions with keyword
arguments, no open handles). Per file, in order: its `Batch`es (a batch may hold chunks of several files) and
`PageSkipped`s, then one `FileRead`. `ServerGaveUp` stops the run. The last event is `End`, or `FrontCrashed` in
its place after an unexpected error.

>>> import pickle
>>> from loaders import Problem
>>> event = FileRead(("/docs", "a.pdf"), chunks=3, problem=Problem("a.pdf", "encrypted PDF", None))
>>> pickle.loads(pickle.dumps(event)) == event
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loaders import Problem
from pipelines.store.marker import FileKey

#: A chunk's metadata on its way to Chroma; None removes a key from a stored chunk of the same id.
Metadata = dict[str, str | int | float | bool | None]


@dataclass
class Chunk:
    """One chunk of a file, on its way to the store."""

    key: FileKey
    id: str
    text: str
    metadata: Metadata
    reuse: str | None = None  # id of a stored chunk with the same text, whose vector can be reused
    vector: np.ndarray | None = None  # float32: a quarter of the bytes of a list of floats between processes
    terms: str = ""  # the text's BM25 terms, space-separated: analysed by the front, beside the embedding


@dataclass
class Batch:
    """Chunks ready to write (embedded, or with a stored twin in ``reuse``), the chunks the server refused with its
    cause, and the embedding requests they took. Each batch holds one of the front's permits until taken."""

    chunks: list[Chunk]
    refused: list[tuple[Chunk, str]]
    requests: int


@dataclass(frozen=True)
class FileRead:
    """The front is done with a file: ``chunks`` came from it; ``problem`` if it could not be read to the end."""

    key: FileKey
    chunks: int
    problem: Problem | None = None


@dataclass(frozen=True)
class PageSkipped:
    """One page (PDF page, slide, sheet) could not be read; the rest of its file is indexed."""

    problem: Problem


@dataclass(frozen=True)
class ServerGaveUp:
    """The embedding server gave up (retries spent, or a refusal that is not about one item): the front stops."""

    message: str
    status: int | None


@dataclass(frozen=True)
class FrontCrashed:
    """An unexpected error in the front (a bug): ``message`` is its type and text, in one line."""

    message: str


@dataclass(frozen=True)
class End:
    """Nothing more will come; ``batches`` is how many `Batch` and `ServerGaveUp` events were emitted in all (each
    stands for one batch, and held one permit)."""

    batches: int


Event = Batch | FileRead | PageSkipped | ServerGaveUp | FrontCrashed | End
