"""``make bench``: every benchmark in turn (the long retrieval evaluations are run with ``qwen-rag eval``)."""

from __future__ import annotations

import subprocess
import sys

#: Module, arguments. Each prints its own Markdown section.
BENCHMARKS = (
    ("benchmarks.bench_chunking", []),
    ("benchmarks.bench_e5", []),
    ("benchmarks.bench_store_gil", []),
    ("benchmarks.bench_pipeline", []),
    ("benchmarks.bench_memory", []),
    ("benchmarks.bench_bm25", []),
    ("benchmarks.bench_lexical", []),
    ("benchmarks.bench_scale", []),
    ("benchmarks.bench_startup", []),
    ("benchmarks.bench_xlsx", []),
    ("benchmarks.bench_retag", []),
    ("benchmarks.bench_watch", []),
    ("benchmarks.bench_ocr", ["--rounds", "1"]),
    ("benchmarks.bench_pdf", []),
    ("benchmarks.bench_dify", []),
)


def main() -> None:
    quick = ["--quick"] if "--quick" in sys.argv[1:] else []
    for module, args in BENCHMARKS:
        print(f"\n## {module}\n", flush=True)
        extra = quick if module in ("benchmarks.bench_pipeline", "benchmarks.bench_memory") else []
        subprocess.run([sys.executable, "-m", module, *args, *extra], check=True)


if __name__ == "__main__":
    main()
