"""Peak memory of an ingest (issue 3): a 200 MB text corpus against a 20 MB one must cost the same.

Each ingest runs as its own ``qwen-rag ingest`` process (the stand-in embedding server in another), and the
peak resident set of that process is read from ``getrusage(RUSAGE_CHILDREN)``. Run with both stores:
embedded Chroma (whose HNSW index lives in the ingest process and grows with the vectors, by design) and a
``chroma run`` server (the ingest process alone).

    python -m benchmarks.bench_memory [--quick]
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_pipeline import WORDS
from tests.servers.chroma import chroma_server
from tests.servers.process import sglang_process

MB = 1024 * 1024


def text_corpus(folder: Path, megabytes: int, file_mb: int = 4) -> Path:
    """Plain-text files of ``file_mb`` MB each (mixed Chinese and English paragraphs), ``megabytes`` in all."""
    rng = random.Random(megabytes)
    folder.mkdir(parents=True)
    paragraph_pool = [" ".join(rng.choice(WORDS) for _ in range(120)) + "\n\n" for _ in range(2000)]
    for f in range(max(1, megabytes // file_mb)):
        with open(folder / f"part{f:04d}.txt", "w", encoding="utf-8") as out:
            written = 0
            while written < file_mb * MB:
                p = rng.choice(paragraph_pool)
                out.write(p)
                written += len(p.encode("utf-8"))
    return folder


def peak_rss_of(command: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one child process: run each in a fresh interpreter so peaks don't mix."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True)
    peak, seconds = out.stdout.split()
    return float(peak), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 MB and 20 MB instead of 20 MB and 200 MB.")
    args = parser.parse_args()
    sizes = (2, 20) if args.quick else (20, 200)
    work = Path(tempfile.mkdtemp(prefix="qwen-rag-mem-"))
    binary = str(Path(sys.executable).with_name("qwen-rag"))
    rows = ["| store | corpus | chunks | peak RSS MB | seconds |", "|---|---|---|---|---|"]
    try:
        corpora = {size: text_corpus(work / f"c{size}", size) for size in sizes}
        with sglang_process(384) as url, chroma_server(work / "chroma-data") as chroma_url:
            for store_kind in ("embedded", "chroma run"):
                for size, corpus in corpora.items():
                    where = (
                        ["--store", str(work / f"s-{size}")]
                        if store_kind == "embedded"
                        else ["--chroma-url", chroma_url, "--collection", f"mem{size}"]
                    )
                    command = [binary, "ingest", str(corpus), *where, "--embeddings-url", url, "--json"]
                    peak, seconds = peak_rss_of(command)
                    rows.append(f"| {store_kind} | {size} MB | see stats | {peak:.0f} | {seconds:.0f} |")
        print("\n### Peak memory of an ingest\n")
        print("\n".join(rows))
        print(
            f"\n(measured {time.strftime('%Y-%m-%d')}; RSS of the ingest process only, server excluded; "
            f"ru_maxrss in KiB / 1024; {resource.getpagesize()}-byte pages)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
