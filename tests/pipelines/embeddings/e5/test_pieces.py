"""The piece table segments exactly as the full unigram model: same ids, same offsets, on every text."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer

from pipelines.embeddings.e5.cache import PreparedModel, prepared_model
from pipelines.embeddings.e5.pieces import PIECE_IDS, PIECES, SCORES, PieceTable, piece_arrays
from pipelines.embeddings.e5.tokenizer import PASSAGE_PREFIX, QUERY_PREFIX, E5Tokenizer

EDGE_CASES = [
    "",
    "a  b\t\tc\n\nd ",
    "𠀀𠀁𠀂 three unknown in a row",
    "\ue000\U000e0001x",
    "<unk> <s> </s> <pad> <mask>",
    "Ｆｕｌｌｗｉｄｔｈ ﬁ ① ㍻ \u3000 end",
    "👨‍👩‍👧‍👦🏳️‍🌈🇨🇳👍🏽",
    "什么是人工智能？" * 40,
]


@pytest.fixture(scope="module")
def prepared() -> PreparedModel:
    return prepared_model()


@pytest.fixture(scope="module")
def full(prepared: PreparedModel) -> Tokenizer:
    return Tokenizer.from_file(str(prepared.tokenizer))


@pytest.fixture(scope="module")
def normalizer(prepared: PreparedModel) -> E5Tokenizer:
    return E5Tokenizer.load(prepared)


@pytest.mark.slow
def test_the_same_segmentation_as_the_full_model(
    prepared: PreparedModel, full: Tokenizer, normalizer: E5Tokenizer, corpus: list[str]
) -> None:
    # Queries are what goes through the table; the corpus's passages and questions are texts like any other.
    table = PieceTable.load(prepared.directory, prepared.config["unk"])
    texts = [normalizer.normalize(QUERY_PREFIX + t) for t in corpus + EDGE_CASES]
    expected = full.encode_batch(texts, add_special_tokens=False)
    differ = [t[:60] for t, e in zip(texts, expected, strict=True) if table.encode(t) != (e.ids, e.offsets)]
    assert not differ


def test_the_arrays_are_sorted_without_unk_and_keep_ids_and_scores() -> None:
    arrays = piece_arrays(["<unk>", "b", "a", "ab"], np.array([0.0, -1.0, -2.0, -3.0], dtype=np.float32), unk=0)
    assert arrays[PIECES].tolist() == ["a", "ab", "b"]
    assert arrays[PIECE_IDS].tolist() == [2, 3, 1]
    assert arrays[SCORES].tolist() == [0.0, -1.0, -2.0, -3.0]


def test_queries_never_build_the_full_model_documents_do(prepared: PreparedModel, full: Tokenizer) -> None:
    tok = E5Tokenizer.load(prepared)
    query = tok.content_ids(["什么是人工智能？" * 100], QUERY_PREFIX)
    assert tok._unigram is None
    assert query[0] == full.encode(tok.normalize(QUERY_PREFIX + "什么是人工智能？" * 100)).ids
    tok.content_ids(["机器学习是一种让计算机自动学习的方法。"], PASSAGE_PREFIX)
    assert tok._unigram is not None
    assert tok.content_ids(["什么是人工智能？" * 100], QUERY_PREFIX) == query  # now through the full model
