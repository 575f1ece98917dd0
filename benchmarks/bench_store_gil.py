"""Does Chroma's embedded upsert let other Python threads run? (Why the ingest's front is a separate process.)

A pure-Python loop counts its turns in a thread, first alone, then while the main thread writes 256-vector batches
of 1024 dimensions (with texts and metadata) into an embedded Chroma collection.

    python -m benchmarks.bench_store_gil
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from pipelines.settings import OnMismatch
from pipelines.store.chroma import IndexSignature, Store


def main() -> None:
    turns = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal turns
        while not stop.is_set():
            for _ in range(1000):
                pass
            turns += 1

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(path=Path(tmp))
        collection = store.collection("gil", IndexSignature("m", 1024, "none"), OnMismatch.FAIL)
        vectors = np.random.default_rng(0).standard_normal((20 * 256, 1024)).astype(np.float32)
        spinner = threading.Thread(target=spin)
        spinner.start()
        time.sleep(1.0)
        alone, turns = turns / 1.0, 0
        started = time.perf_counter()
        for i in range(0, len(vectors), 256):
            ids = [str(j) for j in range(i, i + 256)]
            texts = ["向量检索 retrieval " * 40] * 256
            store.upsert(
                collection, ids, vectors[i : i + 256], texts, [{"source": "s", "chunk": j} for j in range(256)]
            )
        seconds = time.perf_counter() - started
        during = turns / seconds
        stop.set()
        spinner.join()
    print("\n### Other threads during Chroma's embedded upsert\n")
    print("| loop turns/s alone | during upserts | share | upsert vectors/s |\n|---|---|---|---|")
    print(f"| {alone:,.0f} | {during:,.0f} | {during / alone:.1%} | {len(vectors) / seconds:.0f} |")


if __name__ == "__main__":
    main()
