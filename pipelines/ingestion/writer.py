"""The staged ingest: walk -> plan -> read and chunk -> embed (concurrent) -> write, with bounded queues.

The package, stage by stage: :mod:`~pipelines.ingestion.plan` weighs the files found against the store's records,
:mod:`~pipelines.ingestion.front` reads (parsers in worker processes), chunks and embeds, in threads or a child
process (:mod:`~pipelines.ingestion.running`), and sends :mod:`~pipelines.ingestion.events` to this module, which
writes to Chroma and fills the :mod:`~pipelines.ingestion.report`. Stages overlap: the front reads and chunks
ahead with ``concurrency`` embedding requests in flight while this thread writes. Permits bound the batches
between the two, so memory stays flat however large the corpus.

Incremental by construction (see :mod:`pipelines.store.records`): an unchanged file costs no request and no write; a
changed file reuses the vectors of chunks whose text it still has; a file whose own fields alone changed (``--meta``,
sidecars: :mod:`pipelines.ingestion.sidecars`) has its chunks' metadata re-written, unread and unembedded; a file gone
from a root loses its chunks.

>>> from pipelines import ingest, Settings
>>> report = ingest(["data/samples"], Settings(store="/tmp/qwen-rag-doc"))     # doctest: +SKIP
>>> report.chunks_written, report.embedding_requests                          # doctest: +SKIP
(9, 1)
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from chromadb.api.models.Collection import Collection
from tqdm import tqdm

from loaders import Problem, SourceFile, walk
from loaders.chunking import Chunker, ChunkSpec
from loaders.walk import walk_sources
from pipelines.embeddings import Provider, make_embeddings
from pipelines.embeddings.counters import counter_for
from pipelines.errors import IngestError
from pipelines.ingestion.digests import Digests
from pipelines.ingestion.events import (
    Batch,
    Chunk,
    End,
    FileKey,
    FileRead,
    FrontCrashed,
    Metadata,
    PageSkipped,
    ServerGaveUp,
)
from pipelines.ingestion.front import Front, embed_batch
from pipelines.ingestion.plan import Job, Plan, plan
from pipelines.ingestion.report import IngestAborted, IngestReport
from pipelines.ingestion.running import Running
from pipelines.ingestion.sidecars import Sidecars
from pipelines.retrieve import segment
from pipelines.retrieve.lexical_sync import Staging, file_key, lexical_sync
from pipelines.settings import Settings, Workers
from pipelines.store.chroma import HNSW_SAVE_EVERY, TASK_KEY, IndexSignature, Store, included, open_store
from pipelines.store.heads_cache import HeadsCache
from pipelines.store.records import (
    POSITION,
    SOURCE,
    TOTAL,
    FileRecord,
    read_files,
    read_records,
    tagged,
)

__all__ = ["WRITE_BATCH", "Ingest", "IngestAborted", "IngestReport", "ingest"]

#: An ingest whose files to read weigh at most this saves Chroma's vector index after each of its few writes, so
#: that no later process replays them (see pipelines.store.chroma.HNSW_SAVE_EVERY), about four writes of text; and
#: its front looks its Chinese words up rather than load jieba's whole dictionary (Front's ``few``).
SMALL_RUN_BYTES = 4_000_000

#: Chunks per Chroma write. An embedded-store upsert costs about 60 ms however small it is, so few large writes
#: beat many small ones (measured on 2 cores, 1024 dims: 110 vectors/s in writes of 8, 300 of 32, 860 of 128).
WRITE_BATCH = 256


@dataclass
class _FileTask:
    """A planned file on its way through the pipeline."""

    job: Job
    produced: int | None = None  # chunk count, once the front is done with the file
    settled: int = 0  # chunks written, held back (the head) or refused
    new_ids: set[str] = field(default_factory=set)
    head: Chunk | None = None  # the first chunk, embedded and waiting for the rest of the file
    failed: bool = False

    def stale(self) -> list[str]:
        """The ids of its stored chunks that its new chunks do not have: deleted when the file is finished."""
        record = self.job.record
        return [cid for cid in (record.ids if record else {}) if cid not in self.new_ids]


class Ingest:
    """One ingest run over some roots into one collection (:func:`ingest` is the short way)."""

    def __init__(
        self,
        settings: Settings,
        embeddings: Provider | None = None,
        store: Store | None = None,
        progress: bool | None = None,
    ) -> None:
        self.settings = settings
        self.embeddings = embeddings if embeddings is not None else make_embeddings(settings, deferred=True)
        self.profile = self.embeddings.profile
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
        local_e5 = self.profile.tokenizer == "e5" and not self.embeddings.is_server
        self.concurrency = 1 if local_e5 else settings.concurrency

    def warm(self) -> None:
        """Load in this process what each run's front loads (the tokenizer, the embedding client's imports: about
        0.9 s with a server's Qwen tokenizer), so that the fronts of later runs, forked from it, start warm: a
        process that runs many small ingests (a watch) pays it once, not per run."""
        self._front().warm()

    # -- planning -------------------------------------------------------------------------------------------

    def signature(self, *, full: bool) -> IndexSignature:
        """The collection's signature; the recorded dimension is trusted so an unchanged re-run sends nothing."""
        model = self.embeddings.model_id
        style = self.profile.query_style.value
        existing = None if full else self.store.existing(self.settings.collection)
        recorded = IndexSignature.from_metadata(existing.metadata) if existing else None
        wanted = self.settings.dimensions
        if recorded and recorded.model == model and wanted in (None, recorded.dimension):
            return recorded
        dimension = wanted if self.embeddings.is_server else (wanted or self.profile.dimension)
        if dimension is None:
            dimension = len(self.embeddings.embed_documents(["dimension probe"])[0])
        return IndexSignature(model=model, dimension=dimension, query_style=style)

    def run(
        self, paths: Sequence[str | Path], *, full: bool = False, only: Iterable[FileKey] | None = None
    ) -> IngestReport:
        """Bring the collection in line with the files under ``paths``; ``full`` rebuilds it.

        ``only`` restricts the run to these files, ``(root, source)`` as the chunks name them (a watch's sync, from
        the events it saw): those on disk are walked, planned and indexed as a whole run would (the walk's rules,
        sidecars), those gone lose their chunks, and only their records are read; nothing else under the roots is
        listed, hashed or read. The report then counts those files alone. A file reached through a symlink needs
        the walk of its whole root (:func:`loaders.walk.walk_sources`): then the run is a whole one.
        """
        if full and only is not None:
            raise ValueError("a full ingest rebuilds the whole collection: it takes no 'only'")
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
            # The front warms up (in its own process when it can) while this one plans and reads the records it
            # needs; it is let go at once if there is nothing to read.
            running = Running(self._front(), process=self._use_process())
            heads = HeadsCache(self.store, collection)
            try:
                todo = self._plan(collection, roots, heads, None if only is None else set(only))
                self._read_changing(collection, todo)
                report.files, report.unchanged, report.failed = todo.files, todo.unchanged, todo.unreadable
                report.problems.extend(todo.problems)
                self._delete_gone(collection, todo.gone, report)
                self._retag(collection, todo.retag, report)
                if todo.jobs:
                    segment.prepare()  # the query dictionary, beside the terms the front writes into the index
                    few = _weight(todo.jobs) <= SMALL_RUN_BYTES
                    running.start(todo.jobs, few=few)
                    # A large run's last write carries the last HNSW_SAVE_EVERY chunks, so that Chroma saves the
                    # vector index with it and leaves no records for every later process to replay (see there).
                    tail = 0 if few or self.store.path is None else HNSW_SAVE_EVERY
                    self._pipeline(collection, running, todo.jobs, report, tail)
            finally:
                running.close()
                lexical_sync(self.store, collection.name).release()
                report.seconds = round(time.monotonic() - started, 3)
            if not todo.restricted:
                # For the next run: the files this one wrote, read back by source (see heads_cache). A restricted
                # run leaves it: the next whole run catches up from the collection's change log.
                heads.save()
        return report

    def _plan(self, collection: Collection, roots: list[Path], cache: HeadsCache, only: set[FileKey] | None) -> Plan:
        """The plan from the files' first chunks (kept between runs: :mod:`pipelines.store.heads_cache`), then the
        full records of the files to change only (see :mod:`pipelines.store.records`); from every chunk's record if
        a crash left a partial file. Files whose stat is unchanged keep their hash (:mod:`.digests`). A run
        restricted to ``only`` reads the full records of those files alone (:meth:`_plan_only`)."""
        if only is not None and (restricted := self._plan_only(collection, roots, only)) is not None:
            return restricted
        names = [str(r) for r in roots]
        found = walk(roots, self.settings.include, self.settings.exclude)
        fields = Sidecars(self.settings.meta).fields
        digests = Digests(self.store.derived_dir("records", collection.name) / "digests.json", roots)
        heads = cache.read(names)
        if heads is None:
            todo = plan(
                found, roots, read_records(self.store, collection, names), self.chunker_id, fields, digests.digest
            )
            digests.save()
            return todo
        todo = plan(found, roots, heads, self.chunker_id, fields, digests.digest)
        digests.save()
        # Before this process's first read of the vectors, when the cache spared it one (see HNSW_SAVE_EVERY).
        self.store.save_vectors_after_each_write(collection, _weight(todo.jobs) <= SMALL_RUN_BYTES)
        return todo

    def _plan_only(self, collection: Collection, roots: list[Path], only: set[FileKey]) -> Plan | None:
        """The plan for the files ``only`` (see :meth:`run`); None if one is reached through a symlink."""
        wanted = {key for key in only if Path(key[0]) in roots}
        found: list[SourceFile | Problem] = []
        for root in roots:
            sources = [source for name, source in wanted if name == str(root)]
            if not sources:
                continue
            if not root.is_dir():  # a file root: its walk is the file itself
                found.extend(walk([root], self.settings.include, self.settings.exclude))
                continue
            picked = walk_sources(root, sources, self.settings.include, self.settings.exclude)
            if picked is None:
                return None
            found.extend(picked)
        digests = Digests(self.store.derived_dir("records", collection.name) / "digests.json", roots, wanted)
        records = read_files(self.store, collection, wanted)
        todo = plan(found, roots, records, self.chunker_id, Sidecars(self.settings.meta).fields, digests.digest)
        digests.save()
        self.store.save_vectors_after_each_write(collection, _weight(todo.jobs) <= SMALL_RUN_BYTES)
        todo.restricted = True
        return todo

    def _read_changing(self, collection: Collection, todo: Plan) -> None:
        """Files to change, re-tag or delete need every chunk's id: their full records, and theirs only (a plan
        made from the files' first chunks holds head-only records)."""
        known = [job.record for job in (*todo.jobs, *todo.retag)] + list(todo.gone.values())
        if not any(record is not None and record.head_only for record in known):
            return  # read from every chunk already (read_records), or nothing to read
        changing = [job.key for job in (*todo.jobs, *todo.retag) if job.record] + list(todo.gone)
        full = read_files(self.store, collection, changing)
        todo.jobs = [replace(job, record=full.get(job.key)) if job.record else job for job in todo.jobs]
        todo.retag = [replace(job, record=full.get(job.key)) if job.record else job for job in todo.retag]
        todo.gone = {key: full[key] for key in todo.gone if key in full}

    def _delete_gone(self, collection: Collection, gone: dict[FileKey, FileRecord], report: IngestReport) -> None:
        """Files that left the roots lose their chunks (see :mod:`pipelines.ingestion.plan`)."""
        if not gone:
            return
        with lexical_sync(self.store, collection.name).writing(self.store, collection, set(gone)) as index:
            for key, record in gone.items():
                self.store.delete(collection, list(record.ids))
                index.delete_file(file_key(*key))
                report.deleted += 1
                report.chunks_deleted += len(record.ids)

    def _retag(self, collection: Collection, jobs: list[Job], report: IngestReport) -> None:
        """Files whose fields alone changed: their chunks' metadata is re-written in place. A run cut short leaves
        chunks with the old digest, so the next run re-tags the file again."""
        if not jobs:
            return
        changes: dict[FileKey, dict[str, Metadata]] = {}
        for job in jobs:
            metadata: Metadata = {**dict.fromkeys(job.dropped), **tagged(job.fields)}
            changes[job.key] = {cid: metadata for cid in sorted(job.record.ids if job.record else ())}
        ids = [cid for chunks in changes.values() for cid in chunks]
        metadatas = [meta for chunks in changes.values() for meta in chunks.values()]
        # All files in as few writes as possible: a write per file cost more than embedding the files again. Through
        # the lexical index's write, which keeps the passages' metadata too and bumps the collection's marker:
        # readers of the records (pipelines.store.heads_cache) learn of the new fields.
        with lexical_sync(self.store, collection.name).writing(self.store, collection, set(changes)) as index:
            self.store.update_metadata(collection, ids, metadatas)
            for key, chunks in changes.items():
                index.retag(file_key(*key), chunks)
        report.retagged += len(jobs)

    # -- the staged pipeline --------------------------------------------------------------------------------

    def _front(self) -> Front:
        password = self.settings.pdf_password.get_secret_value() if self.settings.pdf_password else None
        return Front(
            self.chunker,
            self.chunker_id,
            self.embeddings,
            concurrency=self.concurrency,
            batch_size=self.settings.batch_size,
            pdf_password=password,
            ocr=self.settings.ocr,
            layout=self.settings.layout,
            file_timeout=self.settings.file_timeout,
        )

    def _pipeline(
        self, collection: Collection, running: Running, jobs: list[Job], report: IngestReport, tail: int
    ) -> None:
        """Write the front's chunks as they come, in writes of at least WRITE_BATCH, keeping the last ``tail`` back
        for the final write."""
        # The lexical index takes each write in the same step as Chroma (see pipelines.retrieve.lexical_sync).
        lexical = lexical_sync(self.store, collection.name)
        bar = tqdm(total=len(jobs), unit="file", disable=not self.progress, desc="ingest", dynamic_ncols=True)
        by_key = {job.key: _FileTask(job) for job in jobs}
        gave_up: ServerGaveUp | None = None
        sent: int | None = None  # its Batch and ServerGaveUp events in all, once the front is done
        received = 0
        unwritten: list[Chunk] = []
        heads: list[Chunk] = []  # first chunks of finished files: they ride with the next write
        try:
            while sent is None or received < sent:
                # Take whatever else is ready too: one large write costs Chroma much less than several small ones.
                for event in [running.get(), *running.ready()]:
                    match event:
                        case Batch():
                            received += 1
                            running.taken()
                            unwritten.extend(self._settle(collection, event, by_key, report))
                        case ServerGaveUp():
                            received += 1
                            running.taken()
                            gave_up = gave_up or event
                            running.stop()
                        case FileRead(key=key, chunks=count, problem=problem):
                            by_key[key].produced = count
                            if problem is not None:
                                by_key[key].failed = True
                                report.problems.append(problem)
                        case PageSkipped(problem=problem):
                            report.problems.append(problem)
                        case FrontCrashed(message=message):
                            raise IngestError(f"the ingest's reader failed: {message}")
                        case End(batches=batches):
                            sent = batches
                last = (sent is not None and received >= sent) or gave_up is not None
                if len(unwritten) < WRITE_BATCH + tail and not last:
                    continue
                cut = len(unwritten) if last else len(unwritten) - tail
                now, unwritten = unwritten[:cut], unwritten[cut:]
                # The files this write finishes: all their chunks settled with it (produced is None: still read).
                arriving = Counter(c.key for c in now)
                done = [t for key, t in by_key.items() if t.produced == t.settled + arriving[key]]
                # The files this write changes, and those alone: its chunks but the first ones (held back, see
                # _write), the heads, the files it finishes that lose stale chunks. The collection's change log names
                # them, and each bump rewrites the whole log: naming every file read ahead too made the bumps a sixth
                # of a large first ingest.
                files = {c.key for c in now if c.metadata[POSITION] != 0} | {c.key for c in heads}
                files |= {t.job.key for t in done if t.stale()}
                with lexical.writing(self.store, collection, files) as index:
                    self._write(collection, index, now, heads, by_key, report)
                    heads = self._finish(collection, index, done, report) if gave_up is None else []
                for task in done:
                    del by_key[task.job.key]
                    task.new_ids.clear()  # a set per file, as large as its chunk count: memory stays flat
                bar.update(len(done))
                bar.set_postfix(chunks=report.chunks_written, refresh=False)
            if heads:
                with lexical.writing(self.store, collection, {c.key for c in heads}) as index:
                    self._upsert(collection, index, heads, report)
        finally:
            bar.close()
        if gave_up is not None:
            raise IngestAborted(
                f"the embedding server gave up: {gave_up.message} ({report.chunks_written} chunks were written; "
                "run the same ingest again to resume)",
                report,
            )

    def _use_process(self) -> bool:
        if self.settings.workers == Workers.AUTO:
            # fork is safe on Linux only; the embedded model computes in this process anyway.
            return sys.platform == "linux" and self.embeddings.is_server
        return self.settings.workers == Workers.PROCESS

    def _settle(
        self,
        collection: Collection,
        batch: Batch,
        by_key: dict[FileKey, _FileTask],
        report: IngestReport,
    ) -> list[Chunk]:
        """A batch from the front: take stored vectors for known text, record the refused; return what is ready."""
        chunks, refused = batch.chunks, batch.refused
        report.embedding_requests += batch.requests
        for chunk in chunks:
            by_key[chunk.key].new_ids.add(chunk.id)
        self._reuse_vectors(collection, chunks, report)
        if any(c.vector is None for c in chunks):
            # Its stored twin is gone (another writer on a Chroma server): embed it after all.
            for chunk in chunks:
                if chunk.vector is None:
                    chunk.reuse = None
            again = embed_batch(self.embeddings, chunks)
            report.embedding_requests += again.requests
            chunks, refused = again.chunks, refused + again.refused
        for chunk, cause in refused:
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
        embedded: Iterable[Any] = included(got["embeddings"], "embeddings")
        found = zip(got["ids"], embedded, strict=True)
        vectors = {cid: np.asarray(vec, dtype=np.float32) for cid, vec in found}
        for chunk in batch:
            if chunk.reuse in vectors:
                chunk.vector = vectors[chunk.reuse]
                report.chunks_reused += 1

    def _write(
        self,
        collection: Collection,
        index: Staging,
        chunks: list[Chunk],
        heads: list[Chunk],
        by_key: dict[FileKey, _FileTask],
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
        self._upsert(collection, index, body + heads, report)
        for chunk in chunks:
            by_key[chunk.key].settled += 1

    def _finish(
        self, collection: Collection, index: Staging, tasks: list[_FileTask], report: IngestReport
    ) -> list[Chunk]:
        """Files whose other chunks are all written: drop their stale chunks and return their first chunks, with
        the chunk count, to be written next. A file is complete exactly when that first chunk is in the store (see
        records.py)."""
        stale: list[str] = []
        heads: list[Chunk] = []
        for task in tasks:
            if task.failed or not task.produced or task.head is None:
                report.failed += 1
                if task.produced == 0 and not task.failed:
                    report.problems.append(Problem(task.job.file.source, "no text to index"))
                continue
            stale.extend(task.stale())
            task.head.metadata[TOTAL] = task.produced
            heads.append(task.head)
            if task.job.record is None:
                report.added += 1
            else:
                report.updated += 1
        self.store.delete(collection, stale)
        index.delete(stale)
        report.chunks_deleted += len(stale)
        return heads

    def _upsert(self, collection: Collection, index: Staging, chunks: list[Chunk], report: IngestReport) -> None:
        if chunks:
            for chunk in chunks:
                index.put_terms(file_key(*chunk.key), [(chunk.id, chunk.terms, chunk.text, chunk.metadata)])
            self.store.upsert(
                collection,
                [c.id for c in chunks],
                np.stack(cast("list[np.ndarray]", [c.vector for c in chunks])),  # every chunk written has one (_settle)
                [c.text for c in chunks],
                [c.metadata for c in chunks],
            )
            report.chunks_written += len(chunks)


def _weight(jobs: list[Job]) -> int:
    """The bytes of the files to read."""
    total = 0
    for job in jobs:
        with contextlib.suppress(OSError):  # gone since the walk: the front reports it
            total += job.file.path.stat().st_size
    return total


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
    embeddings: Provider | None = None,
    full: bool = False,
    progress: bool | None = None,
    only: Iterable[FileKey] | None = None,
) -> IngestReport:
    """Index ``paths`` (files or folders) into the configured collection; see :class:`IngestReport`, and
    :meth:`Ingest.run` for ``only``."""
    settings = settings or Settings()
    return Ingest(settings, embeddings=embeddings, progress=progress).run(paths, full=full, only=only)
