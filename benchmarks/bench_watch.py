"""What a watch's sync of one edited file costs on a folder of many small files (issue 17): an ingest of the files
the events named against an ingest of the whole roots, which is what each sync ran before.

The folder is bench_pipeline's corpus (Markdown, one paragraph a file), ingested through the SGLang stand-in (hash
vectors, no latency) into an embedded store. Then, round after round, one file is edited and synced as
``_Session.sync`` does it (pipelines/ingestion/watch.py): the ingest, then the ledger's read of the file's chunks for
the line it says. Three ways, median wall seconds of the rounds:

- before: what each sync was until issue 17's last item, ``ingest()`` of the whole root, a fresh ``Ingest`` (its
  embedding client, its server probe) and a front forked from a process that never loaded the tokenizer;
- the whole root from the watch's kept ``Ingest``, warmed once (``Ingest.warm``): what a sync costs when the events
  cannot tell (an event on the root, a flood);
- after: the watch's sync now, the kept and warmed ``Ingest`` run ``only=`` the file's key.

The first rounds run before anything is warmed in this process (a warm parent would speed them up too); the other
two alternate.

    python -m benchmarks.bench_watch [--files 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_pipeline import make_corpus
from pipelines.ingestion.watch import Key, Ledger
from pipelines.ingestion.writer import Ingest, IngestReport, ingest
from pipelines.settings import Settings
from pipelines.store.chroma import open_store
from testbed.process import sglang_process

DIM = 1024


def sync(
    run: Callable[[set[Key] | None], IngestReport], ledger: Ledger, key: Key, *, restricted: bool
) -> tuple[float, int]:
    """Seconds of one sync of the edited file ``key``, and the files its ingest counted."""
    started = time.perf_counter()
    report = run({key} if restricted else None)
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
        edits = iter(range(10**6))

        def edited() -> Key:
            n = next(edits)
            source = f"doc{n % args.files:05d}.md"
            (folder / source).write_text(f"# Edited {n}\n\nNew text for the watch.\n", encoding="utf-8")
            return (str(folder), source)

        def fresh(only: set[Key] | None) -> IngestReport:
            return ingest([folder], settings, progress=False, only=only)

        before, whole, after = (
            "before: whole root, a fresh ingest per sync",
            "whole root, the watch's warm ingest",
            "after: the file the events named",
        )
        seconds: dict[str, list[float]] = {before: [], whole: [], after: []}
        files: dict[str, int] = {}

        def measure(label: str, run: Callable[[set[Key] | None], IngestReport]) -> None:
            took, files[label] = sync(run, ledger, edited(), restricted=label == after)
            seconds[label].append(took)

        for _ in range(args.rounds):
            measure(before, fresh)
        kept = Ingest(settings, progress=False)
        kept.warm()
        for round_ in range(args.rounds):
            for label in (whole, after) if round_ % 2 else (after, whole):
                measure(label, lambda only: kept.run([folder], only=only))
        print()
        print("| sync of one edited file | median s | min s | files the ingest counted |")
        print("|---|---:|---:|---:|")
        for label, runs in seconds.items():
            print(f"| {label} | {statistics.median(runs):.3f} | {min(runs):.3f} | {files[label]} |")


if __name__ == "__main__":
    main()
