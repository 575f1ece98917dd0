"""Retrieval metrics with the conventions of trec_eval / pytrec_eval (which BEIR reports): nDCG with linear graded
gains and the ideal ranking over all judged documents, recall over all relevant documents, MRR of the first hit.

Two mistakes LlamaIndex made (#17070, PR #22683) are avoided here: a document retrieved twice counts once (ranked ids
are de-duplicated, first occurrence kept), and the ideal DCG uses only the best ``min(k, #relevant)`` grades.

>>> evaluate_run({"q1": ["d3", "d1"]}, {"q1": {"d1": 1}}, ks=(10,))["mrr@10"]
0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["METRIC_KEYS", "evaluate_run", "mrr_at_k", "ndcg_at_k", "recall_at_k"]

#: The figures every report shows, in this order.
METRIC_KEYS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def _top_k(ranked: Sequence[str], k: int) -> list[str]:
    """The first ``k`` distinct ids of ``ranked``, in order."""
    return list(dict.fromkeys(ranked))[:k]


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Normalised DCG of the top ``k``: gain = the judged grade, discount = log2(rank + 1). 0.0 when nothing is
    relevant.

    >>> round(ndcg_at_k(["a", "b"], {"b": 1}, k=10), 4)
    0.6309
    """
    dcg = sum(max(relevant.get(doc, 0), 0) / math.log2(rank + 2) for rank, doc in enumerate(_top_k(ranked, k)))
    ideal = sorted((grade for grade in relevant.values() if grade > 0), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """The share of relevant documents (grade > 0) found in the top ``k``; 0.0 when nothing is relevant.

    >>> recall_at_k(["a", "b", "c"], {"a": 1, "z": 2}, k=2)
    0.5
    """
    positives = {doc for doc, grade in relevant.items() if grade > 0}
    if not positives:
        return 0.0
    return len(positives.intersection(_top_k(ranked, k))) / len(positives)


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant document in the top ``k``, 0.0 if there is none.

    >>> mrr_at_k(["a", "a", "b"], {"b": 1}, k=10)
    0.5
    """
    for rank, doc in enumerate(_top_k(ranked, k), start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def evaluate_run(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], ks: Sequence[int] = (10, 100)
) -> dict[str, float]:
    """Mean ``ndcg@k``, ``recall@k`` and ``mrr@k`` for each ``k`` in ``ks``, over the judged queries, plus
    ``queries``: how many were averaged.

    ``run`` maps a query id to its ranked document ids. Every query of ``qrels`` with at least one relevant
    document is averaged; a query missing from ``run`` (or with no results) scores 0, so a retriever that
    drops queries cannot look better. Queries judged with no relevant document are left out (no metric is
    defined for them), as are run queries that are not judged.

    >>> evaluate_run({"q1": ["d1"]}, {"q1": {"d1": 1}, "q2": {"d2": 1}}, ks=(10,))
    {'ndcg@10': 0.5, 'recall@10': 0.5, 'mrr@10': 0.5, 'queries': 2.0}
    """
    metrics = {"ndcg": ndcg_at_k, "recall": recall_at_k, "mrr": mrr_at_k}
    totals = {f"{name}@{k}": 0.0 for k in ks for name in metrics}
    judged = [qid for qid, relevant in qrels.items() if any(grade > 0 for grade in relevant.values())]
    for qid in judged:
        ranked = run.get(qid, ())
        for k in ks:
            for name, metric in metrics.items():
                totals[f"{name}@{k}"] += metric(ranked, qrels[qid], k)
    n = len(judged)
    return {**{key: (total / n if n else 0.0) for key, total in totals.items()}, "queries": float(n)}
