"""The analyzer and the lexical index: real jieba, real Snowball, real tantivy, real files; CMRC2018 paragraphs."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.evaluate.beir import load_beir
from pipelines.retrieve import lexical
from pipelines.retrieve.lexical import LexicalHit, LexicalIndex, Passage, analyze

REPO = Path(__file__).resolve().parents[3]

DOCS = {
    "en-bm25": "BM25 ranks documents by term frequency and inverse document frequency.",
    "en-chroma": "Chroma stores embeddings; the HNSW index answers nearest-neighbour queries.",
    "zh-vector": "向量数据库用于存储文本的嵌入向量，并支持近似最近邻检索。",
    "zh-bm25": "BM25是一种经典的词频排序函数，常用于全文检索。",
    "mixed": "Qwen3-Embedding模型在2025年发布，支持32k tokens的上下文。",
    "punct": "……！？——",
}


@pytest.fixture
def build(tmp_path: Path) -> Callable[..., LexicalIndex]:
    def make(docs: dict[str, str] = DOCS) -> LexicalIndex:
        return LexicalIndex.build(tmp_path / "lexical", docs.items())

    return make


# -- analyze ------------------------------------------------------------------------------------------------------


def test_mixed_text_is_segmented_stemmed_and_lower_cased() -> None:
    expected = ["qwen3", "模型", "的", "检索", "效果", "in", "2025", "run"]
    assert analyze("Qwen3模型的检索效果 in 2025, running!") == expected


def test_search_mode_adds_the_words_inside_long_words() -> None:
    terms = analyze("中华人民共和国")
    assert {"中华", "人民", "共和国", "中华人民共和国"} <= set(terms)


def test_punctuation_is_dropped_numbers_and_full_width_forms_kept() -> None:
    assert analyze("……！？——,.;:()[]") == []
    assert analyze("") == []
    # Full-width letters and digits match their ASCII spelling; a number glued to Han splits off.
    assert analyze("ＢＭ２５ 在2018年") == ["bm25", "在", "2018", "年"]
    assert analyze("COVID-19 studies") == ["covid", "19", "studi"]


def test_english_stemming_conflates_inflections() -> None:
    assert analyze("ranked ranking ranks") == ["rank", "rank", "rank"]
    assert analyze("Studies") == analyze("study")


@pytest.mark.slow
def test_jieba_loads_lazily_once_and_quietly(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pipelines.retrieve.lexical import analyze\n"
        "from pipelines.retrieve.segment import _full_tokenizer\n"
        "assert 'jieba' not in sys.modules, 'imported at module import'\n"
        "analyze('english only, 123')\n"
        "assert 'jieba' not in sys.modules, 'imported for text without Chinese'\n"
        "analyze('中文分词')\n"
        "assert _full_tokenizer() is _full_tokenizer()\n"
        "analyze('中文的查询', query=True)\n"
    )
    env = {**os.environ, "QWEN_RAG_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    # jieba's default logger prints "Building prefix dict from the default dictionary ..." on stderr.
    assert done.stderr == ""


# -- search -------------------------------------------------------------------------------------------------------


def test_search_finds_english_chinese_and_mixed_queries(build: Callable[..., LexicalIndex]) -> None:
    index = build()
    assert index.search("ranking by term frequency", k=3)[0].id == "en-bm25"
    assert index.search("近似最近邻检索", k=3)[0].id == "zh-vector"
    assert index.search("BM25 全文检索", k=3)[0].id == "zh-bm25"
    assert index.search("qwen3 上下文", k=3)[0].id == "mixed"


def test_search_returns_scores_best_first_and_at_most_k(build: Callable[..., LexicalIndex]) -> None:
    index = build()
    hits = index.search("BM25 检索", k=2)
    assert len(hits) == 2 and all(isinstance(hit, LexicalHit) for hit in hits)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
    assert len(index.search("BM25 检索", k=100)) == 3  # only chunks sharing a term: en-bm25, zh-bm25, zh-vector


def test_search_without_matching_terms_is_empty(build: Callable[..., LexicalIndex]) -> None:
    index = build()
    assert index.search("", k=5) == []
    assert index.search("？！", k=5) == []
    assert index.search("zebra", k=5) == []  # no such term
    assert index.search("BM25", k=0) == []


def test_only_restricts_the_search_to_those_ids_without_changing_scores(build: Callable[..., LexicalIndex]) -> None:
    index = build()
    everything = {hit.id: hit.score for hit in index.search("BM25 检索", k=10)}
    only = index.search("BM25 检索", k=10, only={"zh-vector", "en-chroma"})
    assert [hit.id for hit in only] == ["zh-vector"]  # en-chroma holds no query term
    assert only[0].score == pytest.approx(everything["zh-vector"])
    assert index.search("BM25 检索", k=10, only=set()) == []


def expected_coverage(query: str, chunk: str, docs: dict[str, str] = DOCS) -> float:
    """Coverage computed from the texts themselves, as the interface defines it."""
    total = len(docs)
    held = [set(analyze(text)) for text in docs.values()]

    def idf(term: str) -> float:
        df = sum(term in terms for terms in held) or 1  # unseen: as rare as the rarest indexed term
        return math.log(1 + (total - df + 0.5) / (df + 0.5))

    terms = set(analyze(query))
    return sum(idf(t) for t in terms & set(analyze(docs[chunk]))) / sum(idf(t) for t in terms)


@pytest.mark.parametrize(
    "query",
    ["BM25 全文检索", "BM25 全文检索 zebra", "nearest neighbour 向量 2025年", " ".join(DOCS.values()) + " zebra"],
)
def test_coverage_is_the_share_of_query_idf_a_chunk_holds(build: Callable[..., LexicalIndex], query: str) -> None:
    hits = build().search(query, k=10)
    assert hits and any(hit.coverage < 1 for hit in hits)
    for hit in hits:
        assert hit.coverage == pytest.approx(expected_coverage(query, hit.id), abs=1e-6), hit.id


def test_a_repeated_query_word_counts_once(build: Callable[..., LexicalIndex]) -> None:
    index = build()
    assert index.search("BM25 BM25 BM25 检索", k=5) == index.search("BM25 检索", k=5)


def test_empty_corpus(tmp_path: Path) -> None:
    index = LexicalIndex.build(tmp_path / "lexical", [])
    assert len(index) == 0 and index.search("anything", k=5) == []


@pytest.mark.slow
def test_bm25_on_cmrc2018_paragraphs(shared: Path, tmp_path: Path) -> None:
    """Questions were written on their paragraph: BM25 with this analyzer finds it first almost always."""
    data = load_beir(shared / "eval" / "cmrc2018", "trial")
    chunks = ((i, data.corpus[i]["title"] + " " + data.corpus[i]["text"]) for i in data.corpus)
    index = LexicalIndex.build(tmp_path / "lexical", chunks)
    questions = list(data.queries.items())[:200]
    first = sum(index.search(text, k=1)[0].id in data.qrels[qid] for qid, text in questions)
    assert first / len(questions) >= 0.95


# -- updates and persistence --------------------------------------------------------------------------------------


def test_put_replaces_delete_removes_and_a_reopened_index_sees_the_commit(
    build: Callable[..., LexicalIndex], tmp_path: Path
) -> None:
    index = build()
    index.put("f", [("en-bm25", "a rewritten chunk about zebras", {"source": "f"})])
    index.delete(["zh-bm25"])
    assert index.search("zebra", k=5) == []  # staged, not committed
    index.commit()
    assert [hit.id for hit in index.search("zebra", k=5)] == ["en-bm25"]
    assert [hit.id for hit in index.search("frequency", k=5)] == []  # the old text is gone
    reopened = LexicalIndex.open(tmp_path / "lexical")
    assert len(reopened) == len(DOCS) - 1
    assert "zh-bm25" not in {hit.id for hit in reopened.search("全文检索", k=10)}


def test_the_index_keeps_each_chunks_text_and_metadata_and_a_retag_merges_fields(tmp_path: Path) -> None:
    index = LexicalIndex.open(tmp_path / "lexical")
    meta = {"source": "a.md", "page": 3, "score_like": 0.5, "draft": True, "team": "search"}
    index.put("a.md", [("a1", "向量检索 with BM25", meta), ("a2", "pears", {"source": "a.md"})])
    index.commit()
    assert index.passages(["a1", "missing"]) == {"a1": Passage("向量检索 with BM25", meta)}
    index.retag("a.md", {"a1": {"team": None, "owner": "li"}, "gone": {"owner": "li"}})
    index.commit()
    retagged = {"source": "a.md", "page": 3, "score_like": 0.5, "draft": True, "owner": "li"}
    assert index.passages(["a1", "a2"]) == {
        "a1": Passage("向量检索 with BM25", retagged),
        "a2": Passage("pears", {"source": "a.md"}),
    }
    # Indexed again with the same terms: the search finds it as before, and once.
    assert [hit.id for hit in index.search("检索 bm25", k=5)] == ["a1"] and len(index) == 2


def test_delete_file_removes_its_chunks_only(tmp_path: Path) -> None:
    index = LexicalIndex.open(tmp_path / "lexical")
    index.put("a.md", [("a1", "apples", {}), ("a2", "apples and pears", {})])
    index.put("b.md", [("b1", "pears", {})])
    index.commit()
    index.delete_file("a.md")
    index.commit()
    assert [hit.id for hit in index.search("apples pears", k=5)] == ["b1"]


def test_rollback_drops_staged_changes(build: Callable[..., LexicalIndex]) -> None:
    index = build()
    index.put("f", [("new", "zebras", {})])
    index.rollback()
    index.commit()
    assert index.search("zebra", k=5) == [] and len(index) == len(DOCS)


# -- coverage and exact filters (issue 15) -----------------------------------------------------------------------


def test_coverage_is_the_share_of_the_query_term_weight_a_chunk_holds(tmp_path: Path) -> None:
    texts = ["quantum entanglement is the topic", "entanglement", "is the topic", "unrelated words"]
    index = LexicalIndex.build(tmp_path, zip(["both", "rare", "common", "none"], texts, strict=True))
    hits = {hit.id: hit for hit in index.search("is entanglement", k=10)}
    assert hits["both"].coverage == 1.0
    # "entanglement" is rarer than "is" (2 of 4 chunks each: equal here), so each holds half of the weight.
    assert hits["rare"].coverage == hits["common"].coverage == 0.5
    assert "none" not in hits
    # A query word the collection never saw is unmatched at the largest IDF: it lowers every chunk's coverage.
    unseen = {hit.id: hit for hit in index.search("is entanglement zyzzyva", k=10)}
    assert 0 < unseen["both"].coverage < 1.0
    assert unseen["rare"].coverage < 0.5


def test_a_stray_common_word_covers_little_of_the_query(tmp_path: Path) -> None:
    texts = [f"note {i}: the cat sat" for i in range(20)] + ["binary search halves an ordered array"]
    index = LexicalIndex.build(tmp_path, ((f"c{i}", text) for i, text in enumerate(texts)))
    hits = {hit.id: hit for hit in index.search("the binary search", k=30)}
    assert hits["c20"].coverage > 0.9
    assert hits["c0"].coverage < 0.1


def test_only_restricts_scoring_to_the_given_ids_and_keeps_k(tmp_path: Path) -> None:
    index = LexicalIndex.build(tmp_path, ((f"d{i}", f"apple pie number {i}") for i in range(30)))
    allowed = {f"d{i}" for i in range(0, 30, 3)}
    hits = index.search("apple pie", k=5, only=allowed)
    assert len(hits) == 5 and {hit.id for hit in hits} <= allowed
    assert len(index.search("apple pie", k=50, only=allowed)) == len(allowed)
    assert index.search("apple pie", k=5, only={"unknown"}) == []


# -- the exact BM25 order (issue 17: bm25s's quality) -------------------------------------------------------------


def expected_bm25(query: str, docs: dict[str, str], k1: float = 1.5, rounded: bool = False) -> dict[str, float]:
    """BM25 from the texts themselves: k1 1.5, b 0.75, exact lengths (``rounded``: as tantivy keeps them), Lucene's
    IDF, each query term once."""
    analysed = {cid: analyze(text) for cid, text in docs.items()}
    average = sum(map(len, analysed.values())) / len(analysed)
    length = lexical.quantised if rounded else int
    scores = {}
    for cid, terms in analysed.items():
        score = 0.0
        for term in dict.fromkeys(analyze(query)):
            df = sum(term in held for held in analysed.values())
            tf = terms.count(term)
            if tf:
                idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (0.25 + 0.75 * length(len(terms)) / average))
        if score:
            scores[cid] = score
    return scores


def test_scores_are_bm25_with_k1_1_5_and_each_chunk_s_exact_length(tmp_path: Path) -> None:
    """Lengths from 1 to about 2,000 terms (tantivy keeps them rounded above 24) and term counts up to 300."""
    rng = random.Random(5)
    docs = {}
    for i in range(60):
        tf_cat, tf_dog = rng.choice([0, 1, 2, 3, 7, 40, 300]), rng.choice([0, 1, 5])
        filler = [f"w{rng.randrange(50)}" for _ in range(rng.choice([0, 3, 20, 24, 25, 90, 600, 1700]))]
        words = ["cat"] * tf_cat + ["dog"] * tf_dog + filler
        rng.shuffle(words)
        docs[f"c{i}"] = " ".join(words) or "bird"
    expected = expected_bm25("cat dog", docs)
    hits = LexicalIndex.build(tmp_path, docs.items()).search("cat dog", k=len(docs))
    assert {hit.id: hit.score for hit in hits} == pytest.approx(expected, rel=1e-5)
    assert [hit.score for hit in hits] == pytest.approx(sorted(expected.values(), reverse=True))


def test_the_order_is_bm25_s_not_tantivy_s_own(tmp_path: Path) -> None:
    """Two chunks that tantivy's own scoring (k1 1.2, lengths rounded) and BM25 with k1 1.5 put in opposite orders."""
    docs = {"once": " ".join(["cat"] + [f"x{i}" for i in range(9)]), "often": " ".join(["cat"] * 5 + ["x"] * 58)}
    docs |= {f"other{i}": f"y{i} z{i}" for i in range(8)}
    tantivy_own = expected_bm25("cat", docs, k1=1.2, rounded=True)
    assert tantivy_own["often"] > tantivy_own["once"]
    expected = expected_bm25("cat", docs)
    assert expected["once"] > expected["often"]
    hits = LexicalIndex.build(tmp_path, docs.items()).search("cat", k=1)
    assert [hit.id for hit in hits] == ["once"]


def test_a_filter_of_many_ids_gives_the_same_hits_as_a_short_one(tmp_path: Path) -> None:
    """Past lexical._LOOKUPS ids the filter is tantivy's term set instead of one lookup per id."""
    index = LexicalIndex.build(tmp_path, ((f"d{i}", f"apple {'pie ' * (i % 4)}number {i}") for i in range(1500)))
    many = {f"d{i}" for i in range(0, 1500, 1)} - {"d3", "d7"}
    assert len(many) > lexical._LOOKUPS
    everything = [hit for hit in index.search("apple pie", k=1500) if hit.id in many]
    assert index.search("apple pie", k=20, only=many) == everything[:20]
    few = {hit.id for hit in everything[:30]}
    assert index.search("apple pie", k=20, only=few) == everything[:20]
