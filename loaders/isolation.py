"""Reading files in worker processes: a parser that hangs or crashes costs its own file, never the ingest.

The PDF, Office and OCR parsers are third-party code, partly native. A damaged or hostile file can make one loop
for ever (a backtracking regex holds the GIL, so no thread of ours could even notice), segfault (pdfium,
onnxruntime) or grow until the kernel's OOM killer ends the process. In the ingest's own process any of these
stops a run of 10 000 files at the first bad one. `IsolatedReader` parses such files in worker processes and
yields, in input order, each file with its Documents exactly as `read` gives them; what went wrong in a worker
becomes that file's one-line `LoadError`, the worker is replaced, and the next files go on:

- still parsing after ``timeout`` s: "parsing took longer than 600 s (--file-timeout); skipped" (worker killed);
- killed by a signal: "the parser crashed (SIGSEGV)"; by SIGKILL, which nobody but the kernel's OOM killer sends
  to a worker (we kill on timeout, and say so): "the parser ran out of memory (killed by the system)";
- a Python MemoryError: "the parser ran out of memory"; an exit: "the parser exited with code 3";
- any other exception: "unexpected error in the parser: TypeError: ..." (a cause, never a traceback).

Process model: forkserver. Measured on the 2-core dev box, time to start a worker that has the loaders imported:

- fork: 4 ms, but the ingest is threaded (HTTP requests to the embedding server, their connection pools), and a
  fork copies locks that other threads hold at that instant; workers are forked again mid-run to replace dead
  ones, so a deadlocked child is a matter of time. A fork also copies the caller's state (open connections,
  onnxruntime thread pools) and dirties its heap through reference counts.
- spawn: 500 ms a worker (a fresh interpreter importing langchain-core, pypdf, bs4, plus the caller's
  ``__main__``), paid again for every worker replaced after a crash or timeout, on cores the ingest needs.
- forkserver: one server process, started once with fork+exec (safe from a threaded caller; 600 ms, as it
  imports the loaders: `set_forkserver_preload`), forks each worker from its clean single-threaded state: 11 ms.
  Like spawn, it re-runs the caller's ``__main__`` in each worker (so that must be guarded by ``if __name__ ==
  "__main__"``; ``qwen-rag``'s is): for the CLI that imports pipelines.cli, 120 ms more per worker.
  A worker then parses many files; passing each through pipes adds about 0.5 ms a file (an HTML page: 0.8 ms
  in-process, 1.3 ms isolated), noise next to parsing a PDF (a 3-page paper: 90 ms either way).

Workers start lazily (a run without an isolated file starts none) and are reused; `close` kills them. They die
with the ingest even when it is SIGKILLed: a worker's parent is the forkserver, so it sets PR_SET_PDEATHSIG
(the kernel kills it when the forkserver goes, whatever it is stuck in), and it closes its copy of the
forkserver's "alive" pipe, whose last holder closing (the ingest's process, dying) makes the forkserver exit.

Not isolated: text, Markdown, reStructuredText and code files. They are read by our
own pure-Python code (`loaders.text`): it cannot crash the interpreter, its time is linear in the file and its
memory one block, so a worker would add nothing but the cost of copying every block through a pipe (and these
are most files of a code base). HTML is isolated: BeautifulSoup holds the whole file's tree, about ten times its
size, in memory.

Memory stays bounded in the parent: a worker streams one message per Document (and per page problem, in order)
through a pipe, and the parent reads it only as the caller consumes that file. A worker whose pipe is full waits
(and its file's timeout clock stops, see `_Clock`); a worker that finished its file takes the next one, so at
most ``workers`` files are being parsed at once, and what waits for the caller is a pipe's worth per worker.

Memory cap: none (no RLIMIT_AS). It caps virtual memory, which onnxruntime and pdfium reserve far beyond what
they use (RapidOCR after one page: 945 MB of address space for 356 MB resident, more with more cores and
threads), so any cap that never breaks OCR is too large to protect anything. Workers set ``oom_score_adj`` to
1000 instead: when memory runs out, the kernel kills a worker (its file is reported, the worker replaced), not
the ingest.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import multiprocessing
import os
import pickle
import signal
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any

from langchain_core.documents import Document

from loaders.errors import LoadError
from loaders.options import LayoutMode, OcrMode
from loaders.registry import FORMATS, Format, read
from loaders.source import SourceFile

logger = logging.getLogger("loaders.isolation")

#: Seconds a file may take to parse (``--file-timeout``).
DEFAULT_TIMEOUT = 600.0

#: Receives each page (PDF page, slide, sheet) that was skipped, with the file it belongs to.
FilePageErrorHandler = Callable[[SourceFile, LoadError], None]

# What a worker sends: ("doc", Document), ("page", cause, page), then one of ("end",) or ("failed", cause, page).
Message = tuple[Any, ...]

# Files taken from the input ahead of the caller, per worker: enough that a run of text files between two PDFs
# does not leave workers idle; a SourceFile is a few hundred bytes.
_LOOKAHEAD_PER_WORKER = 16
# The registry imports a format's module on its first file: without these here, every worker would import the PDF and
# HTML loaders (pypdf, BeautifulSoup, lxml, the text splitters: 0.75 s) on its first such file, on its timeout clock.
_PRELOAD = ["loaders.isolation", "loaders.pdf", "loaders.html"]
_PR_SET_PDEATHSIG = 1


class IsolatedReader:
    """Reads files as `read` does, parsing those of third-party formats in worker processes.

    Up to `workers` files (default: the CPU cores this process may use) are parsed at once, ahead of the caller.
    `on_page_error` receives each skipped page with its file, in order with the file's Documents; by default
    they are logged as warnings. Use it from one thread, one `read_all` at a time.

    Usage::

        with IsolatedReader(workers=2, timeout=600, pdf_password=None, on_page_error=report) as reader:
            for file, docs in reader.read_all(files):
                try:
                    chunks = list(chunker.split_many(docs))
                except LoadError as err:
                    print(f"{file.source}: {err}")
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        pdf_password: str | None = None,
        ocr: OcrMode = OcrMode.AUTO,
        on_page_error: FilePageErrorHandler | None = None,
        layout: LayoutMode = LayoutMode.AUTO,
    ) -> None:
        self.workers = workers if workers is not None else len(os.sched_getaffinity(0))
        if self.workers < 1 or timeout <= 0:
            raise ValueError("workers must be at least 1 and timeout positive")
        self.timeout = timeout
        self._options = (pdf_password, OcrMode(ocr), LayoutMode(layout))
        self._on_page_error = on_page_error or _log_page_error
        self._context: ForkServerContext = multiprocessing.get_context("forkserver")
        # Only takes effect if no forkserver runs yet in this process; without it workers import on first use.
        self._context.set_forkserver_preload(_PRELOAD)
        self._pool: list[_Worker] = []  # every worker not yet dropped: alive, or dead with results to be read
        self._closed = False

    def __enter__(self) -> IsolatedReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def read_all(self, files: Iterable[SourceFile]) -> Generator[tuple[SourceFile, Iterator[Document]]]:
        """Each of `files`, in order, with its Documents: an iterator that behaves like `read`'s.

        It yields lazily and raises `LoadError` when the file cannot be read, possibly after some Documents (drop
        the file's Documents then). Moving on to the next file before the end of one skips the rest of it. Leaving
        the loop early stops the workers still parsing files that were read ahead.
        """
        if self._closed:
            raise RuntimeError("the reader is closed")
        pending = iter(files)
        ahead: deque[_Entry] = deque()
        try:
            while True:
                self._fill(pending, ahead)
                if not ahead:
                    return
                entry = ahead.popleft()
                yield entry.file, self._documents(entry)
                self._skip_rest(entry)
        finally:
            for worker in list(self._pool):
                if worker.taken < worker.assigned:  # busy with files nobody will ask for
                    self._drop(worker)

    def close(self) -> None:
        """Kill the workers (they hold nothing worth a goodbye). The forkserver stays, shared, until we exit."""
        for worker in list(self._pool):
            self._drop(worker)
        self._closed = True

    # Ahead of the caller

    def _fill(self, pending: Iterator[SourceFile], ahead: deque[_Entry]) -> None:
        """Take files up to the look-ahead, then hand the first isolated files no worker has yet to free workers.

        Files go out in input order, so each worker's results come in the order the caller asks for them.
        """
        while len(ahead) < self.workers * _LOOKAHEAD_PER_WORKER and (file := next(pending, None)) is not None:
            ahead.append(_Entry(file, _isolated_format(file)))
        self._check_workers()
        for entry in ahead:
            if entry.fmt is None or entry.worker is not None:
                continue
            while entry.worker is None:
                worker = self._free_worker()
                if worker is None:
                    return
                self._assign(worker, entry)

    def _check_workers(self) -> None:
        """Kill the workers past their timeout, retire the dead ones; their file learns why when its turn comes."""
        for worker in list(self._pool):
            if worker.retired:
                continue
            # Liveness first: a dead worker's clock runs on, and its crash must not read as a timeout.
            if not worker.process.is_alive():
                self._retire(worker)
            elif worker.clock.parsing_for() > self.timeout:
                self._kill(worker, self._timeout_cause())

    def _free_worker(self) -> _Worker | None:
        worker = next((w for w in self._pool if w.idle()), None)
        if worker is None and sum(not w.retired for w in self._pool) < self.workers:
            worker = self._start_worker()
        return worker

    def _start_worker(self) -> _Worker:
        jobs_out, jobs_in = self._context.Pipe(duplex=False)
        results_out, results_in = self._context.Pipe(duplex=False)
        clock = _Clock(self._context)
        process = self._context.Process(
            target=_serve, args=(jobs_out, results_in, clock), name="qwen-rag-parser", daemon=True
        )
        process.start()
        # Only the worker may hold its ends: its death then reads as end-of-file here, and a job sent to it fails.
        jobs_out.close()
        results_in.close()
        worker = _Worker(process, jobs_in, results_out, clock)
        self._pool.append(worker)
        return worker

    def _assign(self, worker: _Worker, entry: _Entry) -> None:
        try:
            worker.jobs.send((entry.file, entry.fmt, *self._options))
        except OSError:  # it died since it was last seen alive: another worker takes the file
            self._retire(worker)
            return
        worker.assigned += 1
        entry.worker = worker

    # The caller's file

    def _documents(self, entry: _Entry) -> Iterator[Document]:
        on_page_error = functools.partial(self._on_page_error, entry.file)
        if entry.fmt is None:
            pdf_password, ocr, layout = self._options
            yield from read(entry.file, pdf_password=pdf_password, ocr=ocr, layout=layout, on_page_error=on_page_error)
            return
        while not entry.done:  # done also when the caller moved on: a stale iterator then just stops
            message = self._receive(entry)
            if message[0] == "doc":
                yield message[1]
            elif message[0] == "page":
                on_page_error(LoadError(message[1], page=message[2]))
            elif message[0] == "failed":
                raise LoadError(message[1], page=message[2])

    def _skip_rest(self, entry: _Entry) -> None:
        """Read what is left of a file the caller moved on from, so the worker's next file comes next."""
        while entry.worker is not None and not entry.done:
            self._receive(entry)

    def _receive(self, entry: _Entry) -> Message:
        """The next message about `entry`'s file; a dead worker's last one is the cause of its death."""
        worker = entry.worker
        assert worker is not None  # the first file ahead always has a worker: those before it are all read
        while True:
            left = self.timeout - worker.clock.parsing_for()
            ready = wait([worker.results, worker.process.sentinel], timeout=max(left, 0.0))
            if worker.results.poll():  # a message, or end-of-file: the worker is gone
                message = self._recv(worker)
                break
            if worker.process.sentinel in ready:  # dead, yet something it started still holds the pipe
                message = ("failed", self._death_cause(worker), None)
                break
            if worker.clock.parsing_for() > self.timeout:
                self._kill(worker, self._timeout_cause())  # its end-of-file comes next, after any last Documents
        if message[0] in ("end", "failed"):
            entry.done = True
            worker.taken += 1
            if worker.retired and worker.taken == worker.assigned:
                self._drop(worker)
        return message

    def _recv(self, worker: _Worker) -> Message:
        try:
            message: Message = worker.results.recv()
        except (EOFError, OSError):
            return ("failed", self._death_cause(worker), None)
        return message

    # Workers' ends

    def _death_cause(self, worker: _Worker) -> str:
        worker.process.join()
        self._retire(worker)
        return worker.killed_for or _exit_cause(worker.process.exitcode)

    def _kill(self, worker: _Worker, cause: str) -> None:
        worker.killed_for = cause
        worker.process.kill()
        worker.process.join()
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        """No more files for `worker`; it is dropped once its results are all read."""
        worker.retired = True
        if worker.taken == worker.assigned:
            self._drop(worker)

    def _drop(self, worker: _Worker) -> None:
        if worker.process.is_alive():  # polled first: its pid may be reused once the forkserver has reaped it
            worker.process.kill()
        worker.process.join()
        worker.process.close()
        worker.jobs.close()
        worker.results.close()
        self._pool.remove(worker)

    def _timeout_cause(self) -> str:
        return f"parsing took longer than {self.timeout:g} s (--file-timeout); skipped"


@dataclass(eq=False)
class _Worker:
    """A worker process, as its parent sees it."""

    process: BaseProcess
    jobs: Connection  # files to parse, to the worker
    results: Connection  # their messages, from the worker
    clock: _Clock
    assigned: int = 0  # files sent to it
    taken: int = 0  # files whose last message was read
    retired: bool = False  # dead or killed: no more files, only its results are still read
    killed_for: str | None = None  # the cause, when we killed it

    def idle(self) -> bool:
        """Done parsing all its files, though their last messages may still wait in the pipe."""
        return not self.retired and self.clock.finished() == self.assigned


@dataclass(eq=False)
class _Entry:
    """A file of the input, in its turn."""

    file: SourceFile
    fmt: Format | None  # the format a worker parses it with; None: read in this process
    worker: _Worker | None = None
    done: bool = False  # its last message was read


class _Clock:
    """How long a worker has been parsing its current file, in memory shared with the parent.

    Time a worker spends blocked sending to the parent does not count: a file parsed ahead whose Documents wait
    for the caller (a full pipe) is not parsing, and must not use up its timeout. Cells: seconds counted,
    the monotonic time counting (re)started or 0 while stopped, files finished. CLOCK_MONOTONIC is the same in
    both processes. The worker writes, the parent reads, without a lock: the write and read orders below make
    a torn read count a few microseconds too few, never too many.
    """

    def __init__(self, context: ForkServerContext) -> None:
        self._cells = context.RawArray("d", 3)

    def run(self) -> None:
        self._cells[1] = time.monotonic()

    def stop(self) -> None:
        started = self._cells[1]
        self._cells[1] = 0.0
        self._cells[0] += time.monotonic() - started

    def finish(self) -> None:
        self._cells[1] = 0.0
        self._cells[0] = 0.0
        self._cells[2] += 1

    def parsing_for(self) -> float:
        counted = self._cells[0]
        started = self._cells[1]
        return counted + (time.monotonic() - started if started else 0.0)

    def finished(self) -> int:
        return int(self._cells[2])


def _isolated_format(file: SourceFile) -> Format | None:
    """The format to parse `file` with in a worker; None to read it here (our own reader, or `read` says why)."""
    fmt = FORMATS.get(file.path.suffix.lower())
    if fmt is None or not fmt.reads_in_worker:
        return None
    return fmt


def _log_page_error(file: SourceFile, error: LoadError) -> None:
    logger.warning("%s: page %s skipped: %s", file.source, error.page, error)


def _exit_cause(code: int | None) -> str:
    if code is not None and code < 0:
        if -code == signal.SIGKILL:
            return "the parser ran out of memory (killed by the system)"
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the parser crashed ({name})"
    return f"the parser exited with code {code}"


# In the worker


def _serve(jobs: Connection, results: Connection, clock: _Clock) -> None:
    """A worker's life: parse the files its parent sends, one at a time, until the parent closes the pipe."""
    _bind_to_the_reader()
    with contextlib.suppress(OSError):  # raising one's own score needs no privilege; without /proc, no matter
        Path("/proc/self/oom_score_adj").write_text("1000")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    outbox = _Outbox(results, clock)
    while True:
        try:
            job = jobs.recv_bytes()
        except (EOFError, OSError):
            return
        clock.run()
        outbox.close(_parse(job, outbox))


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), so a killed parent leaves no orphans."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _bind_to_the_reader() -> None:
    """Die with the forkserver, and let the forkserver die with the reader's process (see the module docstring)."""
    die_with_parent()
    # Every forkserver child gets the write end of the forkserver's "alive" pipe, and the forkserver stays while
    # any holder lives: a worker stuck in a parser would keep it, and so itself, alive after the ingest is gone.
    # The pipe's end is private to multiprocessing, hence not in typeshed's ForkServer.
    os.close(forkserver._forkserver._forkserver_alive_fd)  # type: ignore[attr-defined]
    forkserver._forkserver._forkserver_alive_fd = None  # type: ignore[attr-defined]


def _parse(job: bytes, outbox: _Outbox) -> Message:
    """Read one file, sending its Documents and page problems; returns its last message."""
    try:
        file, fmt, pdf_password, ocr, layout = pickle.loads(job)  # may import the format's module: on the clock
        # `read` looks the format up in this process's registry; the parent's may differ (a test's, a plugin's).
        FORMATS[file.path.suffix.lower()] = fmt
        for doc in read(file, pdf_password=pdf_password, ocr=ocr, layout=layout, on_page_error=outbox.page):
            outbox.doc(doc)
    except LoadError as error:
        return ("failed", error.cause, error.page)
    except MemoryError:
        return ("failed", "the parser ran out of memory", None)
    except Exception as error:  # a parser's bug costs its file, with a cause the user can read
        detail = f": {error}" if str(error) else ""
        return ("failed", f"unexpected error in the parser: {type(error).__name__}{detail}", None)
    return ("end",)


class _Outbox:
    """A worker's side of its results pipe; its clock stops while a send waits for the parent to read."""

    def __init__(self, results: Connection, clock: _Clock) -> None:
        self._results = results
        self._clock = clock

    def doc(self, doc: Document) -> None:
        self._send(("doc", doc))

    def page(self, error: LoadError) -> None:
        self._send(("page", error.cause, error.page))

    def close(self, last: Message) -> None:
        # Finished before the last send: the parent may hand over the next file while this one waits to be read.
        self._clock.finish()
        self._write(last)

    def _send(self, message: Message) -> None:
        self._clock.stop()
        self._write(message)
        self._clock.run()

    def _write(self, message: Message) -> None:
        try:
            self._results.send(message)
        except OSError:  # the parent is gone, or gave up on this run: nobody waits for this file
            os._exit(0)
