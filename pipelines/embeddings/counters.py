"""The token counter each embedding model chunks with: its own tokenizer, never an approximation we can avoid.

Each counter's library is imported when that counter is asked for: an ingest for a Qwen3 server never loads e5's.

>>> counter_for("qwen3").count("你好，世界！")
4
"""

from __future__ import annotations

from loaders.tokens import TokenCounter, qwen_tokenizer
from pipelines.cache import cache_root


def counter_for(tokenizer: str) -> TokenCounter:
    """``"qwen3"``: the Qwen3 BPE (with the EOS the server appends); ``"e5"``: multilingual-e5's unigram model."""
    if tokenizer == "e5":
        from pipelines.embeddings.e5.counter import E5TokenCounter

        return E5TokenCounter()
    if tokenizer == "qwen3":
        return qwen_tokenizer(str(cache_root() / "tokenizers"))
    raise ValueError(f"unknown tokenizer {tokenizer!r}")
