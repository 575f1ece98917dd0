"""The token counter each embedding model chunks with: its own tokenizer, never an approximation we can avoid."""

from __future__ import annotations

from loaders.tokens import TokenCounter, qwen_tokenizer
from pipelines.embeddings.e5 import E5TokenCounter


def counter_for(tokenizer: str) -> TokenCounter:
    """``"qwen3"``: the Qwen3 BPE (with the EOS the server appends); ``"e5"``: multilingual-e5's unigram model."""
    if tokenizer == "e5":
        return E5TokenCounter()
    if tokenizer == "qwen3":
        return qwen_tokenizer()
    raise ValueError(f"unknown tokenizer {tokenizer!r}")
