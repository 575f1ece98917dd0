"""Fusion: convex (the default: normalised scores, coverage, script agreement) and reciprocal rank (the formula,
weights, de-duplication and a deterministic order for ties)."""

from __future__ import annotations

import itertools
import random

import pytest

from pipelines.retrieve.fusion import (
    COVERAGE_POWER,
    convex_fusion,
    han_share,
    reciprocal_rank_fusion,
    script_agreement,
)
from pipelines.retrieve.lexical import LexicalHit
from tests.conftest import SAMPLES


def ids(fused: list[tuple[str, float]]) -> list[str]:
    return [doc for doc, _ in fused]


def test_scores_follow_the_formula() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "d"]], k=60))
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62, "c": 1 / 63 + 1 / 61, "d": 1 / 62})


def test_an_id_in_both_rankings_beats_one_in_a_single_ranking() -> None:
    assert ids(reciprocal_rank_fusion([["a", "b", "c"], ["c", "d"]])) == ["c", "a", "b", "d"]


def test_weights_scale_each_ranking() -> None:
    dense, lexical = ["d1", "d2"], ["l1", "l2"]
    assert ids(reciprocal_rank_fusion([dense, lexical], weights=[1.0, 2.0])) == ["l1", "l2", "d1", "d2"]
    fused = dict(reciprocal_rank_fusion([dense, lexical], weights=[0.5, 2.0], k=10))
    assert fused["d1"] == pytest.approx(0.5 / 11) and fused["l2"] == pytest.approx(2.0 / 12)


def test_k_controls_how_much_the_top_ranks_dominate() -> None:
    rankings = [["a", "b", "c", "d"], ["d", "e", "f", "a"]]
    # "a" (ranks 1 and 4) against "d" (ranks 4 and 1): equal; "b" at rank 2 once loses to both.
    assert ids(reciprocal_rank_fusion(rankings, k=0))[:2] == ["a", "d"]
    small_k = dict(reciprocal_rank_fusion(rankings, k=0))
    assert small_k["a"] == pytest.approx(1 + 1 / 4)


def test_an_id_repeated_within_a_ranking_counts_once_at_its_best_rank() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b", "a", "a"]], k=60))
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62})


def test_ties_break_by_best_rank_then_by_the_earlier_ranking() -> None:
    # x and y both have ranks {1, 2}: x reached rank 1 in ranking 0, y in ranking 1.
    assert ids(reciprocal_rank_fusion([["x", "y"], ["y", "x"]])) == ["x", "y"]
    assert ids(reciprocal_rank_fusion([["y", "x"], ["x", "y"]])) == ["y", "x"]
    # A higher score always wins over the tie-break: q (ranks 2, 2) beats p and r (rank 1 once).
    assert ids(reciprocal_rank_fusion([["p", "q"], ["r", "q"]])) == ["q", "p", "r"]


def test_equal_rank_multisets_give_exactly_equal_scores() -> None:
    # Summed in a different order, 1/61 + 1/62 + 1/63 can differ in the last bit; the fused scores may not.
    rankings = [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"]]  # a and c both at ranks 1, 2 and 3
    naive_sums = set()
    for k in range(1, 100):
        for permutation in itertools.permutations(rankings):
            fused = dict(reciprocal_rank_fusion(list(permutation), k=k))
            assert fused["a"] == fused["c"]
        naive_sums.add(1 / (k + 1) + 1 / (k + 2) + 1 / (k + 3) == 1 / (k + 3) + 1 / (k + 1) + 1 / (k + 2))
    assert False in naive_sums  # the hazard is real for some k


def test_the_order_is_reproducible_for_any_input() -> None:
    rng = random.Random(5)
    pool = [f"d{i}" for i in range(30)]
    for _ in range(50):
        rankings = [rng.sample(pool, rng.randint(0, 20)) for _ in range(rng.randint(1, 4))]
        first = reciprocal_rank_fusion(rankings)
        assert first == reciprocal_rank_fusion([list(r) for r in rankings])
        assert len(first) == len(set(itertools.chain.from_iterable(rankings)))
        scores = [score for _, score in first]
        assert scores == sorted(scores, reverse=True)


def test_empty_inputs() -> None:
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []
    assert ids(reciprocal_rank_fusion([[], ["a"]])) == ["a"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="1 weights for 2 rankings"):
        reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0])
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank_fusion([["a"]], k=-1)


# -- convex fusion ---------------------------------------------------------------------------------------------


def test_convex_scores_follow_the_formula_and_lie_in_0_1() -> None:
    dense = {"a": 0.9, "b": 0.8, "c": 0.7}
    lexical = {"b": LexicalHit("b", 4.0, coverage=0.3), "d": LexicalHit("d", 8.0, coverage=1.0)}
    fused = dict(convex_fusion(dense, lexical, alpha=0.45, tau=0.6, dense_floor=0.6))
    assert fused["a"] == pytest.approx(0.45 * 1.0)
    assert fused["b"] == pytest.approx(0.45 * (0.2 / 0.3) + 0.55 * 0.5 * 0.5**COVERAGE_POWER)
    assert fused["c"] == pytest.approx(0.45 * (0.1 / 0.3))
    assert fused["d"] == pytest.approx(0.55)  # BM25's best, no cosine given: the least similar on the dense side
    assert all(0.0 <= score <= 1.0 for score in fused.values())


def test_a_stray_match_on_a_common_word_does_not_overturn_a_clear_dense_winner() -> None:
    dense = {"answer": 0.90, "stray": 0.87, "far": 0.70}
    lexical = {"stray": LexicalHit("stray", 3.0, coverage=0.1)}  # the only BM25 hit, on "to"
    assert convex_fusion(dense, lexical, alpha=0.45, tau=0.6)[0][0] == "answer"
    # The same hit holding the query's rare words wins.
    lexical = {"stray": LexicalHit("stray", 3.0, coverage=0.8)}
    assert convex_fusion(dense, lexical, alpha=0.45, tau=0.6)[0][0] == "stray"


def test_script_agreement_scales_the_whole_bm25_side_even_at_full_coverage() -> None:
    """An English query's command name quoted in a Chinese passage covers the query fully: the discount must apply
    after the coverage's cap, or it never bites (the first round's mistake: en->zh trailed dense)."""
    dense = {"en": 0.80, "zh": 0.75}
    lexical = {"zh": LexicalHit("zh", 5.0, coverage=1.0)}
    agreement = {"zh": 0.2}
    fused = dict(convex_fusion(dense, lexical, alpha=0.45, tau=0.6, dense_floor=0.7, agreement=agreement))
    assert fused["zh"] == pytest.approx(0.45 * 0.5 + 0.55 * 0.2)
    assert max(fused, key=fused.__getitem__) == "en"


def test_chinese_text_quoting_code_reads_as_chinese() -> None:
    """Han characters against Latin *words*: the demo's binary_search.md quotes low, high and O(log n), and a
    Chinese query keeps its full BM25 side on it (by letters it read as half English: 折半查找 scored 0.75)."""
    passage = (SAMPLES / "binary_search.md").read_text(encoding="utf-8")
    assert script_agreement("折半查找", passage) == 1.0
    assert han_share("使用 UUID 访问分区") == pytest.approx(6 / 7)
    assert script_agreement("Accessing partition using UUID", "使用 UUID 访问分区") < 0.1


def test_the_search_reads_agreements_lazily_and_ranks_exactly_as_with_all_of_them() -> None:
    """Search._fuse_with_agreement reads texts for the passages that can reach the top k only: the same top k
    (order and scores) as convex fusion given every passage's agreement."""
    from types import SimpleNamespace

    from pipelines.retrieve.search import Search
    from pipelines.settings import Settings

    rng = random.Random(15)
    settings = Settings()
    for _ in range(200):
        ids = [f"c{n}" for n in range(rng.randint(1, 80))]
        dense = {cid: rng.uniform(0.5, 0.9) for cid in ids if rng.random() < 0.8} or {ids[0]: 0.7}
        lexical = {
            cid: LexicalHit(cid, rng.uniform(0.1, 9.0), coverage=rng.random()) for cid in ids if rng.random() < 0.6
        }
        every = {cid: rng.choice([1.0, rng.random(), 0.0]) for cid in lexical}
        asked: list[str] = []

        def agreements(
            query: str, wanted: list[str], every: dict[str, float] = every, asked: list[str] = asked
        ) -> dict[str, float]:
            asked.extend(wanted)
            return {cid: every[cid] for cid in wanted}

        k = rng.choice([1, 5, 10])
        stub = SimpleNamespace(_script_agreement=agreements)  # all the method uses of its Search
        lazy = Search._fuse_with_agreement(stub, "q", k, dense, lexical, None, settings)  # type: ignore[arg-type]
        full = convex_fusion(dense, lexical, alpha=settings.fusion_alpha, tau=settings.coverage_tau, agreement=every)
        assert lazy[:k] == full[:k]
        assert len(set(asked)) == len(asked) <= len(lexical)
