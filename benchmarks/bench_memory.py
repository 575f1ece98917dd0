"""Peak memory of an ingest (issue 3): a 200 MB text corpus against a 20 MB one must cost the same.

Each ingest runs as its own ``qwen-rag ingest`` process (the stand-in embedding server in another). Its memory is
sampled ten times a second as the proportional set size (PSS, ``/proc/<pid>/smaps_rollup``) summed over the ingest
process and its children (the forked reader shares most of its pages with its parent: adding up RSS would count
them twice); the peak of that sum is reported. Run with both stores: embedded Chroma (whose HNSW index lives in the
ingest process and grows with the vectors, by design) and a ``chroma run`` server (whose memory is the server's).

    python -m benchmarks.bench_memory [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_pipeline import WORDS
from testbed.chroma import chroma_server
from testbed.process import descendants, sglang_process

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


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0.0


def peak_memory_of(command: list[str]) -> tuple[float, float, float, float, dict]:
    """Peak PSS in MB of the process with its children, of the process alone and of its children alone; seconds;
    the ingest's --json report."""
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        peak = own = children = 0.0
        while process.poll() is None:
            sizes = [_pss_mb(p) for p in (process.pid, *descendants(process.pid))]
            peak, own, children = max(peak, sum(sizes)), max(own, sizes[0]), max(children, sum(sizes[1:]))
            time.sleep(0.1)
        out = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed with exit code {process.returncode}")
    return peak, own, children, time.perf_counter() - started, json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 MB and 20 MB instead of 20 MB and 200 MB.")
    parser.add_argument("--stores", default="embedded,chroma run", help="Which stores, comma-separated.")
    args = parser.parse_args()
    sizes = (2, 20) if args.quick else (20, 200)
    work = Path(tempfile.mkdtemp(prefix="qwen-rag-mem-"))
    binary = str(Path(sys.executable).with_name("qwen-rag"))
    rows = [
        "| store | corpus | chunks | peak memory (PSS) MB | ingest process alone | reader process alone | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    try:
        corpora = {size: text_corpus(work / f"c{size}", size) for size in sizes}
        with sglang_process(384) as url, chroma_server(work / "chroma-data") as chroma_url:
            for store_kind in args.stores.split(","):
                for size, corpus in corpora.items():
                    where = (
                        ["--store", str(work / f"s-{size}")]
                        if store_kind == "embedded"
                        else ["--chroma-url", chroma_url, "--collection", f"mem{size}"]
                    )
                    command = [binary, "ingest", str(corpus), *where, "--embeddings-url", url, "--json"]
                    peak, own, children, seconds, report = peak_memory_of(command)
                    rows.append(
                        f"| {store_kind} | {size} MB | {report['chunks_written']} | {peak:.0f} | {own:.0f} | "
                        f"{children:.0f} | {seconds:.0f} |"
                    )
        print("\n### Peak memory of an ingest\n")
        print("\n".join(rows))
        print(
            f"\n(measured {time.strftime('%Y-%m-%d %H:%M')}; peak of the summed PSS of the ingest process and its "
            "children, sampled every 0.1 s; embedding and Chroma servers excluded)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
