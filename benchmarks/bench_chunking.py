"""Timings of the Qwen3 tokenizer engines and of the chunker on big and pathological inputs.

Run: ``python benchmarks/bench_chunking.py`` (reads the CMRC2018 and SciFact corpora from the shared folder's
``eval/``: ``testbed.shared``). Prints one line per measurement; not part of the test suite.
"""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Callable
from typing import TypeVar

import tokenizers
from langchain_core.documents import Document

from loaders.chunking import Chunker, ChunkSpec
from loaders.tokens import QwenTokenizer, qwen_tokenizer
from testbed.shared import shared_dir

T = TypeVar("T")
EVAL = shared_dir() / "eval"


def timed(label: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = fn()
    print(f"{label:<62} {time.perf_counter() - start:7.2f} s")
    return result


def corpus(name: str) -> list[str]:
    with open(EVAL / name / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def bench_engines(texts: list[str]) -> None:
    """Tokens per second of tiktoken (what QwenTokenizer runs) and of the tokenizers library, one text at a time
    as the chunker calls them, and tokenizers' parallel batch for reference."""
    fresh = QwenTokenizer()
    timed("load: tiktoken engine (tokenizer.json -> tiktoken.Encoding)", lambda: fresh.count("x"))
    hf = timed(
        "load: tokenizers.Tokenizer.from_file",
        lambda: tokenizers.Tokenizer.from_file(qwen_tokenizer().path),
    )
    chars = sum(map(len, texts))
    for label, encode in [
        ("tiktoken (QwenTokenizer.encode)", lambda: [qwen_tokenizer().encode(t) for t in texts]),
        ("tokenizers encode", lambda: [hf.encode(t, add_special_tokens=False).ids for t in texts]),
        (
            "tokenizers encode_batch (all cores)",
            lambda: [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)],
        ),
    ]:
        start = time.perf_counter()
        tokens = sum(map(len, encode()))
        seconds = time.perf_counter() - start
        print(
            f"{label:<40} {tokens:>9} tokens {chars:>9} chars {seconds:6.2f} s {tokens / seconds / 1e6:6.2f} M tokens/s"
        )


def bench_chunker(zh: list[str], en: list[str]) -> None:
    tok = qwen_tokenizer()
    rng = random.Random(0)

    mixed, tokens = [], 0
    while tokens < 200_000:  # paragraphs alternating Chinese and English
        for text in (rng.choice(zh), rng.choice(en)):
            mixed.append(text)
            tokens += tok.count(text)
    mixed_text = "\n\n".join(mixed)
    chunker = Chunker(tok, ChunkSpec(chunk_tokens=512, overlap_tokens=64))
    chunks = timed(
        f"mixed zh/en, {tok.count(mixed_text)} tokens, {len(mixed_text)} chars, 512/64",
        lambda: chunker.split(Document(mixed_text)),
    )
    print(f"  -> {len(chunks)} chunks, max {max(c.metadata['tokens'] for c in chunks)} tokens incl. EOS")
    tiny = Chunker(tok, ChunkSpec(chunk_tokens=16, overlap_tokens=4))
    chunks = timed("the same, 16/4", lambda: tiny.split(Document(mixed_text)))
    print(f"  -> {len(chunks)} chunks, max {max(c.metadata['tokens'] for c in chunks)} tokens incl. EOS")

    one_line = "".join(rng.choices(string.ascii_letters + string.digits, k=300_000))
    chunks = timed("300,000-char line, no separators, 512/64", lambda: chunker.split(Document(one_line)))
    print(f"  -> {len(chunks)} chunks, max {max(c.metadata['tokens'] for c in chunks)} tokens incl. EOS")

    zh_text = "".join(t.replace("\n", "") for t in zh)
    zh_text = (zh_text * 2).encode()[:1_000_000].decode(errors="ignore")  # 1 MB of UTF-8
    chunks = timed(
        f"Chinese, {len(zh_text.encode()) / 1e6:.1f} MB, no newlines, 512/64", lambda: chunker.split(Document(zh_text))
    )
    print(f"  -> {len(chunks)} chunks, max {max(c.metadata['tokens'] for c in chunks)} tokens incl. EOS")

    big = Chunker(tok, ChunkSpec(chunk_tokens=32761, overlap_tokens=64))
    text_100k = mixed_text[: len(mixed_text) // 2]
    chunks = timed(f"mixed, {tok.count(text_100k)} tokens, chunk_tokens=32761", lambda: big.split(Document(text_100k)))
    print(f"  -> {len(chunks)} chunks, max {max(c.metadata['tokens'] for c in chunks)} tokens incl. EOS")

    docs = [Document(t) for t in zh + en]
    chunks = timed(f"{len(docs)} corpus documents one by one, 512/64", lambda: list(chunker.split_many(docs)))
    print(f"  -> {len(chunks)} chunks")


def main() -> None:
    zh, en = corpus("cmrc2018"), corpus("scifact")
    bench_engines(zh + en)
    bench_chunker(zh, en)


if __name__ == "__main__":
    main()
