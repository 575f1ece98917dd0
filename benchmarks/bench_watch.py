"""What a watch's sync of one edited file costs on a folder of many small files (issue 17): an ingest of the files
the events named against an ingest of the whole roots, which is what each sync ran before.

The folder is bench_pipeline's corpus (Markdown, one paragraph a file), ingested through the SGLang stand-in (hash
vectors) into an embedded store. Then, round after round, one file is edited and synced each way in turn, as
``_Session.sync`` does it (pipelines/ingestion/watch.py): the ingest (``only=`` the file's key, or the whole root),
then the ledger's read of the file's chunks for the line it says. Each ingest builds its own embedding client and
front, as the watch's do. Median wall seconds of the rounds, and the files the report counted.

    python -m benchmarks.bench_watch [--files 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.bench_pipeline import make_corpus
from pipelines.ingestion.watch import Key, Ledger
from pipelines.ingestion.writer import IngestReport, ingest
from pipelines.settings import Settings
from pipelines.store.chroma import open_store
from testbed.process import sglang_process

DIM = 1024


def sync(folder: Path, settings: Settings, ledger: Ledger, key: Key, *, restricted: bool) -> tuple[float, int]:
    """Seconds of one sync of the edited file ``key``, and the files its ingest counted."""
    started = time.perf_counter()
    only = {key} if restricted else None
    report: IngestReport = ingest([folder], settings, progress=False, only=only)
    ledger.update([key], ledger.read([key]))
    seconds = time.perf_counter() - started
    assert report.updated == 1, report  # the edit was indexed either way
    return seconds, report.files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sglang_process(DIM, 0) as url:
        folder = make_corpus(Path(tmp) / "corpus", args.files, paragraphs=1).resolve()
        settings = Settings(store=Path(tmp) / "store", embeddings_url=[url])
        started = time.perf_counter()
        first = ingest([folder], settings, progress=False)
        print(f"{args.files} files, first ingest {time.perf_counter() - started:.1f} s ({first.chunks_written} chunks)")
        ledger = Ledger(open_store(settings), settings.collection, [folder])
        ledger.load()
        timings: dict[bool, list[float]] = {True: [], False: []}
        counted: dict[bool, int] = {}
        for round_ in range(args.rounds):
            for restricted in (round_ % 2 == 0, round_ % 2 == 1):  # alternate which goes first
                source = f"doc{(2 * round_ + restricted) % args.files:05d}.md"
                (folder / source).write_text(f"# Edited {round_} {restricted}\n\nNew text for the watch.\n")
                seconds, files = sync(folder, settings, ledger, (str(folder), source), restricted=restricted)
                timings[restricted].append(seconds)
                counted[restricted] = files
        print()
        print("| sync of one edited file | median s | min s | files the ingest counted |")
        print("|---|---:|---:|---:|")
        for restricted, label in ((False, "whole root (before)"), (True, "the files the events named (after)")):
            runs = timings[restricted]
            print(f"| {label} | {statistics.median(runs):.3f} | {min(runs):.3f} | {counted[restricted]} |")


if __name__ == "__main__":
    main()
