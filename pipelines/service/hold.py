"""A long-running reader's hold on its store (``serve``, ``mcp``), with ``--watch``: one process ingests and serves.

Chroma's embedded store is single-process: a process sees only its own writes (another process's new chunks come back
without text or metadata). So while ``serve`` or ``mcp`` has an embedded store open, other processes' ingests are
refused with one line (:meth:`pipelines.store.chroma.Store.serving`), and ``--watch PATH...`` runs the watch in the
serving process instead, whose searches then see each file as soon as it is committed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

from pipelines.ingestion.watch import watching
from pipelines.settings import Settings
from pipelines.store.chroma import open_store


def _stderr(line: str) -> None:
    # stderr: over stdio, ``mcp``'s stdout is the protocol.
    print(line, file=sys.stderr, flush=True)


@contextmanager
def serving(settings: Settings, watch: Sequence[Path], say: Callable[[str], None] = _stderr) -> Iterator[None]:
    """Hold the store for the block; with ``watch``, keep the collection in sync with those paths meanwhile (``say``
    gets the watch's lines: what changed, one line each)."""
    store = open_store(settings)
    with store.serving(), watching(watch, settings, say) if watch else nullcontext():
        yield
