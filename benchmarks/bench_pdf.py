"""PDF reading speed and memory per layout policy, on the shared sample PDFs (and their 117-page lecture notes).

Each (reader, file) runs in a fresh process (so its peak RSS is its own, model and libraries included) and reads
every page of the file: ``PdfFileLoader`` with ``--layout off``, ``auto`` and ``model``, and, for the choice of the
text engine, pdfplumber's own ``extract_text()`` per page (what loaders.pdf_text would cost on pdfminer instead of
PDFium) and pypdf's ``extract_text()`` (the reader before PDFium). Times start after the imports. Pages per
second are wall-clock, and per CPU second beside them: the 2 cores are shared (the load average is printed too),
and under load the CPU figure is the one that says what the reader costs.

    python -m benchmarks.bench_pdf                     # about 5 minutes on 2 busy cores (model: ~1 s a page)
    python -m benchmarks.bench_pdf --readers off,auto  # the fast policies only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from testbed.shared import sample_pdfs

SAMPLES = sample_pdfs()
READERS = ("off", "auto", "model", "pdfplumber", "pypdf")


def measure(reader: str, path: Path) -> dict[str, float]:
    """Reads every page of `path` with `reader` in this process: pages, seconds, CPU seconds (both from after the
    imports), peak RSS (MB)."""
    if reader in ("off", "auto", "model"):
        from loaders.options import LayoutMode
        from loaders.pdf import PdfFileLoader

        def read() -> int:
            return len({doc.metadata["page"] for doc in PdfFileLoader(path, layout=LayoutMode(reader)).lazy_load()})
    elif reader == "pdfplumber":
        import pdfplumber

        def read() -> int:
            with pdfplumber.open(path) as pdf:
                return sum(1 for page in pdf.pages if page.extract_text() is not None)
    else:
        from pypdf import PdfReader

        def read() -> int:
            return sum(1 for page in PdfReader(path).pages if page.extract_text() is not None)

    started, cpu = time.perf_counter(), time.process_time()
    pages = read()
    return {
        "pages": pages,
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", default=",".join(READERS), help="comma-separated: " + ", ".join(READERS))
    parser.add_argument("--one", nargs=2, metavar=("READER", "FILE"), help=argparse.SUPPRESS)  # a child's run
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], Path(args.one[1]))))
        return
    files = sorted(p for p in SAMPLES.glob("*.pdf") if "encrypted" not in p.name)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| reader | file | pages | s | CPU s | pages/s | pages/CPU s | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for reader in args.readers.split(","):
        total_pages, total_seconds, total_cpu, peak = 0, 0.0, 0.0, 0.0
        for path in files:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_pdf", "--one", reader, str(path)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            row = json.loads(out.strip().splitlines()[-1])
            total_pages += int(row["pages"])
            total_seconds += row["seconds"]
            total_cpu += row["cpu"]
            peak = max(peak, row["peak_mb"])
            print(
                f"| {reader} | {path.name} | {row['pages']:.0f} | {row['seconds']:.2f} | {row['cpu']:.2f} "
                f"| {row['pages'] / row['seconds']:.1f} | {row['pages'] / row['cpu']:.1f} | {row['peak_mb']:.0f} |",
                flush=True,
            )
        print(
            f"| **{reader}** | all | {total_pages} | {total_seconds:.1f} | {total_cpu:.1f} | "
            f"**{total_pages / total_seconds:.1f}** | **{total_pages / total_cpu:.1f}** | {peak:.0f} |",
            flush=True,
        )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
