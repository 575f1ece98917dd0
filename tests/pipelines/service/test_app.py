"""The retrieval service: answers, limits, errors and the API key, in-process and over real uvicorn servers."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.passages import PLACES, SPANS
from pipelines.service.app import create_app
from pipelines.service.run import serve, serve_in_background
from pipelines.settings import Mode, OnMismatch, Settings
from pipelines.store.chroma import IndexSignature, open_store
from testbed.rerank import RerankServer
from tests.conftest import REPO, SAMPLES

KEY = "test-key-7f3a9c"
AI = "什么是人工智能？"


@pytest.fixture(scope="module")
def embeddings() -> LocalEmbeddings:
    return LocalEmbeddings()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, embeddings: LocalEmbeddings) -> Settings:
    # Dense: these tests hold the tutorial's cosine answers; hybrid (the default) is asked for per request below.
    settings = Settings(store=tmp_path_factory.mktemp("service") / "store", k=3, mode=Mode.DENSE)
    ingest([SAMPLES], settings, embeddings=embeddings, progress=False)
    return settings


@pytest.fixture(scope="module")
def client(settings: Settings, embeddings: LocalEmbeddings) -> TestClient:
    return TestClient(create_app(settings, api_key=None, embeddings=embeddings))


@pytest.fixture(scope="module")
def locked_url(settings: Settings, embeddings: LocalEmbeddings) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 that needs the key."""
    with serve_in_background(create_app(settings, api_key=KEY, embeddings=embeddings)) as url:
        yield url


@pytest.fixture(scope="module")
def open_url(settings: Settings, embeddings: LocalEmbeddings) -> Iterator[str]:
    with serve_in_background(create_app(settings, api_key=None, embeddings=embeddings)) as url:
        yield url


def sources(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["source"] for r in response.json()["results"]]


# -- answers -----------------------------------------------------------------------------------------------------


def test_the_tutorial_query_finds_machine_and_deep_learning(client: TestClient) -> None:
    response = client.post("/v1/retrieve", json={"query": AI, "k": 2})
    assert set(sources(response)) == {"ml.txt", "dl.txt"}
    body = response.json()
    assert body["query"] == AI and body["mode"] == "dense" and body["took_ms"] > 0
    first, second = body["results"]
    assert set(first) == {"text", "source", "file_type", "page", "start_index", "score", *PLACES, "boxes", SPANS}
    assert first["file_type"] == "text" and all(first[key] is None for key in (*PLACES, "boxes", SPANS))
    assert first["source"] == "ml.txt" and "机器学习" in first["text"]
    assert first["page"] is None and first["start_index"] == 0
    assert first["score"] >= second["score"] > 0


def test_k_defaults_to_the_services_and_modes_are_reported(client: TestClient) -> None:
    assert len(sources(client.post("/v1/retrieve", json={"query": "weekend rain"}))) == 3
    for mode in ("dense", "bm25", "hybrid"):
        response = client.post("/v1/retrieve", json={"query": "binary search 二分查找", "k": 1, "mode": mode})
        assert sources(response) == ["binary_search.md"], mode
        assert response.json()["mode"] == mode


def test_filters_and_min_score(client: TestClient) -> None:
    only_markdown = client.post("/v1/retrieve", json={"query": AI, "k": 5, "filters": {"source": "*.md"}})
    assert set(sources(only_markdown)) == {"binary_search.md"}
    by_type = client.post("/v1/retrieve", json={"query": AI, "k": 5, "filters": {"file_type": "html"}})
    assert sources(by_type) == ["weather.html"]
    nothing = client.post("/v1/retrieve", json={"query": AI, "filters": {"source": "no-such-*"}})
    assert sources(nothing) == []
    reversed_pages = client.post("/v1/retrieve", json={"query": AI, "filters": {"page_from": 5, "page_to": 2}})
    assert sources(reversed_pages) == []  # an empty range
    everything = client.post("/v1/retrieve", json={"query": AI, "k": 9}).json()["results"]
    cut = everything[1]["score"]
    strict = client.post("/v1/retrieve", json={"query": AI, "k": 9, "min_score": cut})
    assert strict.json()["results"] == [r for r in everything if r["score"] >= cut]
    assert len(strict.json()["results"]) < len(everything)


def test_rerank_uses_the_services_reranker_only_when_asked(settings: Settings, embeddings: LocalEmbeddings) -> None:
    # The reranker puts deep learning first, against the dense order.
    with RerankServer(scorer=lambda query, docs, instruct: [float("深度" in d) for d in docs]) as reranker:
        app = create_app(settings.model_copy(update={"rerank_url": reranker.url}), api_key=None, embeddings=embeddings)
        client = TestClient(app)
        assert sources(client.post("/v1/retrieve", json={"query": AI, "k": 2})) == ["ml.txt", "dl.txt"]
        assert not reranker.requests
        for _ in range(2):
            reranked = client.post("/v1/retrieve", json={"query": AI, "k": 2, "rerank": True})
            assert sources(reranked)[0] == "dl.txt"
        assert len(reranker.requests) == 2


# -- limits: 422 with a reason -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": " \n\t "}, "query"),
        ({"query": "x" * 5000}, "query"),
        ({"query": AI, "k": 0}, "k"),
        ({"query": AI, "k": 101}, "k"),
        ({"query": AI, "mode": "sparse"}, "mode"),
        ({"query": AI, "min_score": 2}, "min_score"),
        ({"query": AI, "filters": {"page_from": 0}}, "page_from"),
        ({"query": AI, "top_k": 3}, "top_k"),
        ({"query": AI, "k": "2"}, "k"),  # strict: what the schema says, no coercion
        ({"query": AI, "k": 2.5}, "k"),
        ({"query": AI, "rerank": 0}, "rerank"),
        ({"query": 42}, "query"),
        ({}, "query"),
    ],
)
def test_bad_requests_are_422_with_a_reason(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/v1/retrieve", json=body)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(field in map(str, e["loc"]) and e["msg"] for e in errors), errors
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)  # the bad input is not echoed back


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (rb'{"query": "ab\udbd4cd"}', "query"),
        (rb'{"query": "\udc00"}', "query"),
        (rb'{"query": "x", "filters": {"source": "\ud800*"}}', "source"),
        (rb'{"query": "x", "filters": {"file_type": "\ud800"}}', "file_type"),
    ],
)
def test_lone_surrogates_are_422_not_500(client: TestClient, raw: bytes, field: str) -> None:
    response = client.post("/v1/retrieve", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert field in response.json()["detail"][0]["loc"]
    assert "unicode" in response.json()["detail"][0]["msg"].lower()


def test_a_surrogate_pair_is_an_ordinary_character(client: TestClient) -> None:
    raw = rb'{"query": "\ud83d\ude00 AI", "k": 1}'
    response = client.post("/v1/retrieve", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["query"] == "😀 AI"


@pytest.mark.slow
def test_the_limits_themselves_are_allowed(client: TestClient) -> None:
    assert len(sources(client.post("/v1/retrieve", json={"query": "天" * 4000, "k": 1}))) == 1
    assert len(sources(client.post("/v1/retrieve", json={"query": AI, "k": 100}))) == 9  # the whole collection
    assert len(sources(client.post("/v1/retrieve", json={"query": AI, "k": 2.0}))) == 2  # JSON Schema's integer


def test_a_body_that_is_not_json_is_422_and_not_utf8_400(client: TestClient) -> None:
    response = client.post("/v1/retrieve", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    response = client.post("/v1/retrieve", content=b'{"query": "\xff"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"detail": "There was an error parsing the body"}


# -- errors the user can fix: one line, never a 500 --------------------------------------------------------------


def test_no_collection_yet_is_409_saying_to_ingest(tmp_path: Path, embeddings: LocalEmbeddings) -> None:
    client = TestClient(create_app(Settings(store=tmp_path / "empty"), api_key=None, embeddings=embeddings))
    assert client.get("/health").json() == {"status": "ok", "collection": "default", "chunks": 0}
    response = client.post("/v1/retrieve", json={"query": AI})
    assert response.status_code == 409
    assert "run `qwen-rag ingest` first" in response.json()["detail"]
    assert "\n" not in response.json()["detail"]


def test_a_collection_of_another_model_is_409(tmp_path: Path, embeddings: LocalEmbeddings) -> None:
    settings = Settings(store=tmp_path / "other")
    open_store(settings).collection("default", IndexSignature("Qwen/Qwen3-Embedding-8B", 4096, ""), OnMismatch.FAIL)
    response = TestClient(create_app(settings, api_key=None, embeddings=embeddings)).post(
        "/v1/retrieve", json={"query": AI}
    )
    assert response.status_code == 409
    assert "was built with Qwen/Qwen3-Embedding-8B" in response.json()["detail"]


def test_rerank_without_a_reranker_is_409(client: TestClient) -> None:
    response = client.post("/v1/retrieve", json={"query": AI, "rerank": True})
    assert response.status_code == 409
    assert "--rerank-url" in response.json()["detail"]


def test_an_unreachable_embedding_server_is_503(settings: Settings) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = settings.model_copy(update={"embeddings_url": [f"http://127.0.0.1:{port}/v1"]})
    response = TestClient(create_app(down, api_key=None)).post("/v1/retrieve", json={"query": AI})
    assert response.status_code == 503
    assert "cannot reach the embedding server" in response.json()["detail"]


def test_an_unreachable_chroma_server_is_503(embeddings: LocalEmbeddings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = TestClient(
        create_app(Settings(chroma_url=f"http://127.0.0.1:{port}"), api_key=None, embeddings=embeddings)
    )
    for response in (client.get("/health"), client.post("/v1/retrieve", json={"query": AI})):
        assert response.status_code == 503
        assert response.json()["detail"].startswith("store: cannot reach the Chroma server")


# -- the API key, over a real server -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}, {"Authorization": f"Bearer {KEY}x"}],
)
def test_without_the_right_key_only_a_401(locked_url: str, headers: dict[str, str]) -> None:
    # The search page and the docs shell are public (they hold no data and ask for the key); the data is not.
    for method, path in [("POST", "/v1/retrieve"), ("GET", "/openapi.json"), ("POST", "/mcp")]:
        response = httpx.request(method, locked_url + path, json={"query": AI}, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "missing or wrong API key"}


def test_with_the_key_everything_answers(locked_url: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    response = httpx.post(f"{locked_url}/v1/retrieve", json={"query": AI, "k": 2}, headers=auth)
    assert set(sources(response)) == {"ml.txt", "dl.txt"}
    assert httpx.get(f"{locked_url}/openapi.json", headers=auth).json()["info"]["title"] == "qwen-rag"
    assert httpx.get(f"{locked_url}/docs", headers=auth).status_code == 200
    assert "<title>qwen-rag search</title>" in httpx.get(f"{locked_url}/", headers=auth).text
    assert httpx.get(f"{locked_url}/no-such-page", headers=auth).status_code == 404


def test_health_never_needs_the_key(locked_url: str) -> None:
    response = httpx.get(f"{locked_url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "collection": "default", "chunks": 9}


def test_50_concurrent_requests_all_succeed_with_the_sequential_answers(open_url: str) -> None:
    queries = [AI, "how to implement binary search", "weekend rain", "绿茶", "SQL 注入", "python list"]
    with httpx.Client(base_url=open_url) as client:
        expected = {q: client.post("/v1/retrieve", json={"query": q}).json()["results"] for q in queries}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=open_url, timeout=60) as client:
            calls = [client.post("/v1/retrieve", json={"query": queries[i % len(queries)]}) for i in range(50)]
            return await asyncio.gather(*calls)

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 50
    for i, response in enumerate(responses):
        assert response.json()["results"] == expected[queries[i % len(queries)]]


# -- the page and serve() ----------------------------------------------------------------------------------------


def test_the_page_knows_the_defaults_and_allows_only_its_own_script(client: TestClient) -> None:
    response = client.get("/")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    config = "{&quot;k&quot;: 3, &quot;mode&quot;: &quot;dense&quot;, &quot;needs_key&quot;: false}"
    assert f'content="{config}"' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy and "unsafe-inline" not in policy


def test_serve_warns_when_open_to_the_network_without_a_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    started: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **where: started.append(where))
    for host, key in [("127.0.0.1", None), ("::1", None), ("localhost", None), ("0.0.0.0", "k"), ("0.0.0.0", None)]:
        serve(settings, host=host, port=8123, api_key=key)
    assert [w["host"] for w in started] == ["127.0.0.1", "::1", "localhost", "0.0.0.0", "0.0.0.0"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "pipelines.service.run"]
    assert warnings == ["serving on 0.0.0.0 without --api-key: anyone who can reach it can read the whole index"]


@pytest.mark.slow
def test_serve_runs_uvicorn_on_loopback(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from pipelines.service.run import serve; from pipelines.settings import Settings; "
        f"serve(Settings(store={str(settings.store)!r}), port={port}, api_key='k')"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline, "serve() did not start"
                time.sleep(0.2)
        assert health.json()["chunks"] == 9
        assert httpx.post(f"http://127.0.0.1:{port}/v1/retrieve", json={"query": AI}).status_code == 401
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/retrieve", json={"query": AI, "k": 1}, headers={"Authorization": "Bearer k"}
        )
        assert sources(answer) == ["ml.txt"]
    finally:
        process.terminate()
        process.wait(timeout=10)
