"""Keep a collection in sync with folders that change: ``qwen-rag ingest PATH... --watch``.

What: :func:`watch` runs an ordinary incremental ingest of the roots first (so a watch restarted after a kill
converges, as any ingest does), then waits for file-system events (``watchfiles``: Rust's notify, recursive) and,
for each burst once it settles, ingests the files the burst named and says what changed, one line per file:
``added notes/a.md (3 chunks)``, ``updated b.md (1 chunk)``, ``deleted c.md``, ``skipped d.pdf: cause``. A rename
is a ``deleted`` and an ``added``.

Why an ingest restricted to the burst's files (``ingest(..., only=keys)``, :meth:`Ingest.run
<pipelines.ingestion.writer.Ingest.run>`): records and chunk ids are keyed by (root, source), and the events name
exactly those keys (:func:`candidates`: a folder stands for the files under it, on disk and in the store), so the
restricted ingest walks, hashes and reads the records of those files alone, with the walk's rules and the sidecars
as a whole ingest applies them, and drops the chunks of those that left. A sync costs the change, not the folder:
an ingest of the whole roots walks and stats every file and reads every file's first chunk (0.15 s for 1,000 files,
2.6 s for 10,000 on 2 busy cores; docs/benchmarks.md has the figures for one edited file).

When the events cannot tell which files changed, the sync ingests the whole roots, as the first ingest does
(:func:`needs_whole`): an event on a root itself (deleted, moved away, replaced), and a burst of more than
:data:`WHOLE_SYNC_PLACES` places. The second covers a lost event: watchfiles drops notify's "rescan" notice (an
inotify queue overflow has no path), but the queue holds 16,384 events, so an overflow comes with thousands of
places already in the burst. A file reached through a symlink also makes the ingest walk its whole root
(:func:`loaders.walk.walk_sources`). And since no heuristic sees every lost event, the roots are also synced whole
every :data:`RECONCILE_SECONDS` (cheap: unchanged files keep their hash by stat and the files' first chunks are
cached, 1.6 s for 4,000 files), so a change whose event was lost shows within that time at the latest.

Why the lines come from the store rather than the report: the report counts files but names none. The events name
the candidates (a folder moved in or out stands for the files under it); their chunks are read before and after the
sync, and only a file whose chunks are all stored is called added or updated. A file the ingest reported a problem
for is only ever ``skipped``.

The filtering and debouncing rules are pure functions (:class:`Burst`, :meth:`Roots.locate`, :func:`relevant`,
:func:`candidates`, :func:`changes`), so they are tested without a file system or a clock.

>>> from pipelines.ingestion.watch import watch
>>> watch(["notes"], Settings(store="/tmp/qwen-rag-doc"), on_change=print)   # doctest: +SKIP
12 files: 12 added, 0 updated, 0 unchanged, 0 deleted, 0 failed
watching /home/me/notes
added ideas.md (2 chunks)
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import watchfiles

from loaders import Problem
from loaders.registry import SUPPORTED_EXTENSIONS
from loaders.walk import FOLDER_SIDECAR, SIDECAR_SUFFIX
from pipelines.errors import QwenRagError
from pipelines.ingestion.writer import Ingest, IngestReport
from pipelines.settings import Settings
from pipelines.store.chroma import Store, open_store
from pipelines.store.records import FILE_HASH, META_HASH, POSITION, ROOT, SOURCE, TOTAL, by_source

Events = set[tuple[watchfiles.Change, str]]
Key = tuple[str, str]
"""``(root, source)``: a file as the ingest keys it; for an event, ``source`` may also be a folder under the root."""

#: Quiet time that settles a burst. Editors save by temp file + rename within milliseconds; a copy of a large file
#: writes for longer, and a half-copied file is simply synced again when the rest arrives.
DEBOUNCE_MS = 1000
#: A burst never waits longer than this many quiet times: a file written without pause still gets synced.
LONGEST_BURST = 10
#: After a failed sync (embedding server down, another ingest holding the store), the burst waits this long.
RETRY_SECONDS = 30.0
#: How often the loop wakes when nothing happens, to see whether a burst has settled.
_TICK_MS = 200
#: A burst naming more places than this is synced by an ingest of the whole roots: events may have been lost (see
#: the module docstring), and so many files cost about as much either way.
WHOLE_SYNC_PLACES = 1000
#: Seconds between syncs of the whole roots that no event asked for: the bound on how long a lost event's change
#: stays unseen (see the module docstring).
RECONCILE_SECONDS = 600.0
#: Sources per store query: Chroma turns each into an SQL parameter.
_SOURCES_PER_QUERY = 200


def watch(
    paths: Sequence[str | Path],
    settings: Settings,
    *,
    on_change: Callable[[str], None] | None = None,
    stop_event: threading.Event | None = None,
    debounce_ms: int = DEBOUNCE_MS,
    full: bool = False,
) -> None:
    """Ingest ``paths`` (files or folders), then keep the collection in sync with them until stopped.

    ``on_change`` gets one line per change (a summary after the first ingest); ``stop_event`` ends the watch once
    set (a sync under way finishes first); Ctrl-C ends it too, returning normally. ``full`` rebuilds the collection
    in the first ingest. Errors of the first ingest (wrong model, store locked, server down) are raised; a later
    sync that fails is reported and retried after :data:`RETRY_SECONDS`. Raises FileNotFoundError for a root that
    does not exist.
    """
    roots = Roots.of(paths, settings)
    session = _Session(roots, settings, on_change or (lambda line: None))
    burst = Burst(quiet=debounce_ms / 1000, longest=LONGEST_BURST * debounce_ms / 1000)
    events = watchfiles.watch(
        *roots.watched(),
        watch_filter=None,  # relevant() filters: it needs the store's files to judge a deleted folder
        debounce=debounce_ms,
        stop_event=stop_event,
        rust_timeout=_TICK_MS,
        yield_on_timeout=True,
        raise_interrupt=True,  # watchfiles' own quiet stop logs a warning; ours says nothing
    )
    reconciled = time.monotonic()
    try:
        for raw in _started(events, lambda: session.start(full=full)):
            now = time.monotonic()
            changed = [path for _change, path in raw]
            whole = needs_whole(changed, roots) or now - reconciled >= RECONCILE_SECONDS
            if whole:
                reconciled = now
            burst.add(session.relevant(changed), now, whole=whole)
            if burst.due(now):
                session.sync(burst)
    except KeyboardInterrupt:
        return  # Ctrl-C: a sync cut short is finished by the next run, like a killed ingest
    finally:
        events.close()


@contextmanager
def watching(paths: Sequence[str | Path], settings: Settings, say: Callable[[str], None]) -> Iterator[None]:
    """:func:`watch` in a background thread for the block's duration (``serve --watch``, ``mcp --watch``): one
    process ingests and serves, so its searches see each file as it is committed. The first ingest runs in the
    thread too (the service answers meanwhile, from what is already stored); an error that stops the watch is
    said in one line."""
    Roots.of(paths, settings)  # a root that does not exist fails here, before anything starts
    stop = threading.Event()

    def run() -> None:
        try:
            watch(paths, settings, on_change=say, stop_event=stop)
        except (QwenRagError, OSError) as error:
            say(f"watch stopped: {error}")

    thread = threading.Thread(target=run, name="qwen-rag-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def _started(events: Iterator[Events], start: Callable[[], None]) -> Iterator[Events]:
    """``events``, with ``start`` run once the watcher is up: a change made during the first ingest is not lost."""
    first = next(events, None)
    if first is None:  # stopped before it began
        return
    start()
    yield first
    yield from events


@dataclass
class Burst:
    """Places gathered until they settle: ``quiet`` seconds without a new one, or ``longest`` seconds in all.

    Time comes in as ``now`` (monotonic seconds), so the rules are tested without waiting.

    >>> burst = Burst(quiet=1.0, longest=10.0)
    >>> burst.add({("/r", "a.md")}, now=0.0)
    >>> burst.add({("/r", "a.md"), ("/r", "b.md")}, now=0.5)
    >>> burst.due(now=1.2), burst.due(now=1.5)
    (False, True)
    >>> burst.take() == ({("/r", "a.md"), ("/r", "b.md")}, False), burst.due(now=99.0)
    (True, False)
    """

    quiet: float
    longest: float
    places: set[Key] = field(default_factory=set)
    whole: bool = False  # the events cannot tell which files changed: sync the whole roots
    first: float = 0.0  # when the burst began
    last: float = 0.0  # when it last grew
    not_before: float = 0.0  # a failed sync's retry time

    def add(self, places: Iterable[Key], now: float, *, whole: bool = False) -> None:
        places = set(places)
        if not places and not whole:
            return  # an empty tick, or only noise
        if not self.places and not self.whole:
            self.first = now
        # The same file written again counts too: a copy under way is not settled.
        self.places |= places
        self.whole = self.whole or whole or len(self.places) > WHOLE_SYNC_PLACES
        self.last = now

    def due(self, now: float) -> bool:
        if not (self.places or self.whole) or now < self.not_before:
            return False
        return now - self.last >= self.quiet or now - self.first >= self.longest

    def take(self) -> tuple[set[Key], bool]:
        """The places gathered, and whether the whole roots are to be synced; the burst starts again empty."""
        places, whole = self.places, self.whole
        self.places, self.whole = set(), False
        return places, whole

    def retry(self, places: Iterable[Key], now: float, delay: float, *, whole: bool = False) -> None:
        """Put back the places of a failed sync, not to be synced again for ``delay`` seconds."""
        self.add(places, now, whole=whole)
        self.not_before = now + delay


@dataclass(frozen=True)
class Roots:
    """The roots as the ingest sees them (resolved), and which event paths are theirs."""

    paths: tuple[Path, ...]
    files: frozenset[Path] = frozenset()  # roots that are single files
    store: Path | None = None  # the embedded store's directory: its own writes must never look like a change

    @classmethod
    def of(cls, paths: Sequence[str | Path], settings: Settings) -> Roots:
        resolved = tuple(Path(p).expanduser().resolve() for p in paths)
        for path in resolved:
            if not path.exists():
                raise FileNotFoundError(errno.ENOENT, "no such file or folder", str(path))
        store = None if settings.chroma_url else Path(settings.store).expanduser().resolve()
        return cls(resolved, frozenset(p for p in resolved if not p.is_dir()), store)

    def watched(self) -> list[Path]:
        """Folders to watch: a file root is watched through its folder, since editors replace a file by renaming
        another onto it, which ends a watch of the file itself."""
        found = [p.parent if p in self.files else p for p in self.paths]
        return list(dict.fromkeys(found))

    def locate(self, path: str | Path) -> list[Key]:
        """The places of an event's path: none for a hidden entry (or one inside a hidden folder), for the store's
        own files, or for a path outside the roots; one per root holding it.

        >>> roots = Roots((Path("/r"),), store=Path("/r/index"))
        >>> roots.locate("/r/a/b.md"), roots.locate("/r/.git/x.md"), roots.locate("/r/index/chroma.sqlite3")
        ([('/r', 'a/b.md')], [], [])
        """
        path = Path(path)
        found: list[Key] = []
        for root in self.paths:
            if root in self.files:
                if path == root:
                    found.append((str(root), root.name))
                continue
            if path == root or not path.is_relative_to(root):
                continue
            if self.store is not None and self.store.is_relative_to(root) and path.is_relative_to(self.store):
                continue
            relative = path.relative_to(root)
            if not any(part.startswith(".") for part in relative.parts):
                found.append((str(root), relative.as_posix()))
        return found


def needs_whole(paths: Iterable[str], roots: Roots) -> bool:
    """Whether an event is on a folder root itself (deleted, moved away or back, replaced): which of its files
    changed, the events do not tell.

    >>> roots = Roots((Path("/r"), Path("/s/a.md")), frozenset({Path("/s/a.md")}))
    >>> needs_whole(["/r/a.md", "/s/a.md"], roots), needs_whole(["/r"], roots)
    (False, True)
    """
    folders = set(roots.paths) - roots.files
    return any(Path(path) in folders for path in paths)


def loadable(source: str) -> bool:
    """Whether some loader reads a file of this name (the walk takes no other)."""
    return Path(source).suffix.lower() in SUPPORTED_EXTENSIONS


def indexed_under(place: Key, indexed: Iterable[Key]) -> set[Key]:
    """The indexed files inside the folder ``place``."""
    root, folder = place
    return {key for key in indexed if key[0] == root and (not folder or key[1].startswith(folder + "/"))}


def relevant(
    paths: Iterable[str], roots: Roots, *, is_folder: Callable[[str], bool], indexed: Collection[Key]
) -> set[Key]:
    """The places among event paths that can change the collection: a file a loader reads, a folder (one moved in
    brings no event for its files), or a path the store holds files under (a folder deleted or moved out).

    A sidecar stands for what its fields are for (:func:`sidecar_target`). Anything else is noise and never starts
    a sync: hidden files and folders (editor swap files, ``.git``), the store, files of other types (``app.log``,
    vim's ``4913``, ``a.md~``).
    """
    found: set[Key] = set()
    for path in paths:
        for place in roots.locate(path):
            if (target := sidecar_target(place)) is not None:
                found.add(target)
            elif loadable(place[1]) or is_folder(path) or indexed_under(place, indexed):
                found.add(place)
    return found


def sidecar_target(place: Key) -> Key | None:
    """What a sidecar's fields are for (:mod:`pipelines.ingestion.sidecars`): the file ``X`` for ``X.meta.json``, the
    folder for its ``qwen-rag.meta.yaml`` (``""``: the root); None for any other file.

    >>> sidecar_target(("/r", "a/b.pdf.meta.json")), sidecar_target(("/r", "a/qwen-rag.meta.yaml"))
    (('/r', 'a/b.pdf'), ('/r', 'a'))
    """
    root, source = place
    folder, _, name = source.rpartition("/")
    if name == FOLDER_SIDECAR:
        return (root, folder)
    if name.endswith(SIDECAR_SUFFIX):
        return (root, source.removesuffix(SIDECAR_SUFFIX))
    return None


def candidates(
    places: Iterable[Key], *, files_under: Callable[[Key], Iterable[str]], indexed: Collection[Key]
) -> set[Key]:
    """The files whose state a sync may change: the places that are files, and the files inside the places that
    are folders, both those on disk now (``files_under``: sources) and those the store holds."""
    found: set[Key] = set()
    for place in places:
        if loadable(place[1]):
            found.add(place)
        found.update((place[0], source) for source in files_under(place))
        found |= indexed_under(place, indexed)
    return found


@dataclass(frozen=True)
class Indexed:
    """What the store holds of one file."""

    chunks: int
    complete: bool  # every chunk there, of one version: the ingest wrote the file's completion mark
    fingerprint: str  # of its chunk ids and file hashes: another value means other text or another file version


def summarise(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[Key, Indexed]:
    """Chunks ``(id, metadata)`` to what each file has stored (see :mod:`pipelines.store.records`)."""
    ids: dict[Key, list[str]] = {}
    hashes: dict[Key, set[str]] = {}
    totals: dict[Key, int] = {}
    for chunk, meta in rows:
        key = (str(meta.get(ROOT)), str(meta.get(SOURCE)))
        # The fields' digest too: a file whose sidecar changed is re-tagged, and said to be updated.
        ids.setdefault(key, []).append(f"{chunk} {meta.get(FILE_HASH)} {meta.get(META_HASH) or ''}")
        hashes.setdefault(key, set()).add(str(meta.get(FILE_HASH)))
        if meta.get(POSITION) == 0:
            totals[key] = int(meta.get(TOTAL) or 0)
    return {
        key: Indexed(
            chunks=len(entries),
            complete=len(hashes[key]) == 1 and totals.get(key, 0) == len(entries),
            fingerprint=hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest(),
        )
        for key, entries in ids.items()
    }


def describe(source: str, before: Indexed | None, after: Indexed | None) -> str | None:
    """The line for one file whose state went from ``before`` to ``after``; None if nothing worth saying changed.

    >>> describe("a.md", None, Indexed(3, True, "x")), describe("a.md", Indexed(3, True, "x"), None)
    ('added a.md (3 chunks)', 'deleted a.md')
    """
    if after is None:
        return f"deleted {source}" if before is not None else None
    if not after.complete or after == before:
        return None  # half-written (a problem says why) or untouched (saved without a change)
    verb = "updated" if before is not None and before.complete else "added"
    return f"{verb} {source} ({after.chunks} chunk{'s' if after.chunks != 1 else ''})"


def changes(
    keys: Iterable[Key], before: Mapping[Key, Indexed], after: Mapping[Key, Indexed], problems: Sequence[Problem]
) -> list[str]:
    """One line per file that changed in the store, by source; a file with a problem gets none here (it is
    ``skipped``, see :func:`problem_lines`), even if some of its chunks were written."""
    troubled = {p.source for p in problems}
    lines = (describe(key[1], before.get(key), after.get(key)) for key in sorted(keys) if key[1] not in troubled)
    return [line for line in lines if line]


def problem_lines(problems: Sequence[Problem], touched: Collection[str], shown: Collection[Problem]) -> list[str]:
    """Problems of the files a burst touched, and new ones: a standing problem (a broken symlink) is said once,
    not after every sync."""
    return [
        f"skipped {p.source}{f' (page {p.page})' if p.page else ''}: {p.cause}"
        for p in problems
        if p.source in touched or p not in shown
    ]


class Ledger:
    """What the store holds per file of the roots, as of the last sync: what the next sync's lines compare with.

    Read whole after the first ingest (and a whole sync); afterwards only the candidates of each burst are read, so a
    sync's lines cost a query per 200 changed files, not a read of the collection. A file changed during a sync
    but announced by the next burst is still compared with its state before, so its line is not lost.
    """

    def __init__(self, store: Store, collection: str, roots: Sequence[Path]) -> None:
        self.store = store
        self.collection = collection
        self.roots = [str(root) for root in roots]
        self.files: dict[Key, Indexed] = {}

    def load(self) -> None:
        """Read whole: after the first ingest, and after a sync of the whole roots."""
        self.files = self._read({ROOT: {"$in": self.roots}})

    def read(self, keys: Iterable[Key]) -> dict[Key, Indexed]:
        wanted = set(keys)
        found: dict[Key, Indexed] = {}
        for where in by_source(wanted, _SOURCES_PER_QUERY):  # by source alone: Chroma's fast filter (records.py)
            found.update({key: indexed for key, indexed in self._read(where).items() if key in wanted})
        return found

    def update(self, keys: Iterable[Key], after: Mapping[Key, Indexed]) -> None:
        for key in keys:
            if key in after:
                self.files[key] = after[key]
            else:
                self.files.pop(key, None)

    def _read(self, where: dict[str, Any]) -> dict[Key, Indexed]:
        collection = self.store.existing(self.collection)
        return {} if collection is None else summarise(self.store.metadatas(collection, where=where))


class _Session:
    """One watch: the roots, the store's state as last synced, and the problems already said."""

    def __init__(self, roots: Roots, settings: Settings, say: Callable[[str], None]) -> None:
        self.roots = roots
        self.settings = settings
        self.say = say
        self.ledger = Ledger(open_store(settings), settings.collection, roots.paths)
        self.shown: set[Problem] = set()
        self.ingester = Ingest(settings, progress=False)  # one for the whole watch: see start()

    def start(self, *, full: bool) -> None:
        report = self._ingest(full=full)
        # Each sync's front is forked from this process: loaded here once, its tokenizer and embedding client
        # are not loaded again per sync (1.2 s a sync of one file became 0.4 s, docs/benchmarks.md).
        self.ingester.warm()
        self.ledger.load()
        self.say(
            f"{report.files} files: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.deleted} deleted, {report.failed} failed"
        )
        for line in problem_lines(report.problems, (), ()):
            self.say(line)
        self.shown = set(report.problems)
        self.say("watching " + ", ".join(str(p) for p in self.roots.paths))

    def relevant(self, paths: Iterable[str]) -> set[Key]:
        return relevant(paths, self.roots, is_folder=os.path.isdir, indexed=self.ledger.files)

    def sync(self, burst: Burst) -> None:
        places, whole = burst.take()
        keys = candidates(places, files_under=self._files_under, indexed=self.ledger.files)
        if not keys and not whole:
            return  # an empty folder appeared, say: nothing to index
        touched = {key[1] for key in keys}
        before = self.ledger.files
        try:
            if whole:
                report = self._ingest(full=False)
                self.ledger.load()
                after, keys = self.ledger.files, set(before) | set(self.ledger.files)
            else:
                report = self._ingest(full=False, only=keys)
                after = self.ledger.read(keys)
        except QwenRagError as error:
            # Usually temporary: the server restarts, a manual ingest holds the store. What was written stays; the
            # retry's ingest finishes it, and its lines still compare with the state before this attempt.
            self.say(f"sync failed: {error}; retrying in {RETRY_SECONDS:.0f} s")
            burst.retry(places, time.monotonic(), RETRY_SECONDS, whole=whole)
            return
        for line in changes(keys, before, after, report.problems):
            self.say(line)
        for line in problem_lines(report.problems, touched, self.shown):
            self.say(line)
        # A restricted sync reports the problems of its files alone: the others still stand.
        kept = set() if whole else {p for p in self.shown if p.source not in touched}
        self.shown = kept | set(report.problems)
        self.ledger.update(keys, after)

    def _ingest(self, *, full: bool, only: set[Key] | None = None) -> IngestReport:
        return self.ingester.run(self.roots.paths, full=full, only=only)

    def _files_under(self, place: Key) -> list[str]:
        """Sources of the loadable files inside ``place`` if it is a folder (hidden folders are not entered)."""
        found: list[str] = []
        for folder, subfolders, names in os.walk(Path(place[0]) / place[1]):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            for name in names:
                found += [s for r, s in self.roots.locate(Path(folder) / name) if r == place[0] and loadable(s)]
        return found
