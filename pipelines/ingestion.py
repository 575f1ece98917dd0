"""The staged ingest: walk -> plan -> read and chunk -> embed (concurrent) -> write, with bounded queues.

Stages overlap: a producer thread reads and chunks ahead, ``concurrency`` embedding requests are in flight, and this
thread writes to Chroma. A semaphore bounds the batches in flight, so memory stays flat however large the corpus.

Incremental by construction (see :mod:`pipelines.records`): an unchanged file costs no request and no write; a
changed file reuses the vectors of chunks whose text it still has; a file gone from a root loses its chunks.

>>> from pipelines import ingest, Settings
>>> report = ingest(["data/samples"], Settings(store="/tmp/qwen-rag-doc"))     # doctest: +SKIP
>>> report.chunks_written, report.embedding_requests                          # doctest: +SKIP
(9, 1)
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chromadb.api.models.Collection import Collection
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from tqdm import tqdm

from loaders import LoadError, Problem, SourceFile, read, walk
from loaders.chunking import Chunker, ChunkSpec
from pipelines.embeddings import EmbeddingServerError, make_embeddings
from pipelines.lexical_sync import index_dir, sync_bm25
from pipelines.records import (
    CHUNK_HASH,
    CHUNKER,
    FILE_HASH,
    POSITION,
    ROOT,
    SOURCE,
    TOTAL,
    FileRecord,
    chunk_hash,
    chunk_id,
    read_records,
)
from pipelines.settings import Settings
from pipelines.store import TASK_KEY, IndexSignature, Store
from pipelines.tokens import counter_for

Metadata = dict[str, str | int | float | bool]

#: Chunks per Chroma write. An embedded-store upsert costs about 60 ms however small it is, so few large writes
#: beat many small ones (measured on 2 cores, 1024 dims: 110 vectors/s in writes of 8, 300 of 32, 860 of 128).
WRITE_BATCH = 256


class IngestAborted(RuntimeError):
    """The run stopped early (the embedding server gave up); what was written stays, the next run resumes."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class IngestReport:
    """What one ingest did; ``to_json()`` is what ``qwen-rag ingest --json`` prints."""

    collection: str
    files: int = 0  # files found under the roots
    added: int = 0  # new files indexed
    updated: int = 0  # changed (or unfinished) files re-indexed
    unchanged: int = 0
    deleted: int = 0  # files gone from the roots whose chunks were removed
    failed: int = 0  # files that could not be (fully) indexed: see problems
    chunks_written: int = 0
    chunks_deleted: int = 0
    chunks_reused: int = 0  # vectors taken from the store instead of re-embedded
    embedding_requests: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [asdict(p) for p in self.problems]
        return data


@dataclass
class _Chunk:
    key: tuple[str, str]
    id: str
    text: str
    metadata: Metadata
    reuse: str | None = None  # id of a stored chunk with the same text, whose vector can be reused
    vector: list[float] | None = None


@dataclass
class _FileTask:
    file: SourceFile
    key: tuple[str, str]
    record: FileRecord | None
    produced: int | None = None  # chunk count, once the producer is done with the file
    pending: int = 0  # chunks sent on but not yet written
    new_ids: set[str] = field(default_factory=set)
    head: _Chunk | None = None  # the first chunk, embedded and waiting for the rest of the file
    failed: bool = False


class Ingest:
    """One ingest run over some roots into one collection (``pipelines.ingestion()`` is the short way)."""

    def __init__(
        self,
        settings: Settings,
        embeddings: Embeddings | None = None,
        store: Store | None = None,
        progress: bool | None = None,
    ) -> None:
        self.settings = settings
        self.embeddings = embeddings if embeddings is not None else make_embeddings(settings)
        self.profile = self.embeddings.profile  # type: ignore[attr-defined]
        counter = counter_for(self.profile.tokenizer)
        spec = ChunkSpec(
            chunk_tokens=min(settings.chunk_tokens, self.profile.max_input_tokens),
            overlap_tokens=settings.chunk_overlap,
            max_tokens=self.profile.max_input_tokens,
        )
        self.chunker = Chunker(counter, spec)
        self.chunker_id = f"{counter.name}:{spec.chunk_tokens}:{spec.overlap_tokens}"
        self.store = store or open_store(settings)
        self.progress = sys.stderr.isatty() if progress is None else progress
        # The embedded model uses both cores itself; threads would only contend.
        self.concurrency = settings.concurrency if self.profile.tokenizer != "e5" or _is_server(self.embeddings) else 1
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()  # (root, source) of every file found by this run's walk
        self._page_problems: list[Problem] = []  # unreadable PDF pages, reported from the reader thread

    # -- planning -------------------------------------------------------------------------------------------

    def signature(self, *, full: bool) -> IndexSignature:
        """The collection's signature; the recorded dimension is trusted so an unchanged re-run sends nothing."""
        model = self.embeddings.model_id  # type: ignore[attr-defined]
        style = self.profile.query_style.value
        existing = None if full else self.store.existing(self.settings.collection)
        recorded = IndexSignature.from_metadata(existing.metadata) if existing else None
        wanted = self.settings.dimensions
        if recorded and recorded.model == model and wanted in (None, recorded.dimension):
            return recorded
        dimension = wanted if _is_server(self.embeddings) else (wanted or self.profile.dimension)
        if dimension is None:
            dimension = len(self.embeddings.embed_documents(["dimension probe"])[0])
        return IndexSignature(model=model, dimension=dimension, query_style=style)

    def run(self, paths: Sequence[str | Path], *, full: bool = False) -> IngestReport:
        started = time.monotonic()
        report = IngestReport(collection=self.settings.collection)
        roots = [Path(p).expanduser().resolve() for p in paths]
        with self.store.writer():
            if full and self.store.existing(self.settings.collection) is not None:
                self.store.client.delete_collection(self.settings.collection)
            collection = self.store.collection(
                self.settings.collection, self.signature(full=full), self.settings.on_mismatch
            )
            if "task" in self.settings.model_fields_set:
                # The collection remembers its query instruction, so every later query uses it by default.
                collection.modify(metadata={**(collection.metadata or {}), TASK_KEY: self.settings.task})
            records = read_records(self.store, collection, (str(r) for r in roots))
            tasks = self._plan(roots, records, report)
            self._delete_gone(collection, roots, records, tasks, report)
            self._page_problems.clear()
            try:
                self._pipeline(collection, tasks, report)
                if (report.chunks_written or report.chunks_deleted) and index_dir(self.store, collection.name).exists():
                    # The BM25 index follows the collection in the same run, so no query finds it stale. A collection
                    # never searched by words has none: its first bm25/hybrid query builds it.
                    sync_bm25(self.store, collection)
            finally:
                report.problems.extend(self._page_problems)
                report.seconds = round(time.monotonic() - started, 3)
        return report

    def _plan(
        self, roots: list[Path], records: dict[tuple[str, str], FileRecord], report: IngestReport
    ) -> list[_FileTask]:
        tasks: list[_FileTask] = []
        self._seen.clear()
        for item in walk(roots, self.settings.include, self.settings.exclude):
            if isinstance(item, Problem):
                report.problems.append(item)
                continue
            key = (str(item.root), item.source)
            self._seen.add(key)
            report.files += 1
            try:
                digest = item.sha256()
            except OSError as error:
                report.problems.append(Problem(item.source, f"cannot read: {error.strerror or error}"))
                report.failed += 1
                continue
            record = records.get(key)
            if record is not None and record.is_current(digest, self.chunker_id):
                report.unchanged += 1
            else:
                tasks.append(_FileTask(item, key, record))
        return tasks

    def _delete_gone(
        self,
        collection: Collection,
        roots: list[Path],
        records: dict[tuple[str, str], FileRecord],
        tasks: list[_FileTask],
        report: IngestReport,
    ) -> None:
        """Files that left the roots lose their chunks; files that merely failed to read this time keep theirs."""
        unreadable = {(str(r), p.source) for p in report.problems for r in roots}
        for key, record in records.items():
            if key in self._seen or key in unreadable:
                continue
            self.store.delete(collection, list(record.ids))
            report.deleted += 1
            report.chunks_deleted += len(record.ids)

    # -- the staged pipeline --------------------------------------------------------------------------------

    def _pipeline(self, collection: Collection, tasks: list[_FileTask], report: IngestReport) -> None:
        if not tasks:
            return
        events: queue.Queue[Any] = queue.Queue()
        in_flight = threading.Semaphore(self.concurrency * 2)
        stop = threading.Event()
        bar = tqdm(total=len(tasks), unit="file", disable=not self.progress, desc="ingest", dynamic_ncols=True)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="qwen-rag-embed")

        def embed(batch: list[_Chunk]) -> None:
            try:
                events.put(("batch", self._embed(batch, report)))
            except EmbeddingServerError as error:
                events.put(("fatal", error))

        def send(batch: list[_Chunk]) -> None:
            in_flight.acquire()
            self._reuse_vectors(collection, batch, report)
            if any(c.vector is None for c in batch):
                pool.submit(embed, batch)
            else:
                events.put(("batch", (batch, [])))

        producer = threading.Thread(
            target=self._produce,
            args=(collection, tasks, send, events, stop),
            name="qwen-rag-read",
            daemon=True,
        )
        producer.start()
        by_key = {t.key: t for t in tasks}
        fatal: EmbeddingServerError | None = None
        sent: int | None = None  # batches the producer sent, once it is done
        received = 0
        unwritten: list[_Chunk] = []
        try:
            while sent is None or received < sent:
                ready = [events.get()]
                # Take whatever else is ready too: one large write costs Chroma much less than several small ones.
                while True:
                    try:
                        ready.append(events.get_nowait())
                    except queue.Empty:
                        break
                embedded: list[_Chunk] = []
                for kind, payload in ready:
                    if kind in ("batch", "fatal"):
                        received += 1
                        in_flight.release()
                    if kind == "batch":
                        written, failures = payload
                        embedded.extend(written)
                        for chunk, cause in failures:
                            with self._lock:
                                by_key[chunk.key].failed = True
                                by_key[chunk.key].pending -= 1
                            report.problems.append(_problem(chunk, cause))
                    elif kind == "fatal":
                        fatal = fatal or payload
                        stop.set()
                    elif kind == "produced":
                        task, error = payload
                        if error is not None:
                            report.problems.append(Problem(task.file.source, str(error), getattr(error, "page", None)))
                    elif kind == "end":
                        sent = payload
                unwritten.extend(embedded)
                if len(unwritten) < WRITE_BATCH and (sent is None or received < sent) and fatal is None:
                    continue
                self._write(collection, unwritten, by_key, report)
                unwritten = []
                done = [t for t in by_key.values() if t.produced is not None and t.pending == (t.head is not None)]
                if fatal is None:
                    self._finish(collection, done, report)
                for task in done:
                    del by_key[task.key]
                bar.update(len(done))
                bar.set_postfix(chunks=report.chunks_written, refresh=False)
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        if fatal is not None:
            raise IngestAborted(
                f"the embedding server gave up: {fatal} ({report.chunks_written} chunks were written; "
                "run the same ingest again to resume)",
                report,
            )

    def _produce(
        self,
        collection: Collection,
        tasks: list[_FileTask],
        send: Callable[[list[_Chunk]], None],
        events: queue.Queue[Any],
        stop: threading.Event,
    ) -> None:
        """Read and chunk ahead of the embedders; chunks of small files share requests."""
        batch: list[_Chunk] = []
        sent = 0
        password = self.settings.pdf_password.get_secret_value() if self.settings.pdf_password else None
        for task in tasks:
            if stop.is_set():
                break
            error: Exception | None = None
            count = 0
            try:
                for chunk in self._chunks(task, password):
                    count += 1
                    with self._lock:
                        task.pending += 1
                    batch.append(chunk)
                    if len(batch) >= self.settings.batch_size:
                        send(batch)
                        sent += 1
                        batch = []
                    if stop.is_set():
                        break
            except LoadError as failure:
                error = failure
            except OSError as failure:
                error = LoadError(f"cannot read: {failure.strerror or failure}")
            # Known only once the file is read; the main thread finishes the file after its last write.
            with self._lock:
                task.failed = task.failed or error is not None
                task.produced = count
            events.put(("produced", (task, error)))
        if batch and not stop.is_set():
            send(batch)
            sent += 1
        events.put(("end", sent))

    def _chunks(self, task: _FileTask, password: str | None) -> Iterator[_Chunk]:
        root, source = task.key
        digest = task.file.sha256()
        old_by_text = {text_hash: cid for cid, text_hash in (task.record.ids if task.record else {}).items()}

        def page_failed(error: LoadError) -> None:
            # One unreadable page costs that page: it is reported, the rest of the PDF is indexed.
            self._page_problems.append(Problem(source, str(error), error.page))

        docs = read(task.file, pdf_password=password, on_page_error=page_failed)
        for position, doc in enumerate(self.chunker.split_many(docs)):
            text_hash = chunk_hash(doc.page_content)
            cid = chunk_id(root, source, position, text_hash)
            task.new_ids.add(cid)
            meta = _metadata(doc, root, source, digest, self.chunker_id, position, text_hash)
            yield _Chunk(task.key, cid, doc.page_content, meta, reuse=old_by_text.get(text_hash))

    def _reuse_vectors(self, collection: Collection, batch: list[_Chunk], report: IngestReport) -> None:
        """Text already embedded (an unchanged part of an edited file, or a run that was killed) keeps its vector."""
        wanted = {c.reuse for c in batch if c.reuse}
        if not wanted:
            return
        got = collection.get(ids=sorted(wanted), include=["embeddings"])
        vectors = {cid: [float(x) for x in vec] for cid, vec in zip(got["ids"], got["embeddings"], strict=True)}
        for chunk in batch:
            if chunk.reuse in vectors:
                chunk.vector = vectors[chunk.reuse]
                with self._lock:
                    report.chunks_reused += 1

    def _embed(self, batch: list[_Chunk], report: IngestReport) -> tuple[list[_Chunk], list[tuple[_Chunk, str]]]:
        """Embed what has no vector; a 400 for the batch is narrowed down to the items the server refuses."""
        todo = [c for c in batch if c.vector is None]
        failures: list[tuple[_Chunk, str]] = []

        def attempt(group: list[_Chunk]) -> None:
            if not group:
                return
            with self._lock:
                report.embedding_requests += 1
            try:
                vectors = self.embeddings.embed_documents([c.text for c in group])
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
                chunk.vector = vector

        attempt(todo)
        failed = {id(c) for c, _ in failures}
        return [c for c in batch if id(c) not in failed], failures

    def _write(
        self,
        collection: Collection,
        chunks: list[_Chunk],
        by_key: dict[tuple[str, str], _FileTask],
        report: IngestReport,
    ) -> None:
        """Write embedded chunks; each file's first chunk is held back to be written last, as its completion mark."""
        body = []
        for chunk in chunks:
            if chunk.metadata[POSITION] == 0:
                by_key[chunk.key].head = chunk
            else:
                body.append(chunk)
        self._upsert(collection, body, report)
        with self._lock:
            for chunk in body:
                by_key[chunk.key].pending -= 1

    def _finish(self, collection: Collection, tasks: list[_FileTask], report: IngestReport) -> None:
        """Files whose other chunks are all written: drop their stale chunks, then write their first chunks with
        the chunk count. A file is complete exactly when that first chunk is in the store (see records.py)."""
        stale: list[str] = []
        heads: list[_Chunk] = []
        for task in tasks:
            if task.failed or not task.produced or task.head is None:
                report.failed += 1
                if task.produced == 0 and not task.failed:
                    report.problems.append(Problem(task.file.source, "no text to index"))
                continue
            stale.extend(cid for cid in (task.record.ids if task.record else {}) if cid not in task.new_ids)
            task.head.metadata[TOTAL] = task.produced
            heads.append(task.head)
            if task.record is None:
                report.added += 1
            else:
                report.updated += 1
        self.store.delete(collection, stale)
        report.chunks_deleted += len(stale)
        self._upsert(collection, heads, report)

    def _upsert(self, collection: Collection, chunks: list[_Chunk], report: IngestReport) -> None:
        if chunks:
            self.store.upsert(
                collection,
                [c.id for c in chunks],
                [c.vector or [] for c in chunks],
                [c.text for c in chunks],
                [c.metadata for c in chunks],
            )
            report.chunks_written += len(chunks)


def _is_server(embeddings: Embeddings) -> bool:
    return hasattr(embeddings, "members") or hasattr(embeddings, "openai_api_base")


def _metadata(
    doc: Document, root: str, source: str, digest: str, chunker: str, position: int, text_hash: str
) -> Metadata:
    meta: Metadata = {k: v for k, v in doc.metadata.items() if isinstance(v, str | int | float | bool)}
    meta.update(
        {
            ROOT: root,
            SOURCE: source,
            FILE_HASH: digest,
            CHUNKER: chunker,
            POSITION: position,
            CHUNK_HASH: text_hash,
            # Set on the first chunk, which is written last: an unfinished file is redone on the next run.
            TOTAL: 0,
        }
    )
    return meta


def _problem(chunk: _Chunk, cause: str) -> Problem:
    page = chunk.metadata.get("page")
    return Problem(
        str(chunk.metadata.get(SOURCE)),
        f"chunk {chunk.metadata.get(POSITION)}: {cause}",
        page if isinstance(page, int) else None,
    )


def open_store(settings: Settings) -> Store:
    return Store.open(path=settings.store, url=settings.chroma_url)


def ingest(
    paths: Sequence[str | Path],
    settings: Settings | None = None,
    *,
    embeddings: Embeddings | None = None,
    full: bool = False,
    progress: bool | None = None,
) -> IngestReport:
    """Index ``paths`` (files or folders) into the configured collection; see :class:`IngestReport`."""
    settings = settings or Settings()
    return Ingest(settings, embeddings=embeddings, progress=progress).run(paths, full=full)
