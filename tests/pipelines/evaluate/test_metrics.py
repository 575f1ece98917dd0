"""Retrieval metrics: hand-computed cases, LlamaIndex's pitfalls, and agreement with pytrec_eval (trec_eval) on real
BM25 runs and on random graded judgments."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import pytrec_eval

from pipelines.evaluate.beir import BeirDataset, load_beir
from pipelines.evaluate.metrics import evaluate_run, mrr_at_k, ndcg_at_k, recall_at_k
from pipelines.retrieve.lexical import LexicalIndex


def log2(rank: int) -> float:
    return math.log2(rank + 1)


# -- hand-computed ------------------------------------------------------------------------------------------------


def test_ndcg_uses_graded_gains_and_the_ideal_ranking() -> None:
    relevant = {"a": 3, "b": 1, "c": 0}
    ranked = ["x", "b", "a"]
    dcg = 1 / log2(2) + 3 / log2(3)
    idcg = 3 / log2(1) + 1 / log2(2)
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "b"], relevant, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a"], relevant, 10) < 1.0


def test_ndcg_cuts_at_k() -> None:
    relevant = {"a": 1}
    assert ndcg_at_k(["x", "y", "a"], relevant, 2) == 0.0
    assert ndcg_at_k(["x", "y", "a"], relevant, 3) == pytest.approx(1 / log2(3))


def test_ideal_dcg_counts_only_k_relevant_documents() -> None:
    """LlamaIndex PR #22683: an IDCG summed over every relevant document made a perfect top-k score below 1."""
    relevant = {f"d{i}": 1 for i in range(20)}
    assert ndcg_at_k([f"d{i}" for i in range(10)], relevant, 10) == pytest.approx(1.0)


def test_a_document_retrieved_twice_counts_once() -> None:
    """LlamaIndex #17070: duplicates in the ranking inflated DCG (and recall) past the ideal."""
    relevant = {"a": 1}
    assert ndcg_at_k(["a", "a", "a"], relevant, 10) == pytest.approx(1.0)
    assert recall_at_k(["a", "a"], {"a": 1, "b": 1}, 10) == 0.5
    # De-duplication happens before the cut: the second distinct id is at rank 2, not 3.
    assert ndcg_at_k(["x", "x", "a"], relevant, 2) == pytest.approx(1 / log2(2))
    assert mrr_at_k(["x", "x", "a"], relevant, 2) == 0.5


def test_recall_and_mrr() -> None:
    relevant = {"a": 1, "b": 2, "c": 0}
    assert recall_at_k(["a", "c", "x", "b"], relevant, 3) == 0.5
    assert recall_at_k(["a", "c", "x", "b"], relevant, 4) == 1.0
    assert mrr_at_k(["c", "x", "b"], relevant, 10) == pytest.approx(1 / 3)  # grade 0 is not a hit
    assert mrr_at_k(["c", "x", "b"], relevant, 2) == 0.0


def test_nothing_relevant_or_nothing_retrieved_is_zero() -> None:
    for metric in (ndcg_at_k, recall_at_k, mrr_at_k):
        assert metric([], {"a": 1}, 10) == 0.0
        assert metric(["a"], {}, 10) == 0.0
        assert metric(["a"], {"a": 0}, 10) == 0.0


def test_evaluate_run_averages_over_judged_queries() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {"q1": ["a"], "q4": ["z"]}  # q2 has no results; q4 is not judged; q3 has nothing relevant
    scores = evaluate_run(run, qrels)
    assert set(scores) == {"ndcg@10", "recall@10", "mrr@10", "ndcg@100", "recall@100", "mrr@100", "queries"}
    assert scores["queries"] == 2
    assert scores["ndcg@10"] == scores["recall@100"] == scores["mrr@10"] == 0.5


def test_evaluate_run_with_no_judged_queries() -> None:
    assert evaluate_run({"q": ["a"]}, {}, ks=(5,)) == {"ndcg@5": 0.0, "recall@5": 0.0, "mrr@5": 0.0, "queries": 0.0}


# -- against pytrec_eval ------------------------------------------------------------------------------------------


def trec_eval(run: dict[str, list[str]], qrels: dict[str, dict[str, int]], depth: int) -> dict[str, dict[str, float]]:
    """pytrec_eval on ``run`` cut to ``depth`` (trec_eval's recip_rank has no cut-off of its own). Scores fall with
    rank so trec_eval, which sorts by score, sees our order."""
    trec_run = {
        qid: {doc: float(depth - rank) for rank, doc in enumerate(ranked[:depth])} for qid, ranked in run.items()
    }
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10,100", "recip_rank"})
    return evaluator.evaluate(trec_run)


def assert_agrees(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> None:
    at_100, at_10 = trec_eval(run, qrels, 100), trec_eval(run, qrels, 10)
    assert set(at_100) == set(qrels)  # every judged query has results, so both average over the same queries
    for qid, relevant in qrels.items():
        ranked = run[qid]
        assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(at_100[qid]["ndcg_cut_10"], abs=1e-6)
        assert recall_at_k(ranked, relevant, 10) == pytest.approx(at_100[qid]["recall_10"], abs=1e-6)
        assert recall_at_k(ranked, relevant, 100) == pytest.approx(at_100[qid]["recall_100"], abs=1e-6)
        assert mrr_at_k(ranked, relevant, 10) == pytest.approx(at_10[qid]["recip_rank"], abs=1e-6)
    ours = evaluate_run(run, qrels)
    theirs = {
        "ndcg@10": "ndcg_cut_10",
        "recall@10": "recall_10",
        "recall@100": "recall_100",
    }
    for key, measure in theirs.items():
        assert ours[key] == pytest.approx(sum(q[measure] for q in at_100.values()) / len(qrels), abs=1e-9)
    assert ours["mrr@10"] == pytest.approx(sum(q["recip_rank"] for q in at_10.values()) / len(qrels), abs=1e-9)


def bm25_run(
    data: BeirDataset, queries: int, directory: Path
) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    index = LexicalIndex.build(directory, ((i, f"{d['title']} {d['text']}") for i, d in data.corpus.items()))
    judged = list(data.qrels)[:queries]
    run = {qid: [hit.id for hit in index.search(data.queries[qid], 100)] for qid in judged}
    return run, {qid: data.qrels[qid] for qid in judged}


@pytest.mark.slow
def test_agrees_with_trec_eval_on_bm25_over_cmrc2018_dev(shared: Path, tmp_path: Path) -> None:
    run, qrels = bm25_run(load_beir(shared / "eval" / "cmrc2018", "dev"), 300, tmp_path)
    # The run is not trivially perfect, so misses and late hits are exercised.
    assert 0.5 < evaluate_run(run, qrels)["mrr@10"] < 1.0
    assert_agrees(run, qrels)


@pytest.mark.slow
def test_agrees_with_trec_eval_on_bm25_over_scifact_with_several_relevant(shared: Path, tmp_path: Path) -> None:
    run, qrels = bm25_run(load_beir(shared / "eval" / "scifact", "test"), 300, tmp_path)
    assert any(len(relevant) > 1 for relevant in qrels.values())
    assert_agrees(run, qrels)


def test_agrees_with_trec_eval_on_random_graded_judgments() -> None:
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(150)]
    qrels, run = {}, {}
    for q in range(200):
        judged = rng.sample(docs, rng.randint(1, 30))
        qrels[f"q{q}"] = {doc: rng.choice([0, 1, 1, 2, 3]) for doc in judged}
        qrels[f"q{q}"][judged[0]] = rng.randint(1, 3)  # at least one relevant
        run[f"q{q}"] = rng.sample(docs, rng.randint(1, 120))
    assert_agrees(run, qrels)
