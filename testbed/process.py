"""Processes that tests and benchmarks start or watch: the SGLang stand-in as its own process, as a user's server
would be (benchmarks and kill tests need that), and the Linux ``/proc`` walk that finds what a process started and
sees it gone."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def sglang_process(dim: int, latency_ms: int = 0) -> Iterator[str]:
    """Run ``python -m testbed.sglang`` with hash vectors until the block ends; yields its ``/v1`` URL."""
    command = [sys.executable, "-m", "testbed.sglang", "--port", "0", "--embedder", "hash"]
    proc = subprocess.Popen(
        [*command, "--dim", str(dim), "--latency-ms", str(latency_ms)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    try:
        if not line.startswith("READY "):
            raise RuntimeError(f"the SGLang stand-in did not start: {line!r}")
        yield line.split()[1] + "/v1"
    finally:
        proc.kill()
        proc.wait()


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``: children, their children, and so on (from each process's parent in
    ``/proc/<pid>/stat``, so a grandchild whose parent has died is not found)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):  # it ended while we listed
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def gone(pid: int) -> bool:
    """The process has exited (a zombie whose parent has not reaped it yet counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def wait_gone(pids: list[int], seconds: float = 5.0) -> list[int]:
    """Waits up to ``seconds`` for every pid to be `gone`; returns those still alive (none: all gone)."""
    deadline = time.monotonic() + seconds
    while (alive := [pid for pid in pids if not gone(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive
