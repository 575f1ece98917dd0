"""The query helper: the vector a forked child computes is the one this process would, asked with the collection's
instruction; a helper that died leaves the query to this process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipelines.embeddings import make_embeddings, query_helper
from pipelines.embeddings.ahead import QueryAhead
from pipelines.ingestion.writer import ingest
from pipelines.settings import Settings
from testbed.sglang import SGLangServer
from tests.pipelines.embeddings.support import embedding_inputs


def test_the_helpers_vector_is_the_one_this_process_would_get(server: SGLangServer) -> None:
    settings = Settings(embeddings_url=[server.url + "/v1"])
    helper = query_helper()
    assert helper is not None
    provider = helper.ask(make_embeddings(settings, deferred=True), "什么是人工智能？", None)
    assert isinstance(provider, QueryAhead)
    direct = make_embeddings(settings)
    assert provider.embed_query("什么是人工智能？") == direct.embed_query("什么是人工智能？")
    assert not provider.inner.built  # type: ignore[attr-defined]  # a DeferredServer: the child embedded, not this process


def test_a_helper_that_died_leaves_the_query_to_this_process(server: SGLangServer) -> None:
    settings = Settings(embeddings_url=[server.url + "/v1"])
    helper = query_helper()
    assert helper is not None
    helper._child.kill()
    helper._child.join()
    provider = helper.ask(make_embeddings(settings, deferred=True), "binary search", None)
    assert provider.embed_query("binary search") == make_embeddings(settings).embed_query("binary search")


def test_the_cli_asks_once_with_the_collections_instruction(server: SGLangServer, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tea.md").write_text("Green tea is steeped at eighty degrees Celsius.", encoding="utf-8")
    store = tmp_path / "store"
    url = server.url + "/v1"
    ingest([corpus], Settings(store=store, embeddings_url=[url], task="Find facts about tea"))
    since = len(server.requests)
    command = [sys.executable, "-m", "pipelines.cli", "query", "green tea", "--store", str(store)]
    command += ["--embeddings-url", url]
    for mode in ("dense", "hybrid"):
        done = subprocess.run(
            [*command, "--mode", mode],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "tea.md" in done.stdout, done.stderr
    assert embedding_inputs(server, since) == [["Instruct: Find facts about tea\nQuery:green tea"]] * 2
