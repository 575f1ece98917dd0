"""DeferredServer: the probe's answers at once, the OpenAI client only on the first embedding, the same vectors."""

from __future__ import annotations

from pathlib import Path

from pipelines.embeddings import Provider, make_embeddings
from pipelines.embeddings.deferred import DeferredServer
from pipelines.embeddings.profiles import DEFAULT_TASK
from pipelines.embeddings.server import ServerEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.settings import Settings
from testbed.sglang import SGLangServer
from tests.pipelines.embeddings.support import QWEN, SERVER_ONLY, embedding_inputs, imported_by


def _deferred(server: SGLangServer, task: str | None = DEFAULT_TASK) -> DeferredServer:
    emb = make_embeddings(Settings(embeddings_url=[server.url + "/v1"], task=task), deferred=True)
    assert isinstance(emb, DeferredServer)
    return emb


def test_it_knows_the_model_before_building_the_client(server: SGLangServer) -> None:
    emb = _deferred(server)
    assert isinstance(emb, Provider) and emb.is_server
    assert (emb.model_id, emb.profile.name, emb.built) == (QWEN, QWEN, False)


def test_probing_imports_no_openai_client(server: SGLangServer) -> None:
    code = (
        "from pipelines.embeddings import make_embeddings\n"
        "from pipelines.settings import Settings\n"
        f"emb = make_embeddings(Settings(embeddings_url=[{server.url + '/v1'!r}]), deferred=True)\n"
        "assert emb.model_id\n"
    )
    assert imported_by(code, SERVER_ONLY) == set()


def test_it_embeds_as_the_server_client_does(server: SGLangServer) -> None:
    emb = _deferred(server, task="Retrieve passages about computing")
    direct = ServerEmbeddings.connect(server.url + "/v1", Settings(task="Retrieve passages about computing"))
    since = len(server.requests)
    assert emb.embed_query("什么是人工智能？") == direct.embed_query("什么是人工智能？")
    assert emb.embed_documents(["机器学习", " "]) == direct.embed_documents(["机器学习", " "])
    assert emb.built
    sent = embedding_inputs(server, since)
    assert sent[0] == sent[1] and sent[0][0].startswith("Instruct: Retrieve passages about computing\nQuery:")


def test_with_task_and_detached_keep_the_spec(server: SGLangServer) -> None:
    emb = _deferred(server)
    tasked = emb.with_task("Retrieve Python code")
    assert not tasked.built and tasked.spec.task == "Retrieve Python code" and emb.spec.task == DEFAULT_TASK
    emb.embed_query("x")
    tasked_after = emb.with_task("Retrieve Python code")
    assert tasked_after.built and tasked_after.client().task == "Retrieve Python code"
    detached = emb.detached()
    assert detached.built and detached.client().client is not emb.client().client


def test_a_bm25_query_never_imports_the_openai_client(server: SGLangServer, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tea.md").write_text("Green tea is steeped at eighty degrees Celsius.", encoding="utf-8")
    store = tmp_path / "store"
    ingest([corpus], Settings(store=store, embeddings_url=[server.url + "/v1"]))
    code = (
        "from pipelines.retrieve.search import open_search\n"
        "from pipelines.settings import Settings\n"
        f"search = open_search(Settings(store={str(store)!r}, embeddings_url=[{server.url + '/v1'!r}], mode='bm25'))\n"
        "assert search.search('green tea')[0].metadata['source'] == 'tea.md'\n"
    )
    assert imported_by(code, SERVER_ONLY) == set()
