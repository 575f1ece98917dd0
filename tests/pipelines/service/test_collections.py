"""Many collections behind one service: a collection per request on the REST API and MCP, keys scoped to collections
on both, the bound on warm retrievers, and every new route in the docs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipelines.embeddings import Provider, make_embeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.warm import WarmRetrievers
from pipelines.service.app import create_app
from pipelines.service.keys import Keys
from pipelines.settings import Mode, Settings
from tests.conftest import SAMPLES

NOTES_KEY, ADMIN_KEY = "notes-key-51c0a9", "admin-key-e2b7d4"
TEA = "绿茶用几度的水冲泡？"


@pytest.fixture(scope="module")
def provider() -> Provider:
    return make_embeddings(Settings())


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> Settings:
    """The demo corpus as ``default``; two one-file collections beside it."""
    settings = Settings(store=tmp_path_factory.mktemp("collections") / "store", mode=Mode.DENSE)
    ingest([SAMPLES], settings, embeddings=provider, progress=False)
    for name, text in (("notes", "绿茶最好用八十度的水冲泡。"), ("recipes", "红烧肉要小火慢炖一个小时。")):
        folder = tmp_path_factory.mktemp(name)
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        ingest([folder], settings.model_copy(update={"collection": name}), embeddings=provider, progress=False)
    return settings


@pytest.fixture(scope="module")
def client(settings: Settings, provider: Provider) -> Iterator[TestClient]:
    keys = Keys({NOTES_KEY: ["notes"], ADMIN_KEY: "*"})
    app = create_app(settings, api_key=None, keys=keys, embeddings=provider)
    # The lifespan runs MCP; a loopback Host, as the MCP endpoint refuses others on a loopback service.
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_request_picks_its_collection(client: TestClient) -> None:
    response = client.post(
        "/v1/retrieve", json={"query": TEA, "k": 1, "collection": "notes"}, headers=bearer(NOTES_KEY)
    )
    assert response.status_code == 200, response.text
    assert [r["source"] for r in response.json()["results"]] == ["notes.txt"]
    default = client.post("/v1/retrieve", json={"query": TEA, "k": 1}, headers=bearer(ADMIN_KEY))
    assert default.json()["results"][0]["source"] != "notes.txt"  # the service's own collection


def test_a_scoped_key_is_refused_other_collections_and_lists_only_its_own(client: TestClient) -> None:
    for name in (None, "recipes", "no-such-collection"):  # the default, another, and none: all the same 403
        body: dict[str, Any] = {"query": TEA} | ({"collection": name} if name else {})
        response = client.post("/v1/retrieve", json=body, headers=bearer(NOTES_KEY))
        assert response.status_code == 403 and response.json() == {"detail": "this key may not read that collection"}
    listed = client.get("/v1/collections", headers=bearer(NOTES_KEY)).json()["collections"]
    assert listed == [{"name": "notes", "chunks": 1, "model": listed[0]["model"], "dimension": 384, "task": None}]
    every = client.get("/v1/collections", headers=bearer(ADMIN_KEY)).json()["collections"]
    assert [c["name"] for c in every] == ["default", "notes", "recipes"]
    missing = client.post("/v1/retrieve", json={"query": TEA, "collection": "no-such"}, headers=bearer(ADMIN_KEY))
    assert missing.status_code == 409 and "no collection 'no-such'" in missing.json()["detail"]


def mcp_call(client: TestClient, key: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    headers = bearer(key) | {"Accept": "application/json, text/event-stream"}
    response = client.post("/mcp", json=message, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def test_mcp_tools_see_only_what_the_key_may_read(client: TestClient) -> None:
    found = mcp_call(client, NOTES_KEY, "search", {"query": TEA, "k": 1, "collection": "notes"})
    assert not found["isError"] and found["structuredContent"]["result"][0]["source"] == "notes.txt"
    for tool, arguments, name in (
        ("search", {"query": TEA}, "default"),
        ("read", {"source": "recipes.txt", "collection": "recipes"}, "recipes"),
    ):
        refused = mcp_call(client, NOTES_KEY, tool, arguments)
        assert refused["isError"]
        assert refused["content"][0]["text"] == (
            f"Error executing tool {tool}: no collection '{name}' for this key: call collections for those it may read"
        )
    listed = mcp_call(client, NOTES_KEY, "collections", {})["structuredContent"]["result"]
    assert [c["name"] for c in listed] == ["notes"]
    every = mcp_call(client, ADMIN_KEY, "collections", {})["structuredContent"]["result"]
    assert [c["name"] for c in every] == ["default", "notes", "recipes"]


def test_mcp_search_takes_a_window(client: TestClient) -> None:
    plain = mcp_call(client, ADMIN_KEY, "search", {"query": "二分查找", "k": 1, "mode": "bm25"})
    windowed = mcp_call(client, ADMIN_KEY, "search", {"query": "二分查找", "k": 1, "mode": "bm25", "window": 2})
    [hit], [around] = plain["structuredContent"]["result"], windowed["structuredContent"]["result"]
    assert hit["spans"] is None and around["source"] == hit["source"]
    [(start, end)] = around["spans"]
    assert around["text"][start:end] == hit["text"] and len(around["text"]) >= len(hit["text"])


def test_the_docs_show_every_new_route_with_its_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json", headers=bearer(ADMIN_KEY)).json()
    for path in ("/retrieval", "/v1/retrieval"):
        operation = spec["paths"][path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/RetrievalRequest"
        }
        assert {"200", "400", "403", "404", "422"} <= operation["responses"].keys()
    listing = spec["paths"]["/v1/collections"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listing == {"$ref": "#/components/schemas/Collections"}
    schemas = spec["components"]["schemas"]
    assert {"collection", "window"} <= schemas["RetrieveRequest"]["properties"].keys()
    assert "spans" in schemas["Passage"]["properties"]
    assert {"knowledge_id", "query", "retrieval_setting", "metadata_condition"} == set(
        schemas["RetrievalRequest"]["properties"]
    )
    assert "≥" in str(schemas["DifyCondition"]["properties"]["comparison_operator"])


def test_warm_retrievers_keep_only_the_most_recently_used(settings: Settings, provider: Provider) -> None:
    warm = WarmRetrievers(settings, embeddings=provider, limit=2)
    first = warm.get("default")
    assert warm.get("default") is first  # warm: the same retriever, not a new one
    warm.get("notes")
    warm.get("default")  # used again: now the most recent
    warm.get("recipes")  # a third: the least recently used (notes) goes
    assert warm.warm() == ["default", "recipes"]
    assert warm.get("default") is first
    with pytest.raises(ValueError, match="limit must be at least 1"):
        WarmRetrievers(settings, limit=0)
