"""PooledEmbeddings: several servers of one model, round robin, as one Provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelines.embeddings import Provider, make_embeddings
from pipelines.embeddings.pool import PooledEmbeddings
from pipelines.embeddings.profiles import DEFAULT_TASK
from pipelines.embeddings.server import ServerEmbeddings
from pipelines.errors import EmbeddingServerError
from pipelines.settings import Settings
from testbed.embedders import embedded_default
from testbed.sglang import SGLangServer
from tests.pipelines.embeddings.support import QWEN, embedding_inputs


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[SGLangServer, SGLangServer]]:
    with (
        SGLangServer(embedder=embedded_default(), served_model_name=QWEN) as a,
        SGLangServer(embedder=embedded_default(), served_model_name=QWEN) as b,
    ):
        yield a, b


def _pool(pair: tuple[SGLangServer, SGLangServer], batch_size: int = 32) -> PooledEmbeddings:
    pool = make_embeddings(Settings(embeddings_url=[srv.url + "/v1" for srv in pair], batch_size=batch_size))
    assert isinstance(pool, PooledEmbeddings)
    return pool


def test_several_urls_make_a_pool_that_is_a_provider_of_servers(pair: tuple[SGLangServer, SGLangServer]) -> None:
    pool = _pool(pair)
    assert isinstance(pool, Provider)
    assert pool.is_server and pool.model_id == QWEN and pool.profile.name == QWEN
    assert all(isinstance(m, ServerEmbeddings) for m in pool.members)


def test_several_servers_share_the_requests(pair: tuple[SGLangServer, SGLangServer]) -> None:
    a, b = pair
    before = a.embedding_requests, b.embedding_requests
    emb = _pool(pair, batch_size=4)
    for i in range(6):
        emb.embed_documents([f"text {i}"])
    assert (a.embedding_requests - before[0], b.embedding_requests - before[1]) == (3, 3)


def test_with_task_gives_every_member_the_task(pair: tuple[SGLangServer, SGLangServer]) -> None:
    pool = _pool(pair)
    tasked = pool.with_task("Retrieve Python code")
    assert isinstance(tasked, PooledEmbeddings) and tasked is not pool
    since = [len(srv.requests) for srv in pair]
    tasked.embed_query("binary search")
    tasked.embed_query("binary search")
    sent = [text for srv, n in zip(pair, since, strict=True) for batch in embedding_inputs(srv, n) for text in batch]
    assert sent == ["Instruct: Retrieve Python code\nQuery:binary search"] * 2
    # The original pool keeps its task.
    assert all(isinstance(m, ServerEmbeddings) and m.task == DEFAULT_TASK for m in pool.members)


def test_detached_gives_every_member_its_own_connections(pair: tuple[SGLangServer, SGLangServer]) -> None:
    pool = _pool(pair)
    detached = pool.detached()
    assert isinstance(detached, PooledEmbeddings) and len(detached.members) == 2
    for old, new in zip(pool.members, detached.members, strict=True):
        assert isinstance(old, ServerEmbeddings) and isinstance(new, ServerEmbeddings)
        assert new.client is not old.client and new.openai_api_base == old.openai_api_base
    assert detached.embed_documents(["向量检索"]) == pool.embed_documents(["向量检索"])


def test_servers_of_different_models_are_refused(pair: tuple[SGLangServer, SGLangServer]) -> None:
    with (
        SGLangServer(embedder=embedded_default(), served_model_name="Qwen/Qwen3-Embedding-4B") as other,
        pytest.raises(EmbeddingServerError, match="serve different models"),
    ):
        make_embeddings(Settings(embeddings_url=[pair[0].url + "/v1", other.url + "/v1"]))
