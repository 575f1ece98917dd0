"""What a change of the user's own fields costs (issue 18): re-tagging a corpus in place against re-indexing it.

The corpus of bench_pipeline, ingested with ``--meta team=a`` through the SGLang stand-in (hash vectors, a fixed
latency per request); then ``--meta team=b`` (every file re-tagged: metadata re-written, nothing read or embedded),
the same again (nothing changed), and for scale a ``--full`` rebuild (every file read and embedded again).

    python -m benchmarks.bench_retag [--files 500] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.bench_pipeline import make_corpus
from pipelines.embeddings import make_embeddings
from pipelines.ingestion.writer import IngestReport, ingest
from pipelines.settings import Settings
from testbed.process import sglang_process

DIM = 1024


def timed(corpus: Path, store: Path, url: str, team: str, *, full: bool) -> tuple[float, IngestReport]:
    settings = Settings(store=store, embeddings_url=[url], meta={"team": team})
    embeddings = make_embeddings(settings)
    started = time.perf_counter()
    report = ingest([corpus], settings, embeddings=embeddings, full=full, progress=False)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=50, help="the stand-in's time per embedding request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sglang_process(DIM, args.latency_ms) as url:
        corpus = make_corpus(Path(tmp) / "corpus", args.files, paragraphs=8)
        store = Path(tmp) / "store"
        print(f"{args.files} files, {DIM}-dim vectors, {args.latency_ms} ms per embedding request\n")
        print("| run | seconds | files re-tagged | chunks written | embedding requests |")
        print("|---|---:|---:|---:|---:|")
        runs = [
            ("first ingest, --meta team=a", "a", False),
            ("--meta team=b (re-tag)", "b", False),
            ("--meta team=b again (unchanged)", "b", False),
            ("--full rebuild, --meta team=b", "b", True),
        ]
        for label, team, full in runs:
            seconds, report = timed(corpus, store, url, team, full=full)
            print(
                f"| {label} | {seconds:.2f} | {report.retagged} | {report.chunks_written} | "
                f"{report.embedding_requests} |"
            )


if __name__ == "__main__":
    main()
