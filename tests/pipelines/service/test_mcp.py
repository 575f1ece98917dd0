"""The MCP server's tools through the SDK's own client, in process, on a real Chroma store of the demo corpus."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, Tool

import pipelines.retrieve.warm
from pipelines.embeddings import Provider, make_embeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.retriever import QwenRagRetriever
from pipelines.retrieve.warm import WarmRetrievers
from pipelines.service.mcp import build_mcp
from pipelines.settings import Settings
from tests.conftest import SAMPLES

AI = "什么是人工智能？"


@pytest.fixture(scope="module")
def provider() -> Provider:
    return make_embeddings(Settings())


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> Settings:
    settings = Settings(store=tmp_path_factory.mktemp("mcp") / "store", mode="dense")
    ingest([SAMPLES], settings, embeddings=provider, progress=False)
    notes = tmp_path_factory.mktemp("notes")
    (notes / "tea.txt").write_text("绿茶最好用八十度的水冲泡。", encoding="utf-8")
    ingest([notes], settings.model_copy(update={"collection": "notes"}), embeddings=provider, progress=False)
    return settings


@pytest.fixture(scope="module")
def server(settings: Settings, provider: Provider) -> MCPServer:
    return build_mcp(settings, warm=WarmRetrievers(settings, embeddings=provider))


def call(server: MCPServer, tool: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
    async def go() -> CallToolResult:
        async with Client(server) as client:
            return await client.call_tool(tool, arguments or {})

    return anyio.run(go)


def tools(server: MCPServer) -> dict[str, Tool]:
    async def go() -> list[Tool]:
        async with Client(server) as client:
            return (await client.list_tools()).tools

    return {tool.name: tool for tool in anyio.run(go)}


def results(result: CallToolResult) -> list[dict[str, Any]]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content["result"]


def error(result: CallToolResult) -> str:
    assert result.is_error
    [content] = result.content
    text = content.text  # type: ignore[union-attr]  # our tools answer text only, never images or resources
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The collections whose retriever was built, in order."""
    built: list[str] = []
    real: Callable[..., QwenRagRetriever] = pipelines.retrieve.warm.build_retriever

    def counting(settings: Settings, **kwargs: Any) -> QwenRagRetriever:
        built.append(settings.collection)
        return real(settings, **kwargs)

    monkeypatch.setattr(pipelines.retrieve.warm, "build_retriever", counting)
    return built


# -- what clients see --------------------------------------------------------------------------------------------


def test_three_read_only_tools_with_documented_inputs_and_outputs(server: MCPServer) -> None:
    listed = tools(server)
    assert sorted(listed) == ["collections", "read", "search"]
    for tool in listed.values():
        assert tool.description and "\n " not in tool.description  # docstrings without their indentation
        assert tool.output_schema is not None
        assert tool.annotations is not None and tool.annotations.read_only_hint
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    search = listed["search"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["k"]["default"] == 5 and search["properties"]["k"]["maximum"] == 50
    assert search["properties"]["mode"]["anyOf"][0]["enum"] == ["dense", "bm25", "hybrid"]
    assert listed["read"].input_schema["required"] == ["source"]


# -- search ------------------------------------------------------------------------------------------------------


def test_search_finds_the_machine_learning_passage_first(server: MCPServer) -> None:
    result = call(server, "search", {"query": AI, "k": 2})
    passages = results(result)
    assert [p["source"] for p in passages] == ["ml.txt", "dl.txt"]
    first = passages[0]
    assert "机器学习" in first["text"] and first["start_index"] == 0 and first["page"] is None
    assert first["score"] >= passages[1]["score"]
    # What a model reads: each passage as JSON text, the same as the structured result.
    assert [json.loads(c.text) for c in result.content] == passages  # type: ignore[union-attr]  # text content only


def test_search_takes_mode_and_filters_per_call(server: MCPServer) -> None:
    words = results(call(server, "search", {"query": "二分查找", "k": 3, "mode": "bm25", "source": "*.md"}))
    assert words and {p["source"] for p in words} == {"binary_search.md"}
    markdown = results(call(server, "search", {"query": "how to implement binary search", "file_type": "markdown"}))
    assert markdown and {p["source"] for p in markdown} == {"binary_search.md"}
    assert results(call(server, "search", {"query": AI, "page_from": 2})) == []  # no PDF among the samples
    assert len(results(call(server, "search", {"query": AI, "mode": "hybrid", "k": 7}))) == 7


def test_search_in_another_collection(server: MCPServer) -> None:
    passages = results(call(server, "search", {"query": "泡茶的水温", "collection": "notes"}))
    assert [p["source"] for p in passages] == ["tea.txt"]


def test_a_retriever_is_built_once_per_collection(settings: Settings, provider: Provider, builds: list[str]) -> None:
    fresh = build_mcp(settings, warm=WarmRetrievers(settings, embeddings=provider))
    for _ in range(3):
        results(call(fresh, "search", {"query": AI}))
    results(call(fresh, "search", {"query": AI, "collection": "notes"}))
    assert builds == ["default", "notes"]


# -- read and collections ----------------------------------------------------------------------------------------


def test_read_gives_the_text_around_a_hit(server: MCPServer) -> None:
    whole = call(server, "read", {"source": "ml.txt"}).structured_content
    assert whole is not None
    assert whole["text"] == (SAMPLES / "ml.txt").read_text(encoding="utf-8").strip()
    assert whole["start_index"] == 0 and not whole["more_before"] and not whole["more_after"]
    [hit] = results(call(server, "search", {"query": "循环条件 low high", "k": 1, "mode": "bm25"}))
    around = call(server, "read", {"source": hit["source"], "start_index": hit["start_index"], "tokens": 40})
    assert around.structured_content is not None
    assert around.structured_content["start_index"] <= hit["start_index"] < around.structured_content["end_index"]
    assert around.structured_content["text"] in Path(SAMPLES / hit["source"]).read_text(encoding="utf-8")


def test_collections_lists_chunks_and_models(server: MCPServer) -> None:
    listed = {c["name"]: c for c in results(call(server, "collections"))}
    assert sorted(listed) == ["default", "notes"]
    assert listed["notes"] == {
        "name": "notes",
        "chunks": 1,
        "model": "intfloat/multilingual-e5-small",
        "dimension": 384,
        "task": None,
    }
    assert listed["default"]["chunks"] >= len(list(SAMPLES.iterdir()))  # a chunk or more per file


# -- errors ------------------------------------------------------------------------------------------------------


def test_errors_a_user_can_act_on_come_back_in_one_line(server: MCPServer) -> None:
    assert error(call(server, "search", {"query": AI, "collection": "nope"})).startswith(
        "Error executing tool search: no collection 'nope' in "
    )
    assert error(call(server, "search", {"query": "  "})) == "Error executing tool search: query is blank"
    assert error(call(server, "read", {"source": "missing.md"})) == (
        "Error executing tool read: no file 'missing.md' in collection 'default': use a source as search returns it"
    )
    assert error(call(server, "read", {"source": "ml.txt", "collection": "nope"})).startswith(
        "Error executing tool read: no collection 'nope' in "
    )


def test_arguments_outside_the_schema_are_named_in_one_line(server: MCPServer) -> None:
    assert error(call(server, "search", {"query": AI, "k": 0})) == (
        "Error executing tool search: k: Input should be greater than or equal to 1"
    )
    assert error(call(server, "search", {"query": AI, "mode": "fuzzy"})).startswith(
        "Error executing tool search: mode: Input should be 'dense', 'bm25' or 'hybrid'"
    )
    assert error(call(server, "read", {})) == "Error executing tool read: source: Field required"
    assert error(call(server, "search", {"query": "a\ud800"})) == (
        "Error executing tool search: query: Value error, not valid Unicode: a lone surrogate at position 1"
    )


def test_an_unexpected_failure_shows_no_details(settings: Settings) -> None:
    class Broken(WarmRetrievers):
        def get(self, collection: str | None = None) -> QwenRagRetriever:
            raise RuntimeError("disk /home/someone/secret unreadable")

    assert error(call(build_mcp(settings, warm=Broken(settings)), "search", {"query": AI})) == (
        "Error executing tool search"
    )


def test_a_collection_rebuilt_under_a_warm_retriever_is_searched_again(
    settings: Settings, provider: Provider, builds: list[str]
) -> None:
    fresh = build_mcp(settings, warm=WarmRetrievers(settings, embeddings=provider))
    results(call(fresh, "search", {"query": AI}))
    ingest([SAMPLES], settings, embeddings=provider, full=True, progress=False)  # deletes and recreates it
    assert results(call(fresh, "search", {"query": AI}))[0]["source"] == "ml.txt"
    assert builds == ["default", "default"]
