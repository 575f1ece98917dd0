"""A collection that grows (issue 17): 4,000 Markdown files, about 100k chunks, embedded Chroma, the SGLang stand-in
with 1024-d hash vectors (so the embedding server costs nothing and the figures are the store's and ours).

Steps, each a ``qwen-rag`` process as a user runs it (peak memory: the summed PSS of the process and its children,
sampled every 0.1 s, see bench_memory): the first ingest; the first ``query --mode bm25`` after it; CLI queries in
each mode; one file edited, ``ingest`` again. In this process: the Python API's warm p50 per mode. Also measured:
what Chroma alone needs to open the collection and answer one vector query in a fresh process (``chroma open``),
Python + our imports, and the lexical index's share of the ingest (its time inside the ingest process: analysing,
staging, committing, bumping the collection's marker). Text: a Zipf-distributed vocabulary of 30,000 made-up
English words and 3,000 Chinese words, so postings lists are as skewed as a real corpus's.

    nice python -m benchmarks.bench_scale              # about 15 minutes on 2 busy cores
    python -m benchmarks.bench_scale --files 200      # a quick look

``--again`` measures issue 17's wall-time targets again on a store kept by ``--keep DIR``, without building it:
``--rounds`` one-file edits re-ingested, one unchanged re-ingest, then ``--rounds`` rounds of Chroma alone and a CLI
query per mode, each with the load average at its start and the CPU of its processes (the machine is shared):

    python -m benchmarks.bench_scale --keep /tmp/lex/s4000 --again --rounds 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.bench_memory import _pss_mb
from testbed.process import descendants

EDITED_WORD = "quuxfrobnicated"
ENGLISH_SYLLABLES = ["ka", "lo", "mi", "ter", "van", "sol", "dri", "pen", "qua", "rix", "mon", "tal", "bre", "cus"]
CHINESE = "数据向量检索索引模型段落查询服务器嵌入上下文批量延迟系统方法学习网络结构文本信息分析处理计算"


def vocabulary(rng: random.Random) -> list[str]:
    english = {"".join(rng.choices(ENGLISH_SYLLABLES, k=rng.randint(2, 4))) for _ in range(60_000)}
    chinese = {"".join(rng.choices(CHINESE, k=2)) for _ in range(5_000)}
    words = sorted(english)[:30_000] + sorted(chinese)[:3_000]
    rng.shuffle(words)
    return words


def make_corpus(folder: Path, files: int, file_kb: int = 27, seed: int = 17) -> list[str]:
    """``files`` Markdown files of about ``file_kb`` KB (25 chunks of 512 tokens); returns the vocabulary."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights = list(itertools.accumulate(1 / rank for rank in range(1, len(words) + 1)))
    folder.mkdir(parents=True)
    for f in range(files):
        parts = [f"# Document {f}\n\n"]
        size = 0
        section = 0
        while size < file_kb * 1024:
            if rng.random() < 0.1:
                section += 1
                parts.append(f"## Section {section}\n\n")
            paragraph = " ".join(rng.choices(words, cum_weights=weights, k=rng.randint(60, 140))) + ".\n\n"
            parts.append(paragraph)
            size += len(paragraph.encode("utf-8"))
        (folder / f"doc{f:05d}.md").write_text("".join(parts), encoding="utf-8")
    return words


# The ingest's child: the CLI, with the lexical index's work timed (printed as the last stderr line).
CHILD = """
import atexit, sys, time
from pipelines.retrieve import lexical, lexical_sync
from pipelines.store import marker
spent, depth = [0.0], [0]
def timed(owner, name):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        depth[0] += 1
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            depth[0] -= 1
            if not depth[0]:  # put calls put_terms: counted once
                spent[0] += time.perf_counter() - start
    setattr(owner, name, wrapper)
# The writer stages each write's chunks with put_terms (their terms come from the front's process).
for name in ("put", "put_terms", "delete", "delete_file", "commit"):
    timed(lexical.LexicalIndex, name)
timed(lexical_sync, "bump")  # the marker's two bumps per write
atexit.register(lambda: print(f"LEXICAL {spent[0]:.3f}", file=sys.stderr))
from pipelines.cli import main
main(sys.argv[1:])
"""


class Rows(list[tuple[str, str, str]]):
    """The table's rows, each also printed as it is measured (a long run shows its progress)."""

    def append(self, row: tuple[str, str, str]) -> None:
        print(" | ".join(row), file=sys.stderr, flush=True)
        super().append(row)

    def extend(self, rows: Iterable[tuple[str, str, str]]) -> None:
        for row in rows:
            self.append(row)


def sampled(command: list[str]) -> tuple[float, float, str, str]:
    """Peak PSS (MB, the process and its children, every 0.1 s), seconds, stdout and stderr of ``command``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        with subprocess.Popen(command, stdout=out, stderr=err, text=True) as process:
            peak = 0.0
            while process.poll() is None:
                peak = max(peak, sum(_pss_mb(p) for p in (process.pid, *descendants(process.pid))))
                time.sleep(0.1)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed ({process.returncode}): {stderr[-2000:]}")
    return peak, seconds, stdout, stderr


def timed_run(command: list[str]) -> tuple[float, float]:
    """Peak PSS (MB) and wall seconds of ``command``."""
    peak, seconds, _out, _err = sampled(command)
    return peak, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--keep", type=Path, help="Build here and keep it (default: a temporary directory).")
    parser.add_argument("--again", action="store_true", help="Measure the targets again on the store kept in --keep.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.again:
        if args.keep is None:
            parser.error("--again needs --keep DIR (a store an earlier run kept)")
        again(args.keep, args.rounds)
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="qwen-rag-scale-"))
    python = sys.executable
    from testbed.process import sglang_process

    try:
        corpus, store = work / "corpus", work / "store"
        started = time.perf_counter()
        words = make_corpus(corpus, args.files)
        megabytes = sum(p.stat().st_size for p in corpus.iterdir()) / 1024 / 1024
        print(
            f"corpus: {args.files} files, {megabytes:.0f} MB, made in {time.perf_counter() - started:.0f} s", flush=True
        )
        rows = Rows()
        with sglang_process(1024) as url:
            common = ["--store", str(store), "--embeddings-url", url]
            ingest = [python, "-c", CHILD, "ingest", str(corpus), *common, "--json"]

            peak, seconds, report, lexical = ingest_run(ingest)
            chunks = report["chunks_written"]
            rows.append(
                (
                    "first ingest",
                    f"{seconds:.0f} s ({chunks / seconds:.0f} chunks/s; lexical index {lexical:.0f} s, "
                    f"{100 * lexical / max(seconds - lexical, 1e-9):.1f}% extra)",
                    f"{peak / 1024:.2f} GB",
                )
            )
            query = [python, "-m", "pipelines.cli", "query", *common, "-k", "5"]
            terms = words[200:260]
            peak, seconds = timed_run([*query, " ".join(terms[:3]), "--mode", "bm25"])
            rows.append(("first `query --mode bm25` after it", f"{seconds:.1f} s", f"{peak / 1024:.2f} GB"))
            for mode in ("bm25", "hybrid", "dense"):
                peak, seconds = timed_run([*query, " ".join(terms[3:6]), "--mode", mode])
                rows.append((f"CLI query --mode {mode}", f"{seconds:.1f} s", f"{peak / 1024:.2f} GB"))
            opening = chroma_open(python, store)
            rows.append(("chroma open (fresh process: import, open, one vector query)", f"{opening:.1f} s", ""))
            imports = import_cost(python)
            rows.append(("python + `import pipelines.cli, retriever` alone", f"{imports:.1f} s", ""))
            rows.extend(api_p50(store, url, terms))

            edited = corpus / f"doc{args.files // 2:05d}.md"
            text = edited.read_text(encoding="utf-8")
            cut = text.index("\n\n", len(text) // 2)
            edited.write_text(text[:cut] + f"\n\nA new paragraph about {EDITED_WORD}." + text[cut:], encoding="utf-8")
            peak, seconds, report, lexical = ingest_run(ingest)
            rows.append(
                (
                    f"one file edited ({report['chunks_written']} chunks written), `ingest` again",
                    f"{seconds:.1f} s (lexical index {lexical:.2f} s)",
                    f"{peak / 1024:.2f} GB",
                )
            )
            found = subprocess.run([*query, EDITED_WORD, "--mode", "bm25", "--json"], capture_output=True, text=True)
            assert edited.name in found.stdout, found.stderr  # the edit is searchable at once
        size = sum(p.stat().st_size for p in (store / "lexical").rglob("*") if p.is_file()) / 1024 / 1024
        print(f"\n### {chunks:,} chunks, {megabytes:.0f} MB of text (lexical index on disk: {size:.0f} MB)\n")
        print("| step | wall | peak memory |\n|---|---|---|")
        for step, wall, memory in rows:
            print(f"| {step} | {wall} | {memory} |")
        command = f"nice python -m benchmarks.bench_scale --files {args.files}"
        print(f"\n(measured {time.strftime('%Y-%m-%d %H:%M')}: `{command}`)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def again(work: Path, rounds: int) -> None:
    """Issue 17's wall-time targets on a kept store (see the module docstring)."""
    import os
    import resource

    from testbed.process import sglang_process

    def measured(command: list[str]) -> tuple[float, float, float, float, str]:
        """Wall seconds, CPU seconds of the process and its children, peak PSS (MB), load average, stdout."""
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak, seconds, out, _ = sampled(command)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return seconds, cpu, peak, load, out

    corpus, store, python = work / "corpus", work / "store", sys.executable
    files = sorted(corpus.iterdir())
    with sglang_process(1024) as url:
        common = ["--store", str(store), "--embeddings-url", url]
        ingest = [python, "-m", "pipelines.cli", "ingest", str(corpus), *common, "--json"]
        stamp = time.strftime("%H%M%S")
        for round_ in range(rounds):
            edited = files[(len(files) // 3 + round_ * 7) % len(files)]
            text = edited.read_text(encoding="utf-8")
            cut = text.index("\n\n", len(text) // 2)
            marker = f"{EDITED_WORD}{stamp}x{round_}"
            edited.write_text(text[:cut] + f"\n\nAnother paragraph about {marker}." + text[cut:], encoding="utf-8")
            time.sleep(2.5)  # a save, then the ingest: past the window in which a hash is not kept (digests.py)
            seconds, cpu, peak, load, out = measured(ingest)
            report = json.loads(out)
            print(
                f"one file edited, ingest again: {seconds:.2f} s (CPU {cpu:.2f} s), {peak / 1024:.2f} GB, "
                f"load {load:.2f}"
                f" ({report['chunks_written']} chunks written, {report['chunks_reused']} vectors reused)",
                flush=True,
            )
        seconds, cpu, peak, load, out = measured(ingest)
        print(f"unchanged, ingest again: {seconds:.2f} s (CPU {cpu:.2f} s), {peak / 1024:.2f} GB, load {load:.2f}")
        query = [python, "-m", "pipelines.cli", "query", *common, "-k", "5", f"{EDITED_WORD}{stamp}x0"]
        for _ in range(rounds):
            load = os.getloadavg()[0]
            row = [f"chroma open {chroma_open(python, store):.2f} s (load {load:.2f})"]
            for mode in ("bm25", "hybrid", "dense"):
                seconds, cpu, peak, load, out = measured([*query, "--mode", mode])
                row.append(f"{mode} {seconds:.2f} s (CPU {cpu:.2f} s, {peak / 1024:.2f} GB, load {load:.2f})")
            print("; ".join(row), flush=True)


def ingest_run(command: list[str]) -> tuple[float, float, dict[str, Any], float]:
    """Peak PSS (MB), seconds, the --json report and the lexical index's seconds of one ingest."""
    peak, seconds, out, err = sampled(command)
    lexical = float(next(line.split()[1] for line in reversed(err.splitlines()) if line.startswith("LEXICAL ")))
    return peak, seconds, json.loads(out), lexical


def chroma_open(python: str, store: Path) -> float:
    script = (
        "import chromadb, time, random\n"
        f"client = chromadb.PersistentClient(path={str(store)!r})\n"
        "c = client.get_collection('default')\n"
        "c.query(query_embeddings=[[random.random() for _ in range(1024)]], n_results=5)\n"
    )
    start = time.perf_counter()
    subprocess.run([python, "-c", script], check=True, capture_output=True)
    return time.perf_counter() - start


def import_cost(python: str) -> float:
    start = time.perf_counter()
    script = "import pipelines.cli, pipelines.retrieve.retriever"
    subprocess.run([python, "-c", script], check=True, capture_output=True)
    return time.perf_counter() - start


def api_p50(store: Path, url: str, terms: list[str]) -> list[tuple[str, str, str]]:
    from pipelines.retrieve.retriever import build_retriever
    from pipelines.settings import Settings

    retriever = build_retriever(Settings(store=store, embeddings_url=[url], k=5))
    rows = []
    for mode in ("dense", "bm25", "hybrid"):
        retriever.invoke(terms[0], mode=mode)  # warm
        times = []
        for i in range(30):
            query = " ".join(terms[(i * 3) % 57 : (i * 3) % 57 + 3])
            start = time.perf_counter()
            retriever.invoke(query, mode=mode)
            times.append(time.perf_counter() - start)
        rows.append((f"Python API, warm, p50 ({mode})", f"{1000 * statistics.median(times):.0f} ms", ""))
    return rows


if __name__ == "__main__":
    main()
