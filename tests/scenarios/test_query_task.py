"""The query instruction a collection was ingested with (``ingest --task``) reaches the SGLang server on every
surface and through every provider: one server, a pool of servers, ``qwen-rag compare``; an explicit task wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.evaluate.compare import compare, side_settings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Settings
from testbed.embedders import HashEmbedder
from testbed.sglang import SGLangServer
from tests.conftest import SAMPLES

QWEN = "Qwen/Qwen3-Embedding-0.6B"
RECORDED = "Given a Chinese question, retrieve the passage that answers it"
EXPLICIT = "Retrieve Python code"
QUERY = "什么是人工智能？"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[SGLangServer, SGLangServer]]:
    with (
        SGLangServer(embedder=HashEmbedder(), served_model_name=QWEN) as a,
        SGLangServer(embedder=HashEmbedder(), served_model_name=QWEN) as b,
    ):
        yield a, b


@pytest.fixture(scope="module")
def store(servers: tuple[SGLangServer, SGLangServer], tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("task") / "store"
    ingest([SAMPLES], Settings(store=store, embeddings_url=[servers[0].url + "/v1"], task=RECORDED), progress=False)
    return store


def queries_sent(servers: tuple[SGLangServer, ...], since: list[int]) -> list[str]:
    """Every query text the servers embedded since the request counts ``since`` (documents carry no instruction)."""
    return [
        text
        for srv, n in zip(servers, since, strict=True)
        for request in srv.requests[n:]
        if request.path == "/v1/embeddings"
        for text in request.json["input"]
        if text.startswith("Instruct: ")
    ]


def counts(servers: tuple[SGLangServer, ...]) -> list[int]:
    return [len(srv.requests) for srv in servers]


def test_a_pool_of_servers_asks_with_the_recorded_task(servers: tuple[SGLangServer, SGLangServer], store: Path) -> None:
    settings = Settings(store=store, embeddings_url=[srv.url + "/v1" for srv in servers], mode="dense")
    since = counts(servers)
    retriever = build_retriever(settings)
    for _ in range(2):  # round robin: one query to each server
        retriever.invoke(QUERY)
    assert queries_sent(servers, since) == [f"Instruct: {RECORDED}\nQuery:{QUERY}"] * 2
    assert all(n > 0 for n in (c - s for c, s in zip(counts(servers), since, strict=True)))


def test_an_explicit_task_wins_over_the_recorded_one(servers: tuple[SGLangServer, SGLangServer], store: Path) -> None:
    urls = [srv.url + "/v1" for srv in servers]
    since = counts(servers)
    build_retriever(Settings(store=store, embeddings_url=urls, task=EXPLICIT, mode="dense")).invoke(QUERY)
    # ... and per call, as a retriever option.
    build_retriever(Settings(store=store, embeddings_url=urls, mode="dense")).invoke(QUERY, task=EXPLICIT)
    assert queries_sent(servers, since) == [f"Instruct: {EXPLICIT}\nQuery:{QUERY}"] * 2


def test_compare_asks_both_sides_with_the_recorded_task(
    servers: tuple[SGLangServer, SGLangServer], store: Path
) -> None:
    base = Settings(store=store, embeddings_url=[servers[0].url + "/v1"], k=2)
    since = counts(servers)
    result = compare([QUERY], side_settings(base, "mode=dense"), side_settings(base, "mode=hybrid"))
    assert len(result.queries) == 1 and len(result.queries[0].a) == 2
    assert queries_sent(servers, since) == [f"Instruct: {RECORDED}\nQuery:{QUERY}"] * 2
