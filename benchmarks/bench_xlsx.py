"""Reading a 200,000-row workbook: rows per second, Documents and chunks, and the reader's peak memory.

The workbook (one sheet, 8 columns: order number, date, customer, product, quantity, price, amount, note; Chinese
and English text) is generated once with openpyxl's write-only mode and cached under ``$QWEN_RAG_CACHE_DIR/bench``
(else ``$XDG_CACHE_HOME/qwen-rag/bench``, else ``~/.cache/qwen-rag/bench``), so reruns start at once. A child
process runs ``loaders.read`` over it, then another runs ``read`` and the chunker (Qwen3 tokenizer, default
``ChunkSpec``); the peak resident set of each is what ``getrusage(RUSAGE_CHILDREN)`` reports once it has exited.
The first shows the reader's own memory, which the tokenizer's tables (about 75 MB) would hide in the second.

Then the whole ingest: ``qwen-rag ingest FILE --store TMP --embeddings-url URL --json`` as its own process, into
a fresh embedded Chroma store, against the SGLang stand-in (``testbed.sglang``, hash vectors of 384 dimensions,
the embedded default model's width, so the store and its HNSW index are as large) in a process of its own. Its
memory is sampled as ``benchmarks.bench_memory`` does: the PSS of the ingest's whole process tree (the ingest,
its front child, the forkserver and its parser workers, ``loaders/isolation.py``) ten times a second; the peak
of that sum is reported against the 1 GB bar, with the rows the store's chunks cover (read back from it).
The stand-in is used because the embedded model would take over an hour for the ~28,000 chunks on 2 cores:
what is measured is qwen-rag's own pipeline; the embedded model adds its own, constant, ~0.5 GB (peak RSS 518 MB
of the embedding process, docs/benchmarks.md, "The embedded model"). Nothing is asserted: it prints tables.

python-calamine against openpyxl comes first: the same file read by `loaders.calamine` and by `loaders.xlsx`, each
in a child process of its own, twice, alternating (``--compare-only``: that alone).

    python -m benchmarks.bench_xlsx [--rows 200000] [--skip-ingest] [--compare-only]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

COLUMNS = ["订单号", "日期", "客户", "产品", "数量", "单价", "金额", "备注"]
_CUSTOMERS = ["华东商贸有限公司", "北京远航科技", "Acme Corp", "深圳新材料", "成都蓉城物流", "Globex GmbH"]
_PRODUCTS = ["笔记本电脑", "显示器", "机械键盘", "USB-C cable", "激光打印机", "office chair"]
_NOTES = ["", "", "加急", "客户要求开发票", "partial delivery", "已退货一件"]
_FORMAT = 1  # bump when the generated workbook changes: the cached file's name carries it


def cache_dir() -> Path:
    """Where generated benchmark inputs are kept (the same root as the model cache)."""
    if explicit := os.environ.get("QWEN_RAG_CACHE_DIR"):
        return Path(explicit) / "bench"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qwen-rag" / "bench"


def write_workbook(path: Path, rows: int) -> None:
    """An orders sheet of `rows` data rows under a header row, written row by row (openpyxl's write-only mode)."""
    from openpyxl import Workbook

    rng = random.Random(rows)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("订单")
    sheet.append(COLUMNS)
    first_day = datetime.date(2023, 1, 1)
    for i in range(rows):
        quantity, price = rng.randint(1, 50), round(rng.uniform(10, 9000), 2)
        day = first_day + datetime.timedelta(days=i % 700)
        customer, product, note = rng.choice(_CUSTOMERS), rng.choice(_PRODUCTS), rng.choice(_NOTES)
        sheet.append([f"SO-{i + 1:07d}", day, customer, product, quantity, price, round(quantity * price, 2), note])
    workbook.save(path)


def cached_workbook(rows: int) -> Path:
    """The generated workbook of `rows` rows, written (into a temporary folder, then moved) on first use."""
    path = cache_dir() / f"orders-{rows}x{len(COLUMNS)}-v{_FORMAT}.xlsx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            draft = Path(folder) / path.name
            write_workbook(draft, rows)
            shutil.move(draft, path)
        print(f"generated {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def _rss_mb() -> float:
    """The current resident set of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(path: Path, chunk: bool, reader: str) -> None:
    """Read `path` with `reader` (``read``: the registry's choice; ``calamine``: `loaders.calamine`) and chunk it
    if `chunk`; print one JSON line of counts, seconds and memory (``peak_self``: this process's peak RSS)."""
    from loaders.calamine import CalamineFileLoader
    from loaders.chunking import Chunker, ChunkSpec
    from loaders.registry import read
    from loaders.source import SourceFile
    from loaders.tokens import qwen_tokenizer

    chunker = Chunker(qwen_tokenizer(), ChunkSpec()) if chunk else None
    if chunker:
        qwen_tokenizer().count("warm up")  # the tokenizer loads on first use: before the baseline, not timed
    baseline = _rss_mb()
    rows = documents = chunks = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    docs = CalamineFileLoader(path).lazy_load() if reader == "calamine" else read(SourceFile(root=path, path=path))
    for doc in docs:
        documents += 1
        rows += doc.metadata["row_end"] - doc.metadata["row_start"] + 1
        if chunker:
            chunks += len(chunker.split(doc))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    counts = {"rows": rows, "documents": documents, "chunks": chunks, "rss": baseline}
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    print(json.dumps(counts | {"seconds": seconds, "cpu": cpu, "peak_self": peak_self}))


def measure(path: Path, chunk: bool, reader: str = "read") -> dict:
    """The child's report, and its peak RSS in MB: ``RUSAGE_CHILDREN`` is the largest of the waited-for children,
    so the children are run smallest first (reading alone, then reading with the tokenizer loaded)."""
    command = [sys.executable, "-m", "benchmarks.bench_xlsx", "--child", str(path), "--reader", reader]
    command += ["--chunk"] if chunk else []
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    return json.loads(out.splitlines()[-1]) | {"peak": peak_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="Data rows of the generated sheet.")
    parser.add_argument("--skip-ingest", action="store_true", help="Only the reading measurements.")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the measured process
    parser.add_argument("--chunk", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reader", choices=("read", "calamine"), default="read", help=argparse.SUPPRESS)
    parser.add_argument("--compare-only", action="store_true", help="Only calamine against openpyxl.")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.chunk, args.reader)
        return
    path = cached_workbook(args.rows)
    with zipfile.ZipFile(path) as archive:
        sheet_mb = sum(i.file_size for i in archive.infolist() if i.filename.startswith("xl/worksheets/")) / 1e6
    size_mb = path.stat().st_size / 1e6
    print(f"{args.rows:,} rows x {len(COLUMNS)} columns: a {size_mb:.1f} MB file, {sheet_mb:.0f} MB of sheet XML.")
    print_comparison(path)
    if args.compare_only:
        return
    print("\n### Reading a large workbook (loaders.xlsx)\n")
    print("| work | Documents | chunks | seconds | CPU seconds | rows/s | RSS before reading MB | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for label, chunk in (("read()", False), ("read() + Chunker", True)):
        r = measure(path, chunk)
        chunks = f"{r['chunks']:,}" if chunk else "-"
        print(
            f"| {label} | {r['documents']:,} | {chunks} | {r['seconds']:.1f} | {r['cpu']:.1f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {r['rss']:.0f} | {r['peak']:.0f} |"
        )
    print(
        f"\n(measured {time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores, shared: rows/s are per wall-clock "
        "second. openpyxl's write-only mode leaves out the sheet's <dimension>, so openpyxl also parses the whole "
        "sheet once when opening it, which it does not for a file Excel saved.)"
    )
    if not args.skip_ingest:
        print_ingest(path, args.rows)


def print_comparison(path: Path) -> None:
    """The same workbook read by python-calamine (`loaders.calamine`) and by openpyxl (`loaders.xlsx`, what
    ``read`` uses for .xlsx), each alone in a child process, twice, alternating; each child's own peak RSS."""
    print("\n### calamine or openpyxl for .xlsx: reading alone\n")
    print("| reader | Documents | rows | seconds | CPU seconds | rows/s | RSS before reading MB | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for _ in range(2):
        for label, reader in (("openpyxl (loaders.xlsx)", "read"), ("python-calamine (loaders.calamine)", "calamine")):
            r = measure(path, False, reader)
            print(
                f"| {label} | {r['documents']:,} | {r['rows']:,} | {r['seconds']:.1f} | {r['cpu']:.1f} | "
                f"{r['rows'] / r['seconds']:,.0f} | {r['rss']:.0f} | {r['peak_self']:.0f} |"
            )
    print(f"\n(measured {time.strftime('%Y-%m-%d %H:%M')}; load average {_load()} after (1, 5, 15 min))")


def _load() -> str:
    """The load averages over 1, 5 and 15 minutes, as `uptime` shows them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def rows_in_store(store: Path) -> int:
    """How many distinct sheet rows the chunks in `store` (its only collection) cover, from their ``row_start``
    and ``row_end``, read back page by page."""
    import chromadb

    from pipelines.store.paging import pages

    client = chromadb.PersistentClient(path=str(store))
    covered: set[int] = set()
    for listed in client.list_collections():
        collection = client.get_collection(listed.name)
        for page in pages(collection, include=["metadatas"]):
            for meta in page["metadatas"] or []:
                if meta and "row_start" in meta:
                    covered.update(range(int(meta["row_start"]), int(meta["row_end"]) + 1))
    return len(covered)


def ingest(path: Path) -> dict:
    """``qwen-rag ingest`` of `path` into a fresh embedded store against the stand-in server in its own process:
    the peak PSS of the ingest's process tree (and of the ingest process alone, and of its descendants), seconds,
    the --json report and the rows the written chunks cover."""
    # Imported here, not at the top: the --child processes above measure their own memory.
    from benchmarks.bench_memory import peak_memory_of
    from testbed.process import sglang_process

    binary = str(Path(sys.executable).with_name("qwen-rag"))
    with tempfile.TemporaryDirectory(prefix="qwen-rag-xlsx-") as folder, sglang_process(384) as url:
        store = Path(folder) / "store"
        command = [binary, "ingest", str(path), "--store", str(store), "--embeddings-url", url, "--json"]
        load_before = _load()
        peak, own, children, seconds, report = peak_memory_of(command)
        load_after = _load()
        rows = rows_in_store(store)
    return {
        "peak": peak, "own": own, "children": children, "seconds": seconds, "report": report, "rows": rows,
        "load": (load_before, load_after),
    }  # fmt: skip


def print_ingest(path: Path, rows: int) -> None:
    r = ingest(path)
    report = r["report"]
    under = "yes" if r["peak"] < 1024 else "**no**"
    print("\n### Ingesting a large workbook (qwen-rag ingest, embedded store, stand-in server)\n")
    print(f"`qwen-rag ingest {path.name} --store TMP --embeddings-url URL --json`\n")
    print(
        "| rows in the sheet | rows in the store | chunks written | embedding requests | seconds | "
        "peak memory (PSS) of the process tree MB | ingest process alone | its children | under 1 GB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {rows:,} | {r['rows']:,} | {report['chunks_written']:,} | {report['embedding_requests']:,} | "
        f"{r['seconds']:.0f} | {r['peak']:.0f} | {r['own']:.0f} | {r['children']:.0f} | {under} |"
    )
    if report["failed"] or report["problems"]:
        print(f"\nproblems: {report['problems']}")
    print(
        f"\n(measured {time.strftime('%Y-%m-%d %H:%M')}; load average {r['load'][0]} before, {r['load'][1]} after "
        "(1, 5, 15 min). Peak of the summed PSS of the ingest, its front child, the forkserver and its parser "
        "workers, sampled every 0.1 s; the stand-in server excluded. Hash vectors of 384 dimensions from the SGLang "
        "stand-in in its own process: the embedded model would take over an hour for these chunks on 2 cores. "
        "What is measured is qwen-rag's own pipeline; the embedded model adds its own, constant, ~0.5 GB (518 MB "
        "peak RSS embedding, docs/benchmarks.md, 'The embedded model').)"
    )


if __name__ == "__main__":
    main()
