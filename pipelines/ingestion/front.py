"""The front of an ingest: read files, cut them into chunks and embed those, ahead of the store writer.

It runs in threads of the ingest process, or in a forked child process (:class:`~pipelines.settings.Workers`).
Why a process: Chroma's embedded upsert holds the GIL for its whole call (about 0.3 s for 256 chunks of 1024
dimensions), so in one process no embedding request is sent or answered while the store writes, and a GPU server
idles through every write. In a child the front keeps ``concurrency`` requests in flight whatever the writer does.
The child is forked, not spawned: it inherits the loaded modules and tokenizer, where a spawned one spends 2.5 s
importing them; so processes are for Linux, and the child dies with its parent (``PR_SET_PDEATHSIG``).

The front never touches the store. Chunks whose text the store already holds (``Chunk.reuse``) go through
unembedded; the writer takes their vectors from Chroma.

Events the front emits, in order per file, as plain picklable tuples:

- ``("batch", (chunks, failures, requests))``: chunks with vectors (or ``reuse``), chunks the server refused
  with the cause, and how many embedding requests it took;
- ``("produced", (key, count, error))``: a file is read, ``count`` chunks came from it, ``error`` is
  ``(cause, page)`` if it could not be read to the end;
- ``("page", Problem)``: one unreadable page of a PDF (the rest of it is indexed);
- ``("fatal", (message, status))``: the embedding server gave up; the front stops;
- ``("crash", message)``: an unexpected error in the front;
- ``("end", n)``: nothing more will come; ``n`` "batch" and "fatal" events were emitted in all.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from loaders import LoadError, Problem, SourceFile, read
from loaders.chunking import Chunker
from pipelines.embeddings.providers import EmbeddingServerError
from pipelines.store.records import CHUNK_HASH, CHUNKER, FILE_HASH, POSITION, ROOT, SOURCE, TOTAL, chunk_hash, chunk_id

Metadata = dict[str, str | int | float | bool]
Event = tuple[str, Any]


@dataclass
class Chunk:
    key: tuple[str, str]  # (root, source) of its file
    id: str
    text: str
    metadata: Metadata
    reuse: str | None = None  # id of a stored chunk with the same text, whose vector can be reused
    vector: np.ndarray | None = None  # float32: a quarter of the bytes of a list of floats between processes


@dataclass
class Job:
    """One file to read: what the front needs to know of it."""

    key: tuple[str, str]
    file: SourceFile
    digest: str  # sha256 of the file, as planned
    stored: dict[str, str] = field(default_factory=dict)  # chunk text hash -> id of the stored chunk with it


class _Semaphore(Protocol):
    def acquire(self, block: bool = ..., timeout: float | None = ...) -> bool: ...
    def release(self) -> None: ...


class _Flag(Protocol):
    def is_set(self) -> bool: ...
    def set(self) -> None: ...


def embed_batch(embeddings: Embeddings, batch: list[Chunk]) -> tuple[list[Chunk], list[tuple[Chunk, str]], int]:
    """Embed the chunks that have neither vector nor stored twin; a 400 is narrowed down to the refused items.

    Returns the chunks that are ready, the refused ones with the server's cause, and the requests made.
    """
    failures: list[tuple[Chunk, str]] = []
    requests = 0

    def attempt(group: list[Chunk]) -> None:
        nonlocal requests
        if not group:
            return
        requests += 1
        try:
            vectors = embeddings.embed_documents([c.text for c in group])
        except EmbeddingServerError as error:
            if error.status != 400:
                raise
            if len(group) == 1:
                failures.append((group[0], str(error)))
                return
            # SGLang fails the whole request for one bad item (sglang-protocol.md §1.2): split and retry.
            middle = len(group) // 2
            attempt(group[:middle])
            attempt(group[middle:])
            return
        for chunk, vector in zip(group, vectors, strict=True):
            chunk.vector = np.asarray(vector, dtype=np.float32)

    attempt([c for c in batch if c.vector is None and c.reuse is None])
    failed = {id(c) for c, _ in failures}
    return [c for c in batch if id(c) not in failed], failures, requests


class Front:
    """Reads, chunks and embeds ``jobs``, emitting events (see the module docstring) through ``put``."""

    def __init__(
        self,
        chunker: Chunker,
        chunker_id: str,
        embeddings: Embeddings,
        *,
        concurrency: int,
        batch_size: int,
        pdf_password: str | None,
    ) -> None:
        self.chunker = chunker
        self.chunker_id = chunker_id
        self.embeddings = embeddings
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.pdf_password = pdf_password

    def run(self, jobs: list[Job], put: Callable[[Event], None], in_flight: _Semaphore, stop: _Flag) -> None:
        """Emit every job's events, then ``("end", n)``. A batch holds a permit of ``in_flight`` until the
        writer has taken it, which bounds the memory whatever the size of the corpus."""
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="qwen-rag-embed")
        emitted = 0  # "batch" and "fatal" events; batches cancelled after a fatal one emit nothing
        lock = threading.Lock()

        def emit(event: Event) -> None:
            nonlocal emitted
            with lock:
                emitted += 1
                put(event)

        def embed(batch: list[Chunk]) -> None:
            try:
                emit(("batch", embed_batch(self.embeddings, batch)))
            except EmbeddingServerError as error:
                stop.set()
                emit(("fatal", (str(error), error.status)))

        def send(batch: list[Chunk]) -> bool:
            while not in_flight.acquire(timeout=0.1):
                if stop.is_set():
                    return False
            if any(c.reuse is None for c in batch):
                pool.submit(embed, batch)
            else:
                emit(("batch", (batch, [], 0)))
            return True

        try:
            batch: list[Chunk] = []
            for job in jobs:
                if stop.is_set():
                    break
                count, error = 0, None
                try:
                    for chunk in self.chunks(job, put):
                        count += 1
                        batch.append(chunk)
                        if len(batch) >= self.batch_size:
                            if not send(batch):
                                break
                            batch = []
                except LoadError as failure:
                    error = (str(failure), failure.page)
                except OSError as failure:
                    error = (f"cannot read: {failure.strerror or failure}", None)
                put(("produced", (job.key, count, error)))
            if batch and not stop.is_set():
                send(batch)
        finally:
            pool.shutdown(wait=True, cancel_futures=stop.is_set())
            put(("end", emitted))

    def chunks(self, job: Job, put: Callable[[Event], None]) -> Iterator[Chunk]:
        root, source = job.key

        def page_failed(error: LoadError) -> None:
            # One unreadable page costs that page: it is reported, the rest of the PDF is indexed.
            put(("page", Problem(source, str(error), error.page)))

        docs = read(job.file, pdf_password=self.pdf_password, on_page_error=page_failed)
        for position, doc in enumerate(self.chunker.split_many(docs)):
            text_hash = chunk_hash(doc.page_content)
            meta: Metadata = {k: v for k, v in doc.metadata.items() if isinstance(v, str | int | float | bool)}
            meta.update(
                {
                    ROOT: root,
                    SOURCE: source,
                    FILE_HASH: job.digest,
                    CHUNKER: self.chunker_id,
                    POSITION: position,
                    CHUNK_HASH: text_hash,
                    # Set on the first chunk, which is written last: an unfinished file is redone on the next run.
                    TOTAL: 0,
                }
            )
            cid = chunk_id(root, source, position, text_hash)
            yield Chunk(job.key, cid, doc.page_content, meta, reuse=job.stored.get(text_hash))


class Running:
    """A started front: the writer takes its events with :meth:`get` and hands back a permit per batch."""

    def __init__(self, front: Front, jobs: list[Job], *, process: bool) -> None:
        self.process = process
        if process:
            context = multiprocessing.get_context("fork")
            # A Queue, not a SimpleQueue: its feeder thread buffers, so the child's request threads never wait
            # for the parent to read (it does not while Chroma writes). The permits bound that buffer.
            self._events: Any = context.Queue()
            self._in_flight: Any = context.Semaphore(front.concurrency * 2)
            self._stop: Any = context.Event()
            self._worker: Any = context.Process(
                target=_child, args=(front, jobs, self._events, self._in_flight, self._stop), daemon=True
            )
            # Objects the child inherits must never be collected there: a Chroma object's destructor waits on
            # runtime threads that a fork does not copy, and the child would hang (seen in the test suite).
            gc.freeze()
            try:
                self._worker.start()
            finally:
                gc.unfreeze()
        else:
            self._events = queue.SimpleQueue()
            self._in_flight = threading.Semaphore(front.concurrency * 2)
            self._stop = threading.Event()
            self._worker = threading.Thread(
                target=_guarded, args=(front, jobs, self._events.put, self._in_flight, self._stop), daemon=True
            )
            self._worker.start()

    def get(self) -> Event:
        """The next event; raises if the child process died without a word (killed by the OOM killer, say)."""
        while True:
            try:
                return self._events.get(timeout=1.0)
            except queue.Empty:
                if not self._worker.is_alive():
                    break
        try:  # its last words may still be on their way
            return self._events.get(timeout=0.5)
        except queue.Empty:
            code = getattr(self._worker, "exitcode", None)
            raise RuntimeError(f"the ingest's reader stopped without finishing (exit code {code})") from None

    def ready(self) -> list[Event]:
        """The events already there, without waiting."""
        events: list[Event] = []
        with contextlib.suppress(queue.Empty):
            while True:
                events.append(self._events.get_nowait())
        return events

    def taken(self) -> None:
        """The writer has taken a batch: the front may send another."""
        self._in_flight.release()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop the front and wait for it; a child that does not end in 10 s (a request hanging) is killed."""
        self._stop.set()
        deadline = time.monotonic() + 10
        while self._worker.is_alive() and time.monotonic() < deadline:
            self._worker.join(timeout=0.1)
            if self.process:
                self.ready()  # drain: a child cannot exit while its feeder thread still has events for the pipe
        if self.process and self._worker.is_alive():
            self._worker.kill()
            self._worker.join()


def _guarded(front: Front, jobs: list[Job], put: Callable[[Event], None], in_flight: _Semaphore, stop: _Flag) -> None:
    try:
        front.run(jobs, put, in_flight, stop)
    except BaseException as error:  # the writer waits on these events: tell it rather than leave it hanging
        put(("crash", f"{type(error).__name__}: {error}"))


def _child(front: Front, jobs: list[Job], events: Any, in_flight: _Semaphore, stop: _Flag) -> None:
    _die_with_parent()
    # The parent's HTTP connections were copied by the fork: this process opens its own.
    front.embeddings = front.embeddings.detached()  # type: ignore[attr-defined]
    _guarded(front, jobs, events.put, in_flight, stop)


def _die_with_parent() -> None:
    """A SIGKILLed ingest must not leave its reader running (Linux: the kernel sends SIGKILL to the child)."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
