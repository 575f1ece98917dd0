"""Benchmark scripts (``make bench``); not part of ``make test``. Results and method: docs/benchmarks.md."""
