"""The retriever chatbot apps plug in: the tutorial's demo, scores, and LangChain's Runnable interface."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.retriever import QwenRagRetriever, build_retriever
from pipelines.settings import Settings
from pipelines.store.chroma import StoreError
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, LocalEmbeddings]:
    # Dense: the tutorial's demo is a cosine search (the default, hybrid, is covered in test_retriever_modes.py).
    settings = Settings(store=tmp_path_factory.mktemp("demo") / "store", k=2, mode="dense")
    embeddings = LocalEmbeddings()
    ingest([SAMPLES], settings, embeddings=embeddings)
    return settings, embeddings


def test_the_tutorial_query_finds_machine_and_deep_learning(demo: tuple[Settings, LocalEmbeddings]) -> None:
    settings, embeddings = demo
    docs = build_retriever(settings, embeddings=embeddings).invoke("什么是人工智能？")
    assert {d.metadata["source"] for d in docs} == {"ml.txt", "dl.txt"}
    assert docs[0].metadata["score"] >= docs[1].metadata["score"] > 0


def test_an_english_query_finds_the_chinese_passage(demo: tuple[Settings, LocalEmbeddings]) -> None:
    settings, embeddings = demo
    docs = build_retriever(settings, embeddings=embeddings, k=1).invoke("how to implement binary search")
    assert docs[0].metadata["source"] == "binary_search.md"
    assert "二分查找" in docs[0].page_content


def test_k_and_async(demo: tuple[Settings, LocalEmbeddings]) -> None:
    settings, embeddings = demo
    retriever = build_retriever(settings, embeddings=embeddings, k=5)
    assert isinstance(retriever, QwenRagRetriever)
    docs = asyncio.run(retriever.ainvoke("weekend rain"))
    assert len(docs) == 5
    assert docs[0].metadata["source"] == "weather.html"
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_a_missing_collection_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="run `qwen-rag ingest` first"):
        build_retriever(Settings(store=tmp_path / "empty"), embeddings=LocalEmbeddings())
