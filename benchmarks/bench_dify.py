"""What Dify's ``metadata_condition`` and ``window`` cost a request, on a synthetic collection of N chunks.

    python -m benchmarks.bench_dify                     # 10,000 and 50,000 chunks
    python -m benchmarks.bench_dify --sizes 2000        # quicker

Operators Chroma cannot express on strings (``contains``, ``start with``, ``empty``, ``before`` on ISO dates...) are
resolved against the distinct values of the field (pipelines/service/conditions.py): one scan of the collection's
metadata per request that uses them. This measures that scan against a plain ``$eq`` filter, each followed by the
same top-5 dense query, and the cost of ``window=1`` on five hits (pipelines/retrieve/context.py): one ``get`` per
hit's file. Vectors are random (384 dims, the embedded model's width): the filters and the scan do not depend on
them. Medians of 5 runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import chromadb
import numpy as np
from langchain_core.documents import Document

from pipelines.retrieve.context import with_windows
from pipelines.service.conditions import Condition, where_of
from pipelines.service.dify import distinct_values
from pipelines.store.records import FILE_HASH, POSITION, ROOT, SOURCE

DIM = 384
CHUNKS_PER_FILE = 100
DEPARTMENTS = ("hr", "finance", "engineering", "sales", "legal")


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def build(client: chromadb.ClientAPI, n: int) -> chromadb.Collection:
    collection = client.create_collection(f"bench-{n}", metadata={"hnsw:space": "cosine"})
    rng = np.random.default_rng(0)
    step = 5000
    for start in range(0, n, step):
        ids = [f"c{i}" for i in range(start, min(start + step, n))]
        metadatas: list[dict[str, str | int | float | bool]] = []
        for i in range(start, start + len(ids)):
            file = i // CHUNKS_PER_FILE
            metadatas.append(
                {
                    ROOT: "/data",
                    SOURCE: f"doc{file}.txt",
                    FILE_HASH: f"h{file}",
                    POSITION: i % CHUNKS_PER_FILE,
                    "start_index": (i % CHUNKS_PER_FILE) * 400,
                    "department": DEPARTMENTS[file % len(DEPARTMENTS)],
                    "year": 2015 + file % 10,
                    "title": f"Policy {file} of {DEPARTMENTS[file % len(DEPARTMENTS)]}",
                    "created": f"{2015 + file % 10}-0{1 + file % 9}-15",
                }
            )
        texts = [f"chunk {i} " + "x" * 380 for i in range(start, start + len(ids))]
        collection.add(ids=ids, embeddings=rng.standard_normal((len(ids), DIM)), documents=texts, metadatas=metadatas)
    return collection


def search(collection: chromadb.Collection, query: np.ndarray, conditions: list[Condition]) -> list[str]:
    """A top-5 dense query under ``conditions``, whose ``where`` is built as the service builds it (a new scan)."""
    where = where_of("and", conditions, distinct_values(collection))
    found = collection.query(query_embeddings=[query], n_results=5, where=where)
    return found["ids"][0]


def median_ms(run: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    args = parser.parse_args()
    query = np.random.default_rng(1).standard_normal(DIM)
    print(
        "| chunks | dense top-5, `is` (`$eq`) | dense top-5, `contains` (scan, `$in`) | the scan | window=1, 5 hits |"
    )
    print("|---|---|---|---|---|")
    print(f"<!-- {load()} before -->")
    with tempfile.TemporaryDirectory() as folder:
        client = chromadb.PersistentClient(path=folder)
        for n in args.sizes:
            collection = build(client, n)

            plain = median_ms(lambda c=collection: search(c, query, [Condition("department", "is", "hr")]))
            contains = median_ms(lambda c=collection: search(c, query, [Condition("title", "contains", "of hr")]))
            scan = median_ms(lambda c=collection: distinct_values(c)("title"))
            got = collection.get(ids=[f"c{i}" for i in range(50, n, n // 5)][:5], include=["documents", "metadatas"])
            hits = [
                Document(page_content=text or "", metadata=dict(meta or {}), id=cid)
                for cid, text, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
            ]
            window = median_ms(lambda c=collection, h=hits: with_windows(c, h, 1))
            print(f"| {n:,} | {plain:.0f} ms | {contains:.0f} ms | {scan:.0f} ms | {window:.0f} ms |", flush=True)
    print(f"<!-- {load()} after -->")


if __name__ == "__main__":
    main()
