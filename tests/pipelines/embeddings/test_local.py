"""LocalEmbeddings: the embedded default as a Provider, vectors as the e5 model gives them."""

from __future__ import annotations

import asyncio

import numpy as np

from pipelines.embeddings import Provider
from pipelines.embeddings.e5 import fast_e5
from pipelines.embeddings.local import LocalEmbeddings
from pipelines.embeddings.profiles import E5_SMALL


def test_it_is_a_provider_without_a_server() -> None:
    emb = LocalEmbeddings()
    assert isinstance(emb, Provider)
    assert not emb.is_server
    assert (emb.profile, emb.model_id) == (E5_SMALL, "intfloat/multilingual-e5-small")


def test_with_task_and_detached_are_itself() -> None:
    emb = LocalEmbeddings()
    assert emb.with_task("Retrieve Python code") is emb  # e5 takes no instruction
    assert emb.detached() is emb


def test_documents_and_queries_are_the_models_passages_and_queries() -> None:
    emb = LocalEmbeddings()
    texts = ["机器学习是一种让计算机自动学习的方法。", "Binary search halves the range."]
    np.testing.assert_array_equal(emb.embed_documents(texts), fast_e5().passage(texts))
    np.testing.assert_array_equal(emb.embed_query(texts[0]), fast_e5().query([texts[0]])[0])
    assert emb.embed_query(texts[0]) != emb.embed_documents(texts)[0]  # "query: " and "passage: " differ


def test_no_documents_no_vectors() -> None:
    assert LocalEmbeddings().embed_documents([]) == []


def test_async_embedding_is_langchains() -> None:
    emb = LocalEmbeddings()
    assert asyncio.run(emb.aembed_query("向量检索")) == emb.embed_query("向量检索")
    assert asyncio.run(emb.aembed_documents(["向量检索"])) == emb.embed_documents(["向量检索"])
