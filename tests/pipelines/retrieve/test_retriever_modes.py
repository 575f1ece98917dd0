"""Retriever modes and options: BM25, hybrid fusion, filters, score floor, MMR and the rerank step."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from pypdf import PdfWriter

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Settings
from testbed.chroma import free_port
from testbed.rerank import RerankServer
from testbed.sglang import SGLangServer
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, local: LocalEmbeddings, pdfs: Path) -> Settings:
    corpus = tmp_path_factory.mktemp("modes") / "corpus"
    shutil.copytree(SAMPLES, corpus)
    # The paper's first four pages: the page filter needs pages on both sides of 2-3, and each page more is embedded
    # on the CPU (all thirteen made this the slowest setup of `make test-fast`).
    paper = PdfWriter()
    paper.append(pdfs / "en_paper_acl2020-main-207.pdf", pages=(0, 4))
    paper.write(corpus / "paper.pdf")
    settings = Settings(store=corpus.parent / "store", k=3, mode="dense")  # each test names the mode it is about
    ingest([corpus], settings, embeddings=local)
    return settings


def sources(settings: Settings, local: LocalEmbeddings, query: str, **options: object) -> list[str]:
    docs = build_retriever(settings.model_copy(update=options), embeddings=local).invoke(query)
    return [d.metadata["source"] for d in docs]


def test_bm25_finds_chinese_words(indexed: Settings, local: LocalEmbeddings) -> None:
    assert sources(indexed, local, "折半查找的时间复杂度", mode="bm25", k=1) == ["binary_search.md"]


def test_bm25_stems_english(indexed: Settings, local: LocalEmbeddings) -> None:
    assert sources(indexed, local, "brewed leaves steeping", mode="bm25", k=1) == ["tea.rst"]


def test_hybrid_fuses_both_rankings(indexed: Settings, local: LocalEmbeddings) -> None:
    docs = build_retriever(indexed.model_copy(update={"mode": "hybrid", "k": 3}), embeddings=local).invoke(
        "二分查找 binary search"
    )
    assert docs[0].metadata["source"] == "binary_search.md"
    assert {"dense_score", "bm25_score"} <= set(docs[0].metadata)
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_a_deleted_file_leaves_neither_index(tmp_path: Path, local: LocalEmbeddings) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLES, corpus)
    settings = Settings(store=tmp_path / "store", k=5, mode="bm25")
    ingest([corpus], settings, embeddings=local)
    assert "tea.rst" in sources(settings, local, "green tea Celsius")
    (corpus / "tea.rst").unlink()
    ingest([corpus], settings, embeddings=local)
    assert "tea.rst" not in sources(settings, local, "green tea Celsius")
    assert "tea.rst" not in sources(settings, local, "green tea Celsius", mode="dense", k=20)


def test_filters(indexed: Settings, local: LocalEmbeddings) -> None:
    assert set(sources(indexed, local, "search", source="*.md", k=5)) == {"binary_search.md"}
    assert set(sources(indexed, local, "search", file_type="html", k=5)) == {"weather.html"}
    docs = build_retriever(indexed.model_copy(update={"page_from": 2, "page_to": 3, "k": 10}), embeddings=local).invoke(
        "results"
    )
    assert docs and all(d.metadata["source"] == "paper.pdf" and 2 <= d.metadata["page"] <= 3 for d in docs)
    assert sources(indexed, local, "search", source="nothing/*.md") == []
    assert set(sources(indexed, local, "二分查找", mode="hybrid", source="*.md", k=5)) == {"binary_search.md"}


def test_min_score_drops_weak_matches(indexed: Settings, local: LocalEmbeddings) -> None:
    assert sources(indexed, local, "什么是人工智能？", min_score=0.99) == []
    assert sources(indexed, local, "什么是人工智能？", min_score=0.5, k=2) == ["ml.txt", "dl.txt"]


def test_mmr_trades_relevance_for_diversity(tmp_path: Path, local: LocalEmbeddings) -> None:
    corpus = tmp_path / "dups"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"ml{i}.txt").write_text(f"机器学习是一种让计算机自动学习的方法{'。' * (i + 1)}", encoding="utf-8")
    (corpus / "dl.txt").write_text("深度学习是机器学习的一个分支，使用神经网络。", encoding="utf-8")
    settings = Settings(store=tmp_path / "s", k=2, mode="dense")
    ingest([corpus], settings, embeddings=local)
    plain = sources(settings, local, "机器学习")
    diverse = sources(settings, local, "机器学习", mmr=True, mmr_lambda=0.3)
    assert all(s.startswith("ml") for s in plain)
    assert "dl.txt" in diverse


def keyword_scorer(word: str) -> object:
    def score(query: str, documents: Sequence[str], instruct: str | None) -> list[float]:
        return [1.0 if word in doc else 0.1 / (i + 1) for i, doc in enumerate(documents)]

    return score


def test_rerank_with_sglang_reorders_and_sends_the_instruction(indexed: Settings, local: LocalEmbeddings) -> None:
    with SGLangServer(scorer=keyword_scorer("green tea"), served_model_name="Qwen/Qwen3-Reranker-0.6B") as srv:
        settings = indexed.model_copy(update={"rerank_url": srv.url, "k": 2, "rerank_candidates": 60})
        docs = build_retriever(settings, embeddings=local).invoke("什么是人工智能？")
        assert docs[0].metadata["source"] == "tea.rst"  # the reranker's choice, not the first stage's
        assert docs[0].metadata["rerank_score"] == 1.0
        assert srv.rerank_instructs and "retrieve relevant passages" in srv.rerank_instructs[-1]


def test_rerank_with_the_rerank_api_schema(indexed: Settings, local: LocalEmbeddings) -> None:
    with RerankServer(scorer=keyword_scorer("umbrella")) as srv:
        settings = indexed.model_copy(update={"rerank_url": srv.url + "/rerank", "k": 1, "rerank_candidates": 10})
        docs = build_retriever(settings, embeddings=local).invoke("what about the weekend?")
        assert docs[0].metadata["source"] == "weather.html"


def test_rerank_falls_back_to_the_first_stage_when_down(
    indexed: Settings, local: LocalEmbeddings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = indexed.model_copy(update={"rerank_url": f"http://127.0.0.1:{free_port()}", "k": 2})
    with caplog.at_level(logging.WARNING, logger="pipelines.retrieve.rerank"):
        docs = build_retriever(settings, embeddings=local).invoke("什么是人工智能？")
    assert [d.metadata["source"] for d in docs] == ["ml.txt", "dl.txt"]
    assert all(d.metadata.get("rerank_fallback") for d in docs)
    assert "rerank" in caplog.text.lower()
