"""The SGLang stand-in as its own process, as a user's server would be (benchmarks and kill tests need that)."""

from __future__ import annotations

import subprocess
import sys
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
