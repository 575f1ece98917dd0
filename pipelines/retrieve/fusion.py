"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): merge rankings from retrievers whose scores are
not comparable (BM25 and cosine) using only the ranks.

>>> reciprocal_rank_fusion([["a", "b", "c"], ["b", "a", "d"]])[:2]
[('a', 0.03252247488101534), ('b', 0.03252247488101534)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["reciprocal_rank_fusion"]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: int = 60
) -> list[tuple[str, float]]:
    """Fuse ``rankings`` (ids, best first) into one list of ``(id, score)``, best first, where
    ``score = sum_i weights[i] / (k + rank_i)`` over the rankings that hold the id (rank 1-based).

    An id repeated within one ranking counts once, at its best rank. Equal scores are ordered by the best rank
    the id reached in any ranking, then by the first ranking that reached it: a deterministic order that favours
    the earlier (by convention, primary) ranking.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    terms: dict[str, list[float]] = {}
    best: dict[str, tuple[int, int]] = {}  # id -> (best rank, index of the first ranking giving it that rank)
    for index, (ranking, weight) in enumerate(zip(rankings, weights, strict=True)):
        for rank, doc_id in enumerate(dict.fromkeys(ranking), start=1):
            terms.setdefault(doc_id, []).append(weight / (k + rank))
            if doc_id not in best or rank < best[doc_id][0]:
                best[doc_id] = (rank, index)
    # fsum is exactly rounded, so the same ranks in another order give the same float and a true tie stays a tie.
    fused = [(doc_id, math.fsum(parts)) for doc_id, parts in terms.items()]
    return sorted(fused, key=lambda item: (-item[1], best[item[0]]))
