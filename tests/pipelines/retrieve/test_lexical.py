"""The analyzer and the BM25 index: real jieba, real Snowball, real bm25s, real files; CMRC2018 paragraphs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.evaluate.beir import load_beir
from pipelines.retrieve.lexical import BM25Index, analyze, fingerprint

REPO = Path(__file__).resolve().parents[3]

DOCS = {
    "en-bm25": "BM25 ranks documents by term frequency and inverse document frequency.",
    "en-chroma": "Chroma stores embeddings; the HNSW index answers nearest-neighbour queries.",
    "zh-vector": "向量数据库用于存储文本的嵌入向量，并支持近似最近邻检索。",
    "zh-bm25": "BM25是一种经典的词频排序函数，常用于全文检索。",
    "mixed": "Qwen3-Embedding模型在2025年发布，支持32k tokens的上下文。",
    "punct": "……！？——",
}


def build(docs: dict[str, str] = DOCS) -> BM25Index:
    return BM25Index.build(list(docs), list(docs.values()), fingerprint(docs))


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


# -- fingerprint --------------------------------------------------------------------------------------------------


def test_fingerprint_is_order_independent_and_set_like() -> None:
    assert fingerprint(["b", "a", "c"]) == fingerprint(["c", "b", "a"]) == fingerprint(["a", "b", "c", "a"])
    assert fingerprint(["a", "b"]) != fingerprint(["a", "b", "c"])
    # Concatenations must not collide.
    assert fingerprint(["a", "bc"]) != fingerprint(["ab", "c"])
    assert fingerprint([]) != fingerprint([""])
    assert len(fingerprint(["x"])) == 64


# -- search -------------------------------------------------------------------------------------------------------


def test_search_finds_english_chinese_and_mixed_queries() -> None:
    index = build()
    assert index.search("ranking by term frequency", k=3)[0].id == "en-bm25"
    assert index.search("近似最近邻检索", k=3)[0].id == "zh-vector"
    assert index.search("BM25 全文检索", k=3)[0].id == "zh-bm25"
    assert index.search("qwen3 上下文", k=3)[0].id == "mixed"


def test_search_returns_scores_best_first_and_at_most_k() -> None:
    index = build()
    hits = index.search("BM25 检索", k=2)
    assert len(hits) == 2
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
    assert len(index.search("BM25 检索", k=100)) == 3  # only chunks sharing a term: en-bm25, zh-bm25, zh-vector


def test_search_without_matching_terms_is_empty() -> None:
    index = build()
    assert index.search("", k=5) == []
    assert index.search("？！", k=5) == []
    assert index.search("zebra", k=5) == []  # no such term
    assert index.search("BM25", k=0) == []


def test_equal_scores_keep_indexing_order() -> None:
    index = BM25Index.build(["z", "y", "x", "w"], ["same text", "other", "same text", "same text"], "f")
    assert [hit.id for hit in index.search("same", k=3)] == ["z", "x", "w"]
    # The cut at k keeps the first-indexed of the tied chunks too.
    assert [hit.id for hit in index.search("same", k=2)] == ["z", "x"]


def test_empty_corpus() -> None:
    index = BM25Index.build([], [], fingerprint([]))
    assert len(index) == 0 and index.search("anything", k=5) == []


def test_build_refuses_mismatched_or_duplicate_ids() -> None:
    with pytest.raises(ValueError, match="2 ids for 1 texts"):
        BM25Index.build(["a", "b"], ["x"], "f")
    with pytest.raises(ValueError, match="unique"):
        BM25Index.build(["a", "a"], ["x", "y"], "f")


def test_bm25_on_cmrc2018_paragraphs(shared: Path) -> None:
    """Questions were written on their paragraph: BM25 with this analyzer finds it first almost always."""
    data = load_beir(shared / "eval" / "cmrc2018", "trial")
    ids = list(data.corpus)
    index = BM25Index.build(ids, [data.corpus[i]["title"] + " " + data.corpus[i]["text"] for i in ids], "f")
    questions = list(data.queries.items())[:200]
    first = sum(index.search(text, k=1)[0].id in data.qrels[qid] for qid, text in questions)
    assert first / len(questions) >= 0.95


# -- persistence --------------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = build()
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded is not None
    assert loaded.fingerprint == index.fingerprint and loaded.ids == index.ids
    for query in ("BM25 检索", "HNSW nearest neighbour", "2025年"):
        assert loaded.search(query, k=5) == index.search(query, k=5)


def test_save_replaces_the_old_index_and_leaves_no_temporaries(tmp_path: Path) -> None:
    build().save(tmp_path / "bm25")
    smaller = build({"only": "a single chunk about BM25"})
    smaller.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded is not None and loaded.ids == ["only"] and loaded.fingerprint == fingerprint(["only"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25"]


def test_empty_index_round_trip(tmp_path: Path) -> None:
    BM25Index.build([], [], fingerprint([])).save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded is not None and len(loaded) == 0 and loaded.fingerprint == fingerprint([])


def test_load_of_a_missing_or_damaged_index_is_none(tmp_path: Path) -> None:
    assert BM25Index.load(tmp_path / "nothing-here") is None
    build().save(tmp_path / "bm25")

    meta = tmp_path / "bm25" / "meta.json"
    original = meta.read_text(encoding="utf-8")
    meta.write_text(original[: len(original) // 2], encoding="utf-8")  # truncated by a crash
    assert BM25Index.load(tmp_path / "bm25") is None

    meta.write_text(json.dumps({**json.loads(original), "format": 999}), encoding="utf-8")
    assert BM25Index.load(tmp_path / "bm25") is None

    meta.write_text(json.dumps({**json.loads(original), "ids": ["just-one"]}), encoding="utf-8")
    assert BM25Index.load(tmp_path / "bm25") is None  # ids no longer match the matrix

    meta.write_text(original, encoding="utf-8")
    assert BM25Index.load(tmp_path / "bm25") is not None
    for array in (tmp_path / "bm25").glob("*.npy"):
        array.write_bytes(b"not numpy")
    assert BM25Index.load(tmp_path / "bm25") is None


# -- coverage and exact filters ------------------------------------------------------------------------------------


def test_coverage_is_the_share_of_the_query_term_weight_a_chunk_holds() -> None:
    index = BM25Index.build(
        ["both", "rare", "common", "none"],
        ["quantum entanglement is the topic", "entanglement", "is the topic", "unrelated words"],
        fingerprint(["both", "rare", "common", "none"]),
    )
    hits = {hit.id: hit for hit in index.search("is entanglement", k=10)}
    assert hits["both"].coverage == 1.0
    # "entanglement" is rarer than "is" (2 of 4 chunks each: equal here), so each holds half of the weight.
    assert hits["rare"].coverage == hits["common"].coverage == 0.5
    assert "none" not in hits
    # A query word the collection never saw is unmatched at the largest IDF: it lowers every chunk's coverage.
    unseen = {hit.id: hit for hit in index.search("is entanglement zyzzyva", k=10)}
    assert 0 < unseen["both"].coverage < 1.0
    assert unseen["rare"].coverage < 0.5


def test_a_stray_common_word_covers_little_of_the_query() -> None:
    texts = [f"note {i}: the cat sat" for i in range(20)] + ["binary search halves an ordered array"]
    ids = [f"c{i}" for i in range(len(texts))]
    index = BM25Index.build(ids, texts, fingerprint(ids))
    hits = {hit.id: hit for hit in index.search("the binary search", k=30)}
    assert hits["c20"].coverage > 0.9
    assert hits["c0"].coverage < 0.1


def test_only_restricts_scoring_to_the_given_ids_and_keeps_k() -> None:
    texts = [f"apple pie number {i}" for i in range(30)]
    ids = [f"d{i}" for i in range(30)]
    index = BM25Index.build(ids, texts, fingerprint(ids))
    allowed = {f"d{i}" for i in range(0, 30, 3)}
    hits = index.search("apple pie", k=5, only=allowed)
    assert len(hits) == 5 and {hit.id for hit in hits} <= allowed
    assert len(index.search("apple pie", k=50, only=allowed)) == len(allowed)
    assert index.search("apple pie", k=5, only={"unknown"}) == []
