"""Fusing the dense and the lexical ranking of one query: by score (the default) or by rank (RRF).

Score fusion (``convex``): a convex combination of the two normalised scores, after Bruch, Gai & Ingber ("An
Analysis of Fusion Functions for Hybrid Retrieval", ACM TOIS 2023: it beats RRF in and out of domain) and the
engines that moved to it (Weaviate's relativeScoreFusion, Elasticsearch's linear retriever, OpenSearch's
normalization processor), with RAGFlow's idea of weighing the lexical side by how much of the query it covers::

    score = alpha * dense' + (1 - alpha) * bm25' * min(1, coverage / tau) ** 1.25 * agreement

- ``dense'``: the cosine similarity min-max scaled between the best and the :data:`DENSE_SCALE`-th dense candidate
  (1 = the best, 0 = that one and below): a fixed depth, so that a score does not depend on how many passages a call
  asks for, and deep enough that the dense side separates its top passages no more than it should (on SciFact train,
  scaling over the top 200 rather than the top 50 gained 0.004 nDCG@10);
- ``bm25'``: the BM25 score over the best BM25 score among the candidates (0 when no query term matches);
- ``coverage``: the share of the query's IDF mass the passage contains (:class:`LexicalHit`), so a passage that
  matches only 是 or "to" (coverage 0.05-0.13 on the tuning sets) cannot outweigh a clear dense winner, while one
  that holds the query's rare words (coverage 0.4-1.0) counts fully;
- ``agreement``: how far the passage is written in the query's script (:func:`script_agreement`): an English query
  matches a Chinese passage only on the English words it quotes (command names, paths), evidence that is real but
  thin, so the lexical side counts in proportion. On the Debian Reference en->zh dev split the fused nDCG@10 went
  from 0.726 without it to 0.801 (dense alone: 0.808); CMRC2018 and SciFact queries share their passages' script,
  and zh->en stayed at dense's figure (docs/benchmarks.md, "Hybrid fusion").

The weights (alpha 0.45, tau 0.6, the powers) were chosen jointly on SciFact train, CMRC2018 trial and the Debian
Reference dev splits, keeping the tutorial's own examples right (``python -m benchmarks.tune_fusion``).

Why not reciprocal rank fusion as the default: it keeps only ranks. On a small collection dense ranks 1 and 9 differ
by 1/61 - 1/69 = 0.002 while any BM25 hit adds 1/61 = 0.016, so one stray match overturns a clear dense winner
(the tutorial's own demo did: docs/benchmarks.md, "Hybrid fusion"). RRF stays available (``--fusion rrf``).

The fused score lies in [0, 1]: 1 for a passage that is the best of the candidates on both sides (and covers the
query), ``alpha`` for the best dense passage that shares no rare word with the query. It is relative to the
candidates of this query, like Weaviate's: a threshold keeps the passages near the best one, it does not say that
the best one is relevant.

>>> dense = {"a": 0.90, "b": 0.80, "c": 0.70}
>>> lexical = {"b": LexicalHit("b", 7.0, coverage=1.0), "c": LexicalHit("c", 7.0, coverage=0.1)}
>>> [(cid, round(score, 3)) for cid, score in convex_fusion(dense, lexical, alpha=0.5, tau=0.5)]
[('b', 0.75), ('a', 0.5), ('c', 0.067)]
>>> reciprocal_rank_fusion([["a", "b", "c"], ["b", "a", "d"]])[:2]
[('a', 0.03252247488101534), ('b', 0.03252247488101534)]
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from pipelines.retrieve.lexical import LexicalHit

__all__ = ["DENSE_SCALE", "convex_fusion", "han_share", "reciprocal_rank_fusion", "script_agreement", "share_agreement"]

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
#: Differences in Han share up to this are the same script (Chinese text quotes some Latin, English some Han).
SCRIPT_MARGIN = 0.1
#: How sharply a script difference discounts the lexical side (tuned with the margin on the dev/trial splits).
SCRIPT_POWER = 2
#: How sharply a low coverage discounts the lexical side: above 1, so that a passage matching one common word stays
#: below a clear dense winner (the README's "how to implement binary search": at 1 temperature.py comes first on
#: its "to"); 1.25 rather than 1.5 gives SciFact train +0.005 nDCG@10.
COVERAGE_POWER = 1.25
#: The dense candidate whose cosine scales to 0 (see the module's docstring); the dense side fetches at least this many.
DENSE_SCALE = 200


def han_share(text: str) -> float | None:
    """The share of Han characters among the Han characters and Latin words of ``text``; None when it has neither.

    Latin *words*, not letters: a Han character carries about as much as a word, so Chinese technical text that
    quotes ``low``, ``high`` and ``O(log n)`` still reads as Chinese (counting letters made such a passage look half
    English and cost CMRC2018 trial 0.004 and Debian Reference en->zh dev 0.012 nDCG@10).

    >>> han_share("使用 UUID 访问分区"), han_share("Accessing partition using UUID"), han_share("2024")
    (0.8571428571428571, 0.0, None)
    """
    han, latin = len(_HAN.findall(text)), len(_LATIN_WORD.findall(text))
    return han / (han + latin) if han + latin else None


def script_agreement(query: str, passage: str) -> float:
    """1.0 when query and passage are written in the same script (Han or Latin), falling to 0.0 for an English query
    over a purely Chinese passage and back; 1.0 when either has no letters to tell.

    >>> script_agreement("什么是人工智能？", "机器学习是一种让计算机自动学习的方法。")
    1.0
    >>> round(script_agreement("Accessing partition using UUID", "使用 UUID 访问分区"), 3)
    0.025
    """
    return share_agreement(han_share(query), han_share(passage))


def share_agreement(asked: float | None, written: float | None) -> float:
    """:func:`script_agreement` from the two texts' :func:`han_share` (None: no letters to tell)."""
    if asked is None or written is None:
        return 1.0
    apart = max(0.0, abs(asked - written) - SCRIPT_MARGIN) / (1 - SCRIPT_MARGIN)
    return float((1 - apart) ** SCRIPT_POWER)


def convex_fusion(
    dense: Mapping[str, float],
    lexical: Mapping[str, LexicalHit],
    *,
    alpha: float,
    tau: float,
    dense_floor: float | None = None,
    agreement: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Fuse ``dense`` (chunk id -> cosine similarity) and ``lexical`` (chunk id -> its BM25 hit) into
    ``(id, score)`` pairs, best first, over every id in either.

    Pass every candidate's cosine in ``dense`` (those found only by BM25 too, computed exactly), and every
    candidate's BM25 hit in ``lexical`` where it has one: an id missing from ``dense`` counts as the least similar,
    one missing from ``lexical`` as matching no query term. ``dense_floor`` is the cosine that scales to 0 (default:
    the lowest in ``dense``), so that passages found only by BM25 do not stretch the dense scale. ``agreement``
    (id -> 0..1, default 1) scales a passage's lexical part: :func:`script_agreement`. Ties keep dense order, then
    lexical order.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    ids = list(dict.fromkeys([*sorted(dense, key=lambda cid: -dense[cid]), *lexical]))
    if not ids:
        return []
    top = max(dense.values(), default=0.0)
    floor = min(dense.values(), default=0.0) if dense_floor is None else dense_floor
    span = top - floor
    best_bm25 = max((hit.score for hit in lexical.values()), default=0.0)

    def dense_part(cid: str) -> float:
        if cid not in dense:
            return 0.0
        # One candidate, or all equally similar: each is the best there is.
        return 1.0 if span <= 0 else min(1.0, max(0.0, (dense[cid] - floor) / span))

    def lexical_part(cid: str) -> float:
        hit = lexical.get(cid)
        if hit is None or best_bm25 <= 0:
            return 0.0
        agrees = 1.0 if agreement is None else agreement.get(cid, 1.0)
        return (hit.score / best_bm25) * min(1.0, hit.coverage / tau) ** COVERAGE_POWER * agrees

    order = {cid: position for position, cid in enumerate(ids)}
    fused = [(cid, alpha * dense_part(cid) + (1 - alpha) * lexical_part(cid)) for cid in ids]
    return sorted(fused, key=lambda item: (-item[1], order[item[0]]))


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: int = 60
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): fuse ``rankings`` (ids, best first) into one
    list of ``(id, score)``, best first, where ``score = sum_i weights[i] / (k + rank_i)`` over the rankings that
    hold the id (rank 1-based).

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
