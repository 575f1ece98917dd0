"""The front of an ingest: read files, cut them into chunks and embed those, ahead of the store writer.

Files are parsed by :class:`loaders.isolation.IsolatedReader`: PDFs, Office files, HTML and images in worker
processes (as many at once as there are cores, ahead of the chunking), text and code here. A file whose parser
hangs past ``file_timeout`` or kills its worker costs that file only: it is reported with its cause like any
unreadable file, and the run goes on.

The front runs in threads of the ingest process or in a child process (:mod:`pipelines.ingestion.running`, which
says why and how). It never touches the store: chunks whose text the store already holds (``Chunk.reuse``) go
through unembedded, and the writer takes their vectors from Chroma.

It emits the events of :mod:`pipelines.ingestion.events`, in order per file: its `Batch`es (chunks with vectors or
a stored twin, the chunks the server refused with the cause, the requests it took) and `PageSkipped`s, then its
`FileRead` (how many chunks, and the problem if it could not be read to the end). `ServerGaveUp` when the
embedding server gave up (the front then stops); `End` last, unless an unexpected error ends it
(:mod:`~pipelines.ingestion.running` then sends `FrontCrashed`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
from langchain_core.documents import Document

from loaders import LayoutMode, LoadError, OcrMode, Problem, SourceFile
from loaders.chunking import Chunker
from loaders.isolation import IsolatedReader
from pipelines.embeddings import Provider
from pipelines.errors import EmbeddingServerError
from pipelines.ingestion.events import Batch, Chunk, End, Event, FileRead, Metadata, PageSkipped, ServerGaveUp
from pipelines.ingestion.plan import Job
from pipelines.retrieve.lexical import analyze
from pipelines.store.records import (
    CHUNK_HASH,
    CHUNKER,
    FILE_HASH,
    POSITION,
    ROOT,
    SOURCE,
    TOTAL,
    chunk_hash,
    chunk_id,
    tagged,
)


class Semaphore(Protocol):
    def acquire(self, block: bool = ..., timeout: float | None = ...) -> bool: ...
    def release(self) -> None: ...


class Flag(Protocol):
    def is_set(self) -> bool: ...
    def set(self) -> None: ...


def embed_batch(embeddings: Provider, batch: list[Chunk]) -> Batch:
    """Embed the chunks that have neither vector nor stored twin; a 400 is narrowed down to the refused items."""
    refused: list[tuple[Chunk, str]] = []
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
                refused.append((group[0], str(error)))
                return
            # SGLang fails the whole request for one bad item (docs/sglang.md §1.2): split and retry.
            middle = len(group) // 2
            attempt(group[:middle])
            attempt(group[middle:])
            return
        for chunk, vector in zip(group, vectors, strict=True):
            chunk.vector = np.asarray(vector, dtype=np.float32)

    attempt([c for c in batch if c.vector is None and c.reuse is None])
    failed = {id(c) for c, _ in refused}
    return Batch([c for c in batch if id(c) not in failed], refused, requests)


class Front:
    """Reads, chunks and embeds jobs, emitting events (see the module docstring) through ``put``."""

    def __init__(
        self,
        chunker: Chunker,
        chunker_id: str,
        embeddings: Provider,
        *,
        concurrency: int,
        batch_size: int,
        pdf_password: str | None,
        ocr: OcrMode,
        file_timeout: float,
        layout: LayoutMode = LayoutMode.AUTO,
        few: bool = False,
    ) -> None:
        self.chunker = chunker
        # A few files: their Chinese words are looked up in the prepared dictionary rather than loading jieba's
        # whole one (1.2 s on the dev box); the terms are the same (pipelines.retrieve.lexical.analyze). Set when
        # the jobs are known (Running.start).
        self.few = few
        self.chunker_id = chunker_id
        self.embeddings = embeddings
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.pdf_password = pdf_password
        self.ocr = ocr
        self.layout = layout
        self.file_timeout = file_timeout

    def warm(self) -> None:
        """Load what the first file needs before it comes: the tokenizer and the embedding client (an empty request
        sends nothing). Called by :mod:`~pipelines.ingestion.running` while the writer still reads the store."""
        self.chunker.counter.count("")
        self.embeddings.embed_documents([])

    def run(self, jobs: list[Job], put: Callable[[Event], None], in_flight: Semaphore, stop: Flag) -> None:
        """Emit every job's events, then `End` (an error propagates instead). A batch holds a permit of
        ``in_flight`` until the writer has taken it, which bounds the memory whatever the size of the corpus."""
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="qwen-rag-embed")
        emitted = 0  # Batch and ServerGaveUp events; batches cancelled after the server gave up emit nothing
        lock = threading.Lock()

        def emit(event: Batch | ServerGaveUp) -> None:
            nonlocal emitted
            with lock:
                emitted += 1
                put(event)

        def embed(batch: list[Chunk]) -> None:
            try:
                emit(embed_batch(self.embeddings, batch))
            except EmbeddingServerError as error:
                stop.set()
                emit(ServerGaveUp(str(error), error.status))

        def send(batch: list[Chunk]) -> bool:
            while not in_flight.acquire(timeout=0.1):
                if stop.is_set():
                    return False
            if any(c.reuse is None for c in batch):
                pool.submit(embed, batch)
            else:
                emit(Batch(batch, [], 0))
            return True

        def page_skipped(file: SourceFile, error: LoadError) -> None:
            # One unreadable page costs that page: it is reported, the rest of the file is indexed.
            put(PageSkipped(Problem(file.source, str(error), error.page)))

        reader = IsolatedReader(
            timeout=self.file_timeout,
            pdf_password=self.pdf_password,
            ocr=self.ocr,
            layout=self.layout,
            on_page_error=page_skipped,
        )
        try:
            batch: list[Chunk] = []
            # Leaving the loop early (the server gave up) stops the workers parsing files ahead.
            with reader, contextlib.closing(reader.read_all(job.file for job in jobs)) as files:
                for job, (_, docs) in zip(jobs, files, strict=True):
                    if stop.is_set():
                        break
                    count, problem = 0, None
                    try:
                        for chunk in self.chunks(job, docs):
                            count += 1
                            batch.append(chunk)
                            if len(batch) >= self.batch_size:
                                if not send(batch):
                                    break
                                batch = []
                    except LoadError as failure:
                        problem = Problem(job.file.source, str(failure), failure.page)
                    put(FileRead(job.key, count, problem))
            if batch and not stop.is_set():
                send(batch)
        finally:
            pool.shutdown(wait=True, cancel_futures=stop.is_set())
        # Not on an error: the writer must read the crash, and it stops reading at the end.
        put(End(emitted))

    def chunks(self, job: Job, docs: Iterable[Document]) -> Iterator[Chunk]:
        """The chunks of one file's Documents, with the user's fields (over the file's own properties) and the
        metadata that makes the store its own record."""
        root, source = job.key
        stored = job.stored()
        fields, dropped = tagged(job.fields), job.dropped
        for position, doc in enumerate(self.chunker.split_many(docs)):
            text_hash = chunk_hash(doc.page_content)
            meta: Metadata = {k: v for k, v in doc.metadata.items() if isinstance(v, str | int | float | bool)}
            # A stored chunk with the same id keeps the keys this upsert leaves out: fields the file no longer has
            # are set to None, which Chroma drops.
            meta.update({name: None for name in dropped if name not in meta})
            meta.update(fields)
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
            # The analyzer runs here, in the front (a child process when it can), off the writer's path.
            terms = " ".join(analyze(doc.page_content, query=self.few))
            yield Chunk(job.key, cid, doc.page_content, meta, reuse=stored.get(text_hash), terms=terms)
