"""Start-up of ``qwen-rag query`` with the embedded default, against ``python -c "import chromadb"``.

    python -m benchmarks.bench_startup                       # 5 runs of each: the default mode (hybrid), dense
    python -m benchmarks.bench_startup --runs 9 --store DIR  # an existing store (built there if missing)

A one-shot query pays for every import (click, pydantic settings, Chroma, LangChain, the model's libraries), for
opening the store, loading the embedded model (tokenizer and onnxruntime session) and, in hybrid mode, jieba and the
BM25 index, before its few milliseconds of actual search. ``import chromadb`` alone is the floor any query over a
Chroma store pays, so the ratio of the two says how much qwen-rag adds to it (the target, issue 15: the default mode
at most 1.5x).

Each run launches the three commands one after the other (import, dense, hybrid), so a change of machine load hits
all of them alike; the table gives medians over the runs, of wall time and of CPU time (user + system, all
threads; it barely depends on the load). Then one more run of each query under
``PYTHONPROFILEIMPORTTIME`` lists the ten costliest imports by cumulative time (nested: ``chromadb`` includes what
it imports) and the ten costliest packages by their modules' own time (these do not overlap). The CPU is shared:
the load average (``uptime``) before and after is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUERY = "什么是人工智能？"
QWEN_RAG = Path(sys.executable).with_name("qwen-rag")
#: `-X importtime` lines: "import time:  self [us] | cumulative | <indent>module".
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")
Row = tuple[str, float]


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _env() -> dict[str, str]:
    """This environment without QWEN_RAG_* settings (a server URL would measure the server path instead);
    the cache directory stays, so the converted model is found where the store's ingest left it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("QWEN_RAG_") or k == "QWEN_RAG_CACHE_DIR"}


def _query(store: Path, mode: str) -> list[str]:
    """The query command; mode ``default`` gives no ``--mode``, as a user who does not choose."""
    chosen = [] if mode == "default" else ["--mode", mode]
    return [str(QWEN_RAG), "query", QUERY, "--store", str(store), *chosen]


def ensure_store(store: Path) -> None:
    """The demo store (data/samples, embedded model), built by ``qwen-rag ingest`` unless it is there."""
    if (store / "chroma.sqlite3").exists():
        return
    print(f"building the demo store in {store}", file=sys.stderr, flush=True)
    command = [str(QWEN_RAG), "ingest", str(REPO / "data" / "samples"), "--store", str(store)]
    subprocess.run(command, env=_env(), check=True)


def timed(command: Sequence[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``; its output is checked, not shown.

    CPU time barely moves with the machine's load, wall time does: on a shared machine the two together tell a
    change in qwen-rag from a change in the neighbours."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def import_profile(command: Sequence[str], top: int = 10) -> tuple[float, list[Row], list[Row]]:
    """One run of ``command`` under ``PYTHONPROFILEIMPORTTIME``: its total import seconds, its ``top`` costliest
    imports by cumulative time, and its ``top`` costliest packages by self time summed over their modules."""
    done = subprocess.run(
        command, env={**_env(), "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True, check=True
    )
    rows = [m for m in map(IMPORT_LINE.match, done.stderr.splitlines()) if m]
    # The outermost imports (least indented) do not overlap: their cumulative times add up to the whole.
    depth = min(len(m.group(3)) for m in rows)
    total = sum(int(m.group(2)) for m in rows if len(m.group(3)) == depth) / 1e6
    cumulative: dict[str, float] = {}
    for m in rows:  # a module appears once: Python imports it once
        cumulative[m.group(4)] = int(m.group(2)) / 1e6
    packages: dict[str, float] = {}
    for m in rows:
        package = m.group(4).split(".")[0]
        packages[package] = packages.get(package, 0.0) + int(m.group(1)) / 1e6
    return total, _top(cumulative, top), _top(packages, top)


def _top(seconds: dict[str, float], n: int) -> list[Row]:
    return sorted(seconds.items(), key=lambda row: row[1], reverse=True)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (medians are reported)")
    parser.add_argument("--store", type=Path, default=None, help="the demo store (default: a temporary one)")
    parser.add_argument(
        "--modes", default="default,dense", help="comma-separated retrieval modes to time (default: no --mode)"
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    with tempfile.TemporaryDirectory(prefix="qwen-rag-startup-") as tmp:
        store = args.store or Path(tmp) / "store"
        ensure_store(store)
        commands = {"import chromadb": [sys.executable, "-c", "import chromadb"]}
        commands |= {f"query --mode {m}": _query(store, m) for m in modes}
        for command in commands.values():  # once untimed: the page cache holds every file afterwards
            timed(command)
        before = _load()
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                wall, used = timed(command)
                times[name].append(wall)
                cpu[name].append(used)
        after = _load()
        imports = {f"query --mode {m}": import_profile(_query(store, m)) for m in modes}

    floor = statistics.median(times["import chromadb"])
    print(f"{args.runs} runs each; {before} before, {after} after\n")
    cpu_floor = statistics.median(cpu["import chromadb"])
    print("| command | median wall (s) | min / max (s) | ratio to import chromadb | median CPU (s) | CPU ratio |")
    print("|---|---|---|---|---|---|")
    for name, values in times.items():
        median, used = statistics.median(values), statistics.median(cpu[name])
        print(
            f"| `{name}` | {median:.2f} | {min(values):.2f} / {max(values):.2f} | {median / floor:.1f}x "
            f"| {used:.2f} | {used / cpu_floor:.1f}x |"
        )
    if "query --mode default" in times:
        ratio = statistics.median(times["query --mode default"]) / floor
        print(f"\ndefault mode: {ratio:.2f}x `import chromadb` (target 1.5x: {'met' if ratio <= 1.5 else 'missed'})")
    for name, (total, cumulative, packages) in imports.items():
        print(f"\n`{name}`: {total:.2f} s of imports in one run under `-X importtime`\n")
        print("| costliest imports (cumulative) | s | costliest packages (self time, all modules) | s |")
        print("|---|---|---|---|")
        for (module, seconds), (package, own) in zip(cumulative, packages, strict=False):
            print(f"| {module} | {seconds:.2f} | {package} | {own:.2f} |")


if __name__ == "__main__":
    main()
