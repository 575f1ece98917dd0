"""BM25 beside the vector store: a mixed Chinese/English analyzer and a bm25s index over chunk ids.

>>> index = BM25Index.build(["a", "b"], ["向量数据库的检索", "Running BM25 searches"], fingerprint(["a", "b"]))
>>> index.search("bm25 search", k=5)[0].id
'b'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from pipelines.retrieve.segment import cut

if TYPE_CHECKING:
    import bm25s
    import Stemmer

__all__ = ["BM25Index", "LexicalHit", "analyze", "fingerprint"]

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# A run of Han characters goes to jieba; any other run of letters/digits is one word. Han is excluded from the
# word class so that kana or Latin glued to Han ("2018年", "Qwen模型") still splits at the script boundary.
_TOKEN = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>[^\W_{_CJK}]+)")

_META = "meta.json"


class LexicalHit(NamedTuple):
    """One chunk's lexical match: its BM25 score, and ``coverage``, the share of the query's term weight (IDF) that
    the chunk contains: 1.0 when it holds every query term, near 0 when it matches only common words."""

    id: str
    score: float
    coverage: float


_FORMAT = 1


@cache
def _stemmer() -> Stemmer.Stemmer:
    import Stemmer

    return Stemmer.Stemmer("english")


def analyze(text: str, *, query: bool = False) -> list[str]:
    """Split ``text`` into BM25 terms: runs of Han characters segmented by jieba, other words lower-cased and
    Snowball-stemmed (English), numbers kept, punctuation dropped.

    jieba in search mode, so that a query that uses a part of a long word still matches (中华人民共和国 -> 中华, 人民,
    共和国, ...); HMM off: its guesses at unknown words split the same name differently in a short question and in a
    long passage, and turning it off raised nDCG@10 on CMRC2018 trial from 0.979 to 0.984 (benchmarks/bench_bm25.py).
    ``query=True`` for a query: the same terms, without loading jieba's whole dictionary
    (:mod:`pipelines.retrieve.segment`).

    >>> analyze("Qwen3模型的检索效果 in 2025, running!")
    ['qwen3', '模型', '的', '检索', '效果', 'in', '2025', 'run']
    """
    # NFKC folds full-width forms (ＢＭ２５, １２３) to ASCII so they match their half-width spelling.
    text = unicodedata.normalize("NFKC", text)
    terms: list[str] = []
    words: list[str] = []
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "word":
            words.append(match.group().lower())
            continue
        terms.extend(_stem(words))
        words = []
        terms.extend(cut(match.group(), query=query))
    terms.extend(_stem(words))
    return terms


def _stem(words: list[str]) -> list[str]:
    """Stemming raised nDCG@10 on SciFact train from 0.668 to 0.697; an English stopword list lowered it (0.693)."""
    return _stemmer().stemWords(words) if words else []


def fingerprint(ids: Iterable[str]) -> str:
    """An order-independent digest of a set of chunk ids (sha256 of the sorted, de-duplicated ids).

    >>> fingerprint(["b", "a", "a"]) == fingerprint(["a", "b"])
    True
    """
    digest = hashlib.sha256()
    for chunk_id in sorted(set(ids)):
        # Length-prefixed so that no two different id sets can produce the same byte stream.
        encoded = chunk_id.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


class BM25Index:
    """A bm25s index over chunk ids, saved to and loaded from a directory; rebuild it when its fingerprint differs
    from the store's.

    >>> ids, texts = ["c1", "c2"], ["Chroma stores vectors", "BM25 ranks by term overlap"]
    >>> index = BM25Index.load(Path("/tmp/qwen-rag-bm25"))
    >>> if index is None or index.fingerprint != fingerprint(ids):
    ...     index = BM25Index.build(ids, texts, fingerprint(ids))
    ...     index.save(Path("/tmp/qwen-rag-bm25"))
    >>> index.search("ranking terms", k=3)[0].id
    'c2'
    """

    def __init__(self, ids: list[str], model: bm25s.BM25 | None, fingerprint: str) -> None:
        """Use :meth:`build` or :meth:`load`; ``model`` is None for an empty corpus."""
        self.ids = ids
        self.fingerprint = fingerprint
        self._model = model
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], fingerprint: str) -> BM25Index:
        """Index ``texts`` (analyzed with :func:`analyze`) under their chunk ``ids``."""
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        if len(set(ids)) != len(ids):
            raise ValueError("chunk ids must be unique")
        if not ids:
            return cls([], None, fingerprint)
        import bm25s

        model = bm25s.BM25()
        # create_empty_token (the default) lets a chunk with no terms (only punctuation) be indexed.
        model.index([analyze(text) for text in texts], show_progress=False)
        return cls(list(ids), model, fingerprint)

    def save(self, directory: Path) -> None:
        """Write the index to ``directory`` atomically: a reader sees the old index, the new one, or (for a moment,
        or after a crash between the two renames) none, in which case :meth:`load` returns None and the caller
        rebuilds. Never a mix of both."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
        try:
            if self._model is not None:
                self._model.save(staging, show_progress=False)
            meta = {"format": _FORMAT, "fingerprint": self.fingerprint, "ids": self.ids}
            (staging / _META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            # os.rename cannot replace a non-empty directory: move the old one aside first (under a name as unique
            # as the staging directory's, so concurrent writers do not collide).
            retired = staging.with_name(staging.name + ".old")
            if directory.exists():
                os.rename(directory, retired)
            os.rename(staging, directory)
            shutil.rmtree(retired, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> BM25Index | None:
        """The index saved in ``directory``, or None if it is missing, unreadable, or of another format."""
        directory = Path(directory)
        try:
            meta: dict[str, Any] = json.loads((directory / _META).read_text(encoding="utf-8"))
            if meta.get("format") != _FORMAT:
                return None
            ids = [str(i) for i in meta["ids"]]
            if not ids:
                return cls([], None, str(meta["fingerprint"]))
            import bm25s

            # allow_pickle stays False (the default): a damaged or planted file is refused, never unpickled.
            model = bm25s.BM25.load(directory, show_progress=False, verbosity=0)
            if model.scores["num_docs"] != len(ids):
                return None
            return cls(ids, model, str(meta["fingerprint"]))
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            return None

    def search(self, query: str, k: int, *, only: Collection[str] | None = None) -> list[LexicalHit]:
        """The ``k`` best chunks for ``query``, best first; ties go to the chunk indexed first. Chunks that share no
        term with the query are left out, so fewer than ``k`` may come back. ``only``: score just these chunk ids
        (an exact filter: a chunk outside it is never returned, however well it matches).

        ``coverage`` is read from the postings: the IDF of each distinct query term whose posting list holds the
        chunk, over the IDF of all distinct query terms, a term the index has never seen counting as unmatched at
        the largest IDF (the rarest possible term: a query about a word the collection lacks is not covered)."""
        if self._model is None or k <= 0:
            return []
        terms = analyze(query, query=True)
        term_ids = self._model.get_tokens_ids(terms)
        if not term_ids:
            return []
        scores = self._model.get_scores(term_ids)  # a repeated query term counts as often as it is repeated
        if only is not None:
            allowed = np.zeros(len(self.ids), dtype=bool)
            allowed[[self._position[cid] for cid in only if cid in self._position]] = True
            scores = np.where(allowed, scores, 0)
        matched = np.flatnonzero(scores > 0)  # ascending positions
        if len(matched) > k:
            kth = np.partition(scores[matched], len(matched) - k)[len(matched) - k]  # the k-th best score
            above = matched[scores[matched] > kth]
            # Among chunks tied at the cut, keep the ones indexed first, as the sort below would.
            matched = np.concatenate([above, matched[scores[matched] == kth][: k - len(above)]])
        # lexsort's last key is the primary one: score descending, then position ascending.
        order = matched[np.lexsort((matched, -scores[matched]))]
        distinct = list(dict.fromkeys(term_ids))
        unknown = len(set(terms)) - len(distinct)
        coverage = self._coverage(distinct, unknown=unknown, positions=order)
        return [LexicalHit(self.ids[i], float(scores[i]), float(c)) for i, c in zip(order, coverage, strict=True)]

    @property
    def _position(self) -> dict[str, int]:
        if self._positions is None:
            self._positions = {cid: i for i, cid in enumerate(self.ids)}
        return self._positions

    def _coverage(self, term_ids: list[int], unknown: int, positions: np.ndarray) -> np.ndarray:
        """Coverage of the chunks at ``positions`` by the known ``term_ids`` plus ``unknown`` unseen terms."""
        assert self._model is not None
        index = self._model.scores
        indptr, indices, total_docs = index["indptr"], index["indices"], int(index["num_docs"])
        # Lucene's IDF, the one bm25s scores with: ln(1 + (N - df + 0.5) / (df + 0.5)).
        df = (indptr[np.asarray(term_ids) + 1] - indptr[np.asarray(term_ids)]).astype(np.float64)
        idf = np.log1p((total_docs - df + 0.5) / (df + 0.5))
        rarest = np.log1p((total_docs - 0.5) / 1.5)
        covered = np.zeros(len(positions), dtype=np.float64)
        for term, weight in zip(term_ids, idf, strict=True):
            postings = indices[indptr[term] : indptr[term + 1]]
            covered += weight * np.isin(positions, postings, assume_unique=False)
        return covered / (idf.sum() + unknown * rarest)
