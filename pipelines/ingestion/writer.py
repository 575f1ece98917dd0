"""The staged ingest: walk -> plan -> read and chunk -> embed (concurrent) -> write, with bounded queues.

Stages overlap: the front (:mod:`pipelines.ingestion.front`, in a child process or in threads) reads and chunks
ahead with ``concurrency`` embedding requests in flight, and this thread writes to Chroma. Permits bound the batches
between the two, so memory stays flat however large the corpus.

Incremental by construction (see :mod:`pipelines.store.records`): an unchanged file costs no request and no write; a
changed file reuses the vectors of chunks whose text it still has; a file gone from a root loses its chunks.

>>> from pipelines import ingest, Settings
>>> report = ingest(["data/samples"], Settings(store="/tmp/qwen-rag-doc"))     # doctest: +SKIP
>>> report.chunks_written, report.embedding_requests                          # doctest: +SKIP
(9, 1)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.models.Collection import Collection
from langchain_core.embeddings import Embeddings
from tqdm import tqdm

from loaders import Problem, SourceFile, walk
from loaders.chunking import Chunker, ChunkSpec
from pipelines.embeddings.counters import counter_for
from pipelines.embeddings.providers import EmbeddingServerError, make_embeddings
from pipelines.ingestion.front import Chunk, Front, Job, Running, embed_batch
from pipelines.retrieve.lexical_sync import index_dir, sync_bm25
from pipelines.settings import Settings, Workers
from pipelines.store.chroma import TASK_KEY, IndexSignature, Store, open_store
from pipelines.store.records import POSITION, SOURCE, TOTAL, FileRecord, read_records

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
class _FileTask:
    file: SourceFile
    key: tuple[str, str]
    digest: str
    record: FileRecord | None
    produced: int | None = None  # chunk count, once the front is done with the file
    settled: int = 0  # chunks written, held back (the head) or refused
    new_ids: set[str] = field(default_factory=set)
    head: Chunk | None = None  # the first chunk, embedded and waiting for the rest of the file
    failed: bool = False

    def job(self) -> Job:
        stored = {text_hash: cid for cid, text_hash in (self.record.ids if self.record else {}).items()}
        return Job(self.key, self.file, self.digest, stored)


class Ingest:
    """One ingest run over some roots into one collection (``pipelines.ingestion.writer()`` is the short way)."""

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
        self._seen: set[tuple[str, str]] = set()  # (root, source) of every file found by this run's walk

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
            if self.settings.task is not None:
                # The collection remembers its query instruction, so every later query uses it by default.
                collection.modify(metadata={**(collection.metadata or {}), TASK_KEY: self.settings.task})
            records = read_records(self.store, collection, (str(r) for r in roots))
            tasks = self._plan(roots, records, report)
            self._delete_gone(collection, roots, records, tasks, report)
            try:
                self._pipeline(collection, tasks, report)
                if (report.chunks_written or report.chunks_deleted) and index_dir(self.store, collection.name).exists():
                    # The BM25 index follows the collection in the same run, so no query finds it stale. A collection
                    # never searched by words has none: its first bm25/hybrid query builds it.
                    sync_bm25(self.store, collection)
            finally:
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
                tasks.append(_FileTask(item, key, digest, record))
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
        password = self.settings.pdf_password.get_secret_value() if self.settings.pdf_password else None
        front = Front(
            self.chunker,
            self.chunker_id,
            self.embeddings,
            concurrency=self.concurrency,
            batch_size=self.settings.batch_size,
            pdf_password=password,
        )
        process = self._use_process()
        if process:
            self.chunker.counter.count("")  # load the tokenizer here, once: the child inherits it
        bar = tqdm(total=len(tasks), unit="file", disable=not self.progress, desc="ingest", dynamic_ncols=True)
        by_key = {t.key: t for t in tasks}
        running = Running(front, [t.job() for t in tasks], process=process)
        fatal: EmbeddingServerError | None = None
        sent: int | None = None  # its batch and fatal events in all, once the front is done
        received = 0
        unwritten: list[Chunk] = []
        heads: list[Chunk] = []  # first chunks of finished files: they ride with the next write
        try:
            while sent is None or received < sent:
                # Take whatever else is ready too: one large write costs Chroma much less than several small ones.
                for kind, payload in [running.get(), *running.ready()]:
                    if kind in ("batch", "fatal"):
                        received += 1
                        running.taken()
                    if kind == "batch":
                        unwritten.extend(self._settle(collection, payload, by_key, report))
                    elif kind == "fatal":
                        fatal = fatal or EmbeddingServerError(payload[0], status=payload[1])
                        running.stop()
                    elif kind == "produced":
                        key, count, error = payload
                        by_key[key].produced = count
                        if error is not None:
                            by_key[key].failed = True
                            report.problems.append(Problem(by_key[key].file.source, error[0], error[1]))
                    elif kind == "page":
                        report.problems.append(payload)
                    elif kind == "crash":
                        raise RuntimeError(f"the ingest's reader failed: {payload}")
                    elif kind == "end":
                        sent = payload
                if len(unwritten) < WRITE_BATCH and (sent is None or received < sent) and fatal is None:
                    continue
                self._write(collection, unwritten, heads, by_key, report)
                unwritten = []
                done = [t for t in by_key.values() if t.produced is not None and t.settled == t.produced]
                heads = self._finish(collection, done, report) if fatal is None else []
                for task in done:
                    del by_key[task.key]
                    task.new_ids.clear()  # a set per file, as large as its chunk count: memory stays flat
                bar.update(len(done))
                bar.set_postfix(chunks=report.chunks_written, refresh=False)
            self._upsert(collection, heads, report)
        finally:
            running.close()
            bar.close()
        if fatal is not None:
            raise IngestAborted(
                f"the embedding server gave up: {fatal} ({report.chunks_written} chunks were written; "
                "run the same ingest again to resume)",
                report,
            )

    def _use_process(self) -> bool:
        if self.settings.workers == Workers.AUTO:
            # fork is safe on Linux only; the embedded model computes in this process anyway.
            return sys.platform == "linux" and _is_server(self.embeddings)
        return self.settings.workers == Workers.PROCESS

    def _settle(
        self,
        collection: Collection,
        payload: tuple[list[Chunk], list[tuple[Chunk, str]], int],
        by_key: dict[tuple[str, str], _FileTask],
        report: IngestReport,
    ) -> list[Chunk]:
        """A batch from the front: take stored vectors for known text, record the refused; return what is ready."""
        chunks, failures, requests = payload
        report.embedding_requests += requests
        for chunk in chunks:
            by_key[chunk.key].new_ids.add(chunk.id)
        self._reuse_vectors(collection, chunks, report)
        if any(c.vector is None for c in chunks):
            # Its stored twin is gone (another writer on a Chroma server): embed it after all.
            for chunk in chunks:
                if chunk.vector is None:
                    chunk.reuse = None
            chunks, refused, requests = embed_batch(self.embeddings, chunks)
            report.embedding_requests += requests
            failures = failures + refused
        for chunk, cause in failures:
            task = by_key[chunk.key]
            task.new_ids.add(chunk.id)
            task.failed = True
            task.settled += 1
            report.problems.append(_problem(chunk, cause))
        return chunks

    def _reuse_vectors(self, collection: Collection, batch: list[Chunk], report: IngestReport) -> None:
        """Text already embedded (an unchanged part of an edited file, or a run that was killed) keeps its vector."""
        wanted = {c.reuse for c in batch if c.reuse}
        if not wanted:
            return
        got = collection.get(ids=sorted(wanted), include=["embeddings"])
        found = zip(got["ids"], got["embeddings"], strict=True)
        vectors = {cid: np.asarray(vec, dtype=np.float32) for cid, vec in found}
        for chunk in batch:
            if chunk.reuse in vectors:
                chunk.vector = vectors[chunk.reuse]
                report.chunks_reused += 1

    def _write(
        self,
        collection: Collection,
        chunks: list[Chunk],
        heads: list[Chunk],
        by_key: dict[tuple[str, str], _FileTask],
        report: IngestReport,
    ) -> None:
        """Write embedded chunks; each file's first chunk is held back to be written last, as its completion mark.

        ``heads`` are the first chunks of files finished at the previous write, whose other chunks are all stored:
        they go in this write rather than one of their own, since each Chroma write has a fixed cost.
        """
        body = []
        for chunk in chunks:
            if chunk.metadata[POSITION] == 0:
                by_key[chunk.key].head = chunk
            else:
                body.append(chunk)
        self._upsert(collection, body + heads, report)
        for chunk in chunks:
            by_key[chunk.key].settled += 1

    def _finish(self, collection: Collection, tasks: list[_FileTask], report: IngestReport) -> list[Chunk]:
        """Files whose other chunks are all written: drop their stale chunks and return their first chunks, with
        the chunk count, to be written next. A file is complete exactly when that first chunk is in the store (see
        records.py)."""
        stale: list[str] = []
        heads: list[Chunk] = []
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
        return heads

    def _upsert(self, collection: Collection, chunks: list[Chunk], report: IngestReport) -> None:
        if chunks:
            self.store.upsert(
                collection,
                [c.id for c in chunks],
                np.stack([c.vector for c in chunks]),  # every chunk written has one (see _settle)
                [c.text for c in chunks],
                [c.metadata for c in chunks],
            )
            report.chunks_written += len(chunks)


def _is_server(embeddings: Embeddings) -> bool:
    return hasattr(embeddings, "members") or hasattr(embeddings, "openai_api_base")


def _problem(chunk: Chunk, cause: str) -> Problem:
    page = chunk.metadata.get("page")
    return Problem(
        str(chunk.metadata.get(SOURCE)),
        f"chunk {chunk.metadata.get(POSITION)}: {cause}",
        page if isinstance(page, int) else None,
    )


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
