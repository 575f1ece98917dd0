"""Where the front runs: threads of the ingest process, or a forked child process, and how the writer talks to it.

Why a process: Chroma's embedded upsert holds the GIL for its whole call (about 0.3 s for 256 chunks of 1024
dimensions), so in one process no embedding request is sent or answered while the store writes, and a GPU server
idles through every write. In a child the front keeps ``concurrency`` requests in flight whatever the writer does.
The child is forked, not spawned: it inherits the loaded modules, where a spawned one spends 2.5 s importing them;
so processes are for Linux. It loads the tokenizer and builds the embedding client itself, while the writer reads
the store (:class:`Running`).

Processes of an ingest, and how each dies with it, even when the ingest is SIGKILLed:

- the front's child: ``PR_SET_PDEATHSIG``, the kernel kills it when the ingest goes;
- the parser workers (:mod:`loaders.isolation`) come from a forkserver, which exits when the last holder of its
  "alive" pipe is gone; each worker dies with the forkserver (``PR_SET_PDEATHSIG`` again). A child front starts
  a forkserver of its own (the parent's, if it has one, cannot be used from a fork: its state, pid and lock are
  the parent's), so its workers go when it does.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from multiprocessing import forkserver
from typing import Any

from loaders.isolation import die_with_parent
from pipelines.errors import IngestError
from pipelines.ingestion.events import Event, FrontCrashed
from pipelines.ingestion.front import Flag, Front, Semaphore
from pipelines.ingestion.plan import Job


class Running:
    """A started front: it warms up (:meth:`Front.warm`) until :meth:`start` hands it the jobs; the writer takes its
    events with :meth:`get` and hands back a permit per batch.

    Started before the writer plans, so that the front's warm-up (the tokenizer, the embedding client's imports:
    about 3 s on the dev box) runs in the child while the writer walks the roots and waits on Chroma; a child with
    nothing to do is killed at once.
    """

    def __init__(self, front: Front, *, process: bool) -> None:
        self.process = process
        self._started = False
        if process:
            context = multiprocessing.get_context("fork")
            self._jobs: Any = context.SimpleQueue()
            # A Queue, not a SimpleQueue: its feeder thread buffers, so the child's request threads never wait
            # for the parent to read (it does not while Chroma writes). The permits bound that buffer.
            self._events: Any = context.Queue()
            self._in_flight: Any = context.Semaphore(front.concurrency * 2)
            self._stop: Any = context.Event()
            # Not a daemon: multiprocessing lets no daemon start processes of its own (the parser workers). Nor
            # does it need a daemon's end: close() always ends it, and it dies with the ingest (see above).
            self._worker: Any = context.Process(
                target=_child, args=(front, self._jobs, self._events, self._in_flight, self._stop)
            )
            # Objects the child inherits must never be collected there: a Chroma object's destructor waits on
            # runtime threads that a fork does not copy, and the child would hang (seen in the test suite).
            gc.freeze()
            try:
                self._worker.start()
            finally:
                gc.unfreeze()
        else:
            self._jobs = queue.SimpleQueue()
            self._events = queue.SimpleQueue()
            self._in_flight = threading.Semaphore(front.concurrency * 2)
            self._stop = threading.Event()
            self._worker = threading.Thread(
                target=_warm_then_run,
                args=(front, self._jobs, self._events.put, self._in_flight, self._stop),
                daemon=True,
            )
            self._worker.start()

    def start(self, jobs: list[Job], *, few: bool = False) -> None:
        """The jobs to run, once (with the full records the writer has read meanwhile); ``few``: see
        :class:`~pipelines.ingestion.front.Front`."""
        self._started = True
        self._jobs.put((jobs, few))

    def get(self) -> Event:
        """The next event; raises if the child process died without a word (killed by the OOM killer, say)."""
        while True:
            try:
                event: Event = self._events.get(timeout=1.0)
                return event
            except queue.Empty:
                if not self._worker.is_alive():
                    break
        try:  # its last words may still be on their way
            event = self._events.get(timeout=0.5)
            return event
        except queue.Empty:
            code = getattr(self._worker, "exitcode", None)
            raise IngestError(f"the ingest's reader stopped without finishing (exit code {code})") from None

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
        if not self._started:
            # Nothing to do: a child is ended now, not after its warm-up; a thread ends after it (daemon: unwaited).
            self._jobs.put(None)
            if self.process:
                self._worker.kill()
                self._worker.join()
            return
        self._stop.set()
        deadline = time.monotonic() + 10
        while self._worker.is_alive() and time.monotonic() < deadline:
            self._worker.join(timeout=0.1)
            if self.process:
                self.ready()  # drain: a child cannot exit while its feeder thread still has events for the pipe
        if self.process and self._worker.is_alive():
            self._worker.kill()
            self._worker.join()


def _warm_then_run(front: Front, jobs: Any, put: Callable[[Event], None], in_flight: Semaphore, stop: Flag) -> None:
    """Warm up, then run the jobs from the ``jobs`` queue, with ``few`` (None: there are none, end)."""
    try:
        front.warm()
        todo: tuple[list[Job], bool] | None = jobs.get()
        if todo is None:
            return
        front.few = todo[1]
        front.run(todo[0], put, in_flight, stop)
    except BaseException as error:  # the writer waits on these events: tell it rather than leave it hanging
        put(FrontCrashed(f"{type(error).__name__}: {error}"))


def _child(front: Front, jobs: Any, events: Any, in_flight: Semaphore, stop: Flag) -> None:
    die_with_parent()  # a SIGKILLed ingest must not leave its front running
    _own_forkserver()
    # The parent's HTTP connections were copied by the fork: this process opens its own.
    front.embeddings = front.embeddings.detached()
    _warm_then_run(front, jobs, events.put, in_flight, stop)


def _own_forkserver() -> None:
    """Forget the parent's forkserver, so that the parser workers come from one this process starts and owns.

    The inherited state names a forkserver that is not this process's child (multiprocessing's liveness check,
    a ``waitpid``, fails on it) and a lock another thread of the parent may have held at the fork. Closing the
    inherited "alive" pipe end leaves the parent's forkserver to the parent alone.
    """
    server = forkserver._forkserver
    # The pipe's end is private to multiprocessing, hence not in typeshed's ForkServer.
    if server._forkserver_alive_fd is not None:  # type: ignore[attr-defined]
        os.close(server._forkserver_alive_fd)  # type: ignore[attr-defined]
    # The module's functions are bound to this instance, so it is reset in place rather than replaced.
    server.__dict__.update(forkserver.ForkServer().__dict__)
