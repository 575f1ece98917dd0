"""BM25 beside the vector store: a mixed Chinese/English analyzer and an incremental tantivy index over chunk ids.

Why tantivy (the Lucene-style engine): adding or deleting a file's chunks costs those chunks (segments, deletes,
background merges), reads are memory-mapped, and a commit is atomic, so a killed update leaves the last committed
state. Measured against SQLite FTS5 on the same analyzer's terms (benchmarks/bench_lexical.py): equal nDCG@10 on
CMRC2018 and SciFact, but FTS5's ``ORDER BY bm25()`` scores every matching row (28 ms a SciFact query over 5k
documents, where tantivy's block-max WAND takes 1 ms), which at 100k chunks is slower than the bm25s index it
replaces. Our own analyzer (:func:`analyze`: jieba + Snowball) makes the terms; tantivy only splits them at spaces.
Each chunk's text and metadata are kept beside its terms, so a BM25 search answers from the index alone
(:meth:`LexicalIndex.passages`).

tantivy's BM25 is fixed in the engine at k1 = 1.2 with lengths rounded to a byte; the bm25s index it replaced used
k1 = 1.5 and exact lengths, and scored SciFact test 0.004 nDCG@10 higher. So tantivy finds the candidates and
:meth:`LexicalIndex.search` orders them by BM25 with bm25s's parameters, from each chunk's exact length (kept in a
fast field) and each term's frequency (read back from tantivy's score of the term): SciFact test 0.6900 against
bm25s's 0.6890, CMRC2018 0.9866 both (``python -m benchmarks.bm25_parity scifact cmrc2018``), for 1.3 ms a k=5
query at 100k chunks.

>>> import tempfile
>>> index = LexicalIndex.build(Path(tempfile.mkdtemp()), [("a", "向量数据库的检索"), ("b", "Running BM25 searches")])
>>> index.search("bm25 search", k=5)[0].id
'b'
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import tantivy

from pipelines.retrieve.segment import cut

if TYPE_CHECKING:
    import Stemmer

__all__ = ["IndexBusy", "LexicalHit", "LexicalIndex", "Passage", "Staged", "analyze"]

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# A run of Han characters goes to jieba; any other run of letters/digits is one word. Han is excluded from the
# word class so that kana or Latin glued to Han ("2018年", "Qwen模型") still splits at the script boundary.
_TOKEN = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>[^\W_{_CJK}]+)")

#: Writer heap: tantivy flushes a segment when it fills, so this bounds the index's share of an ingest's memory.
_HEAP = 64_000_000
_ID, _FILE, _BODY, _LENGTH, _PASSAGE = "id", "file", "body", "length", "passage"
_SPACES = "spaces"

#: BM25's parameters for the order of the candidates: those of the bm25s index tantivy replaced, which scored SciFact
#: 0.004 nDCG@10 above tantivy's own k1 = 1.2 with lengths quantised to a byte (benchmarks/bm25_parity.py).
K1, B = 1.5, 0.75
_TANTIVY_K1 = 1.2  # tantivy's constant (its b is 0.75 too)
#: Candidates beyond ``k`` that tantivy's order brings to the exact scoring. A k=10 search returns the ten chunks a
#: 200-deep one does for every query of SciFact train and CMRC2018 dev with 10 or 20 (with 5: 9 of 809 and 22 of
#: 3,219 queries differ; ``SPLIT=train python -m benchmarks.bm25_parity scifact``); 20 for a margin.
HEADROOM = 20
#: Up to this many ids, a filter by ids is one term lookup each (:meth:`LexicalIndex._among`).
_LOOKUPS = 1000


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


class IndexBusy(Exception):
    """Another process holds the index's writer (an ingest on a machine that shares the index directory)."""


class Passage(NamedTuple):
    """A chunk as the index keeps it beside its terms: its text and metadata as written to the collection."""

    text: str
    metadata: dict[str, Any]


#: A chunk to stage: (chunk id, its terms joined by spaces, its text, its metadata).
Staged = tuple[str, str, str, Mapping[str, Any]]


class LexicalHit(NamedTuple):
    """One chunk found by words: its BM25 ``score`` and the share of the query's IDF it holds (``coverage``)."""

    id: str
    score: float
    coverage: float


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(_ID, stored=True, tokenizer_name="raw")
    builder.add_text_field(_FILE, tokenizer_name="raw", index_option="basic")  # what a change log names
    builder.add_text_field(_BODY, tokenizer_name=_SPACES, index_option="freq")  # no positions: BM25 needs none
    builder.add_unsigned_field(_LENGTH, fast=True)  # the exact term count (tantivy's own is rounded to a byte)
    builder.add_bytes_field(_PASSAGE, stored=True, indexed=False, fast=False)  # see :meth:`LexicalIndex.passages`
    return builder.build()


class LexicalIndex:
    """A tantivy index of chunks under ``directory``: :meth:`put` and :meth:`delete` stage changes, :meth:`commit`
    publishes them at once (a reader, or a process killed before the commit, sees all of them or none).

    One :class:`LexicalIndex` writes a directory at a time (tantivy locks it): :mod:`.lexical_sync` serialises the
    writers of a process and of processes sharing the directory.
    """

    def __init__(self, index: tantivy.Index, schema: tantivy.Schema) -> None:
        """Use :meth:`open`."""
        self._index = index
        self._schema = schema
        self._writer: tantivy.IndexWriter | None = None

    @classmethod
    def open(cls, directory: Path) -> LexicalIndex:
        """The index in ``directory``, created empty if there is none. Raises ``ValueError`` or ``OSError`` if the
        directory holds something tantivy cannot open (a damaged index: the caller rebuilds it)."""
        directory.mkdir(parents=True, exist_ok=True)
        schema = _schema()
        index = tantivy.Index(schema, path=str(directory), reuse=True)
        index.register_tokenizer(_SPACES, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
        return cls(index, schema)

    @classmethod
    def build(cls, directory: Path, chunks: Iterable[tuple[str, str]]) -> LexicalIndex:
        """An index of ``(chunk id, text)`` pairs, without metadata, in ``directory`` (benchmarks and tests: a
        store's index is kept by :mod:`.lexical_sync`)."""
        index = cls.open(directory)
        index.clear()
        index.put("", ((chunk_id, text, {}) for chunk_id, text in chunks))
        index.commit()
        return index

    def reload(self) -> None:
        """See the last commit, made by this object or another (tantivy reloads on commit, with a short delay)."""
        self._index.reload()

    def __len__(self) -> int:
        self._index.reload()
        return int(self._index.searcher().num_docs)

    # -- writing -------------------------------------------------------------------------------------------

    def _staging(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                # One indexing thread: the machine's cores belong to the embedding and Chroma.
                self._writer = self._index.writer(_HEAP, 1)
            except ValueError as error:
                if "LockBusy" in str(error):
                    raise IndexBusy(str(error)) from error
                raise
        return self._writer

    def hold(self) -> None:
        """Take tantivy's writer now (it is otherwise taken by the first staged change): raises :class:`IndexBusy`
        while another process holds it, before anything was written anywhere."""
        self._staging()

    def put(self, file: str, chunks: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Stage ``(chunk id, text, metadata)`` of ``file``; a chunk already indexed under its id is replaced."""
        self.put_terms(file, ((chunk_id, " ".join(analyze(text)), text, meta) for chunk_id, text, meta in chunks))

    def put_terms(self, file: str, chunks: Iterable[Staged]) -> None:
        """:meth:`put` for text already analysed (:data:`Staged`)."""
        writer = self._staging()
        for chunk_id, terms, text, metadata in chunks:
            # A delete applies to documents added before it, so this replaces any earlier copy and keeps this one.
            writer.delete_documents_by_term(_ID, chunk_id)
            document = tantivy.Document(**{_ID: chunk_id, _FILE: file, _BODY: terms})
            document.add_unsigned(_LENGTH, len(terms.split()))  # a keyword int would be stored as i64
            document.add_bytes(_PASSAGE, _encode(text, metadata))
            writer.add_document(document)

    def retag(self, file: str, metadatas: Mapping[str, Mapping[str, Any]]) -> None:
        """Stage new fields for the chunks of ``file`` named in ``metadatas`` (chunk id -> fields), merged into
        each chunk's metadata as the collection merges them (a field set to None is removed). The chunk is
        indexed again from its kept text: tantivy replaces documents, it does not edit them. The text is cut with
        the prepared dictionary (the same terms: :mod:`.segment`), so a writer re-tagging a few files does not load
        jieba's whole one."""
        staged: list[Staged] = []
        for chunk_id, passage in self.passages(list(metadatas)).items():
            merged = {**passage.metadata, **metadatas[chunk_id]}
            staged.append((chunk_id, " ".join(analyze(passage.text, query=True)), passage.text, merged))
        self.put_terms(file, staged)

    def delete(self, ids: Iterable[str]) -> None:
        writer = self._staging()
        for chunk_id in ids:
            writer.delete_documents_by_term(_ID, chunk_id)

    def delete_file(self, file: str) -> None:
        """Stage the removal of every chunk indexed under ``file``."""
        self._staging().delete_documents_by_term(_FILE, file)

    def clear(self) -> None:
        self._staging().delete_all_documents()

    def commit(self, *, keep: bool = False) -> None:
        """Publish the staged changes; release the directory's write lock unless ``keep`` (a run of writes: the
        segments' merges go on in the background meanwhile)."""
        if self._writer is None:
            return
        self._writer.commit()
        self._index.reload()
        if not keep:
            self.release()

    def release(self) -> None:
        """Let go of the writer, once its merges are done (tantivy's lock goes with it, not at garbage collection)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.wait_merging_threads()

    def rollback(self) -> None:
        """Drop the staged changes."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.rollback()
            writer.wait_merging_threads()

    # -- searching -----------------------------------------------------------------------------------------

    def search(self, query: str, k: int, *, only: Collection[str] | None = None) -> list[LexicalHit]:
        """The ``k`` best chunks for ``query``, best first; ``only`` restricts the search to those chunk ids.
        Chunks that share no term with the query are left out, so fewer than ``k`` may come back.

        tantivy finds the candidates (block-max WAND); their order and ``score`` are BM25 with :data:`K1` and each
        chunk's exact length (:meth:`_exact`). Each distinct query term counts once (counting repeats lost 0.002
        nDCG@10 on SciFact). ``coverage`` is the IDF of the distinct query terms a chunk holds over the IDF of all
        of them, a term absent from the index counting with the largest IDF.
        """
        terms = list(dict.fromkeys(analyze(query, query=True)))
        if k <= 0 or not terms or (only is not None and not only):
            return []
        searcher = self._index.searcher()
        total = int(searcher.num_docs)
        if total == 0:
            return []
        restrict = None
        if only is not None:
            restrict = self._among(only)
        frequencies = {term: int(searcher.doc_freq(_BODY, term)) for term in terms}
        present = [term for term in terms if frequencies[term] > 0]
        if not present:
            return []
        match = self._match(present, restrict)
        found = searcher.search(match, k + HEADROOM, count=False).hits
        if not found:
            return []
        addresses = [address for _, address in found]
        ids = [str(searcher.doc(address)[_ID][0]) for address in addresses]
        idf = {term: _idf(total, frequencies[term] or 1) for term in terms}
        scores, holders = self._exact(searcher, present, idf, ids, addresses)
        whole = sum(idf.values())
        hits = [
            LexicalHit(chunk_id, score, sum(idf[t] for t in present if chunk_id in holders[t]) / whole)
            for chunk_id, score in zip(ids, scores, strict=True)
        ]
        hits.sort(key=lambda hit: -hit.score)  # stable: a tie keeps tantivy's order
        return hits[:k]

    def passages(self, ids: Collection[str]) -> dict[str, Passage]:
        """The kept text and metadata of the chunks ``ids`` that are in the index (as of its last commit).

        Why the index keeps them: a BM25 search answers from here alone. Reading the same records from an embedded
        Chroma makes it load the collection's whole vector index first (0.6-0.9 s and 0.5 GB at 100k chunks of 1024
        dims, four times that at 4096), for a search that uses no vector; and the passage is exactly the one the
        index scored. The cost: 0.6 KB more on disk a chunk of 1.1 KB of text (compressed with its metadata; 113k
        generated chunks), written with the terms (the first ingest's lexical share stayed at 13 %)."""
        if not ids:
            return {}
        searcher = self._index.searcher()
        found = searcher.search(self._among(ids), len(ids), count=False).hits
        out: dict[str, Passage] = {}
        for _, address in found:
            stored = searcher.doc(address)
            text, metadata = _decode(stored[_PASSAGE][0])
            out[str(stored[_ID][0])] = Passage(text, metadata)
        return out

    def _match(self, terms: list[str], restrict: tantivy.Query | None) -> tantivy.Query:
        should = [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, _BODY, t)) for t in terms]
        query = tantivy.Query.boolean_query(should)
        if restrict is None:
            return query
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, restrict)])

    def _among(self, ids: Collection[str]) -> tantivy.Query:
        """A filter to the chunks ``ids``, not a scorer: a constant 0 adds nothing to the BM25 of the terms. Up to
        :data:`_LOOKUPS` ids, one term lookup each (0.4 ms for 200 ids at 100k chunks, where tantivy's term set,
        which walks the id dictionary, takes 2.3 ms); a term set beyond."""
        if len(ids) <= _LOOKUPS:
            each = [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, _ID, i)) for i in ids]
            return tantivy.Query.const_score_query(tantivy.Query.boolean_query(each), 0.0)
        return tantivy.Query.const_score_query(tantivy.Query.term_set_query(self._schema, _ID, list(ids)), 0.0)

    def _exact(
        self,
        searcher: tantivy.Searcher,
        terms: list[str],
        idf: dict[str, float],
        ids: list[str],
        addresses: list[tantivy.DocAddress],
    ) -> tuple[list[float], dict[str, set[str]]]:
        """BM25 with :data:`K1` and exact lengths for the chunks ``ids`` (at ``addresses``), and for each term the
        chunks that hold it. From the postings, no text read: one search per term over those chunks gives tantivy's
        score of the term in each chunk that holds it, and that score, tantivy's constants and the chunk's
        quantised length (:func:`quantised`, of the length kept in a fast field) give the term's frequency back."""
        among = self._among(ids)
        row = {_at(address): i for i, address in enumerate(addresses)}
        found: list[tuple[str, int, float]] = []  # (term, chunk, tantivy's score of the term in the chunk)
        for term in terms:
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, tantivy.Query.term_query(self._schema, _BODY, term)), (tantivy.Occur.Must, among)]
            )
            hits = searcher.search(query, len(ids), count=False).hits
            found.extend((term, row[_at(address)], score) for score, address in hits)
        holders: dict[str, set[str]] = {term: set() for term in terms}
        scores = [0.0] * len(ids)
        if not found:
            return scores, holders
        term, i, _ = found[0]
        # tantivy's average length, as its scores used it (deleted chunks' terms count until a merge drops them)
        average = _average_length(tantivy.Query.term_query(self._schema, _BODY, term), searcher, addresses[i])
        # A u64 column in every segment: an index of an older schema is not opened (lexical_sync rebuilds it).
        lengths = cast(list[int], searcher.fast_field_values(_LENGTH, addresses))
        norms = [_TANTIVY_K1 * (1 - B + B * quantised(n) / average) for n in lengths]
        exact = [K1 * (1 - B + B * n / average) for n in lengths]
        for term, i, score in found:
            holders[term].add(ids[i])
            # score = weight * tf / (tf + norm), solved for tf (an integer; float32 leaves it within 0.05)
            weight = idf[term] * (_TANTIVY_K1 + 1)
            tf = max(1, round(score * norms[i] / (weight - score))) if score < weight else lengths[i]
            scores[i] += idf[term] * tf * (K1 + 1) / (tf + exact[i])
        return scores, holders


def _encode(text: str, metadata: Mapping[str, Any]) -> bytes:
    """A passage as kept; its metadata as the collection keeps it, where a field set to None is removed."""
    fields = {key: value for key, value in metadata.items() if value is not None}
    return json.dumps([text, fields], ensure_ascii=False, separators=(",", ":")).encode()


def _decode(stored: bytes) -> tuple[str, dict[str, Any]]:
    text, metadata = json.loads(stored)
    return str(text), dict(metadata)


def quantised(length: int) -> int:
    """A length as tantivy keeps it in a byte: Lucene's ``SmallFloat.intToByte4`` then ``byte4ToInt`` (exact below
    24 terms, then four significant bits)."""
    if length < _FREE:
        return length
    code = _int4(length - _FREE)
    bits, shift = code & 0x07, (code >> 3) - 1
    return _FREE + (bits if shift < 0 else (bits | 0x08) << shift)


def _int4(value: int) -> int:
    width = value.bit_length()
    if width < 4:
        return value
    shift = width - 4
    return (value >> shift) & 0x07 | (shift + 1) << 3


_FREE = 255 - _int4(2**31 - 1)  # lengths below this are kept as they are (24)


def _average_length(query: tantivy.Query, searcher: tantivy.Searcher, address: tantivy.DocAddress) -> float:
    """tantivy's average length of the body field, from its explanation of a term ``query``'s hit at ``address``
    (tantivy-py tells it no other way)."""
    explained = json.loads(query.explain(searcher, address).to_json())
    stack = [explained]
    while stack:
        node = stack.pop()
        if node.get("description", "").startswith("avgdl"):
            return float(node["value"])
        stack.extend(node.get("details", ()))
    raise LookupError("tantivy's explanation holds no avgdl")


def _at(address: tantivy.DocAddress) -> tuple[int, int]:
    return (int(address.segment_ord), int(address.doc))


def _idf(total: int, frequency: int) -> float:
    """BM25's IDF as tantivy (and Lucene) compute it."""
    return math.log(1.0 + (total - frequency + 0.5) / (frequency + 0.5))
