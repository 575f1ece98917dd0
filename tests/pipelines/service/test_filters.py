"""Filters on any field through the service: /v1/retrieve's ``filters.fields`` and ``filters.where``, and MCP search."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp.client import Client

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.warm import WarmRetrievers
from pipelines.service.app import create_app
from pipelines.service.mcp import build_mcp
from pipelines.settings import Settings

QUERY = "green tea water temperature"


@pytest.fixture(scope="module")
def embeddings() -> LocalEmbeddings:
    return LocalEmbeddings()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, embeddings: LocalEmbeddings) -> Settings:
    base = tmp_path_factory.mktemp("service-filters")
    hr, other = base / "hr", base / "other"
    hr.mkdir()
    other.mkdir()
    (hr / "leave.md").write_text("Annual leave is 25 days. Tea in the kitchen.\n")
    (hr / "pay.md").write_text("Salaries are paid monthly. Tea is free.\n")
    (hr / "pay.md.meta.json").write_text('{"year": 2025}')
    for n in range(6):
        (other / f"tea{n}.md").write_text(f"Green tea wants water at 80 degrees, note {n}; tea temperature matters.\n")
    settings = Settings(store=base / "store", k=2)
    ingest([hr], settings.model_copy(update={"meta": {"department": "hr", "year": 2024}}), embeddings=embeddings)
    ingest([other], settings, embeddings=embeddings)
    return settings


@pytest.fixture(scope="module")
def client(settings: Settings, embeddings: LocalEmbeddings) -> TestClient:
    return TestClient(create_app(settings, api_key=None, embeddings=embeddings))


def retrieve(client: TestClient, mode: str, filters: dict[str, Any]) -> list[str]:
    response = client.post("/v1/retrieve", json={"query": QUERY, "mode": mode, "filters": filters})
    assert response.status_code == 200, response.text
    return [row["source"] for row in response.json()["results"]]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_fields_and_where_in_every_mode(client: TestClient, mode: str) -> None:
    assert set(retrieve(client, mode, {})) <= {f"tea{n}.md" for n in range(6)}
    assert sorted(retrieve(client, mode, {"fields": {"department": "hr"}})) == ["leave.md", "pay.md"]
    assert retrieve(client, mode, {"where": {"year": {"$gte": 2025}}}) == ["pay.md"]
    assert retrieve(client, mode, {"fields": {"department": "hr"}, "where": {"year": 2024}}) == ["leave.md"]


@pytest.mark.parametrize(
    "filters",
    [{"where": {"year": ["a"]}}, {"where": {"$and": [{"a": 1}]}}, {"fields": {"a": None}}, {"fields": {"a": [1]}}],
)
def test_bad_filters_are_422(client: TestClient, filters: dict[str, Any]) -> None:
    response = client.post("/v1/retrieve", json={"query": QUERY, "filters": filters})
    assert response.status_code == 422, response.text


def test_the_schema_shows_both(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Filters"]["properties"]
    assert {"fields", "where"} <= set(schema)


def call_search(settings: Settings, embeddings: LocalEmbeddings, arguments: dict[str, Any]) -> Any:
    server = build_mcp(settings, warm=WarmRetrievers(settings, embeddings=embeddings))

    async def go() -> Any:
        async with Client(server) as mcp:
            return await mcp.call_tool("search", {"query": QUERY, "k": 2, **arguments})

    return anyio.run(go)


def test_mcp_search_filters(settings: Settings, embeddings: LocalEmbeddings) -> None:
    result = call_search(settings, embeddings, {"mode": "bm25", "fields": {"department": "hr"}})
    assert not result.is_error, result.content
    assert sorted(row["source"] for row in result.structured_content["result"]) == ["leave.md", "pay.md"]
    result = call_search(settings, embeddings, {"where": {"year": {"$gt": 2024}}})
    assert [row["source"] for row in result.structured_content["result"]] == ["pay.md"]
    bad = call_search(settings, embeddings, {"where": {"year": {"$bad": 1}}})
    assert bad.is_error and "where" in bad.content[0].text and "\n" not in bad.content[0].text


def test_a_value_no_file_has_finds_nothing(settings: Settings, embeddings: LocalEmbeddings) -> None:
    result = call_search(settings, embeddings, {"fields": {"department": "finance"}})
    assert not result.is_error and result.structured_content["result"] == []
