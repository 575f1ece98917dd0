"""Servers that tests and benchmarks run against: an SGLang-protocol stand-in (no GPU can run SGLang here),
rerank servers, a real ``chroma run``, and deterministic embedders."""
