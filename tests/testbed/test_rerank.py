"""The /rerank stand-in answers with vLLM's (Jina-style) schema, errors and auth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from testbed.embedders import HashEmbedder
from testbed.rerank import RerankServer
from testbed.sglang import qwen_tokenizer

MODEL = "Qwen/Qwen3-Reranker-0.6B"
DOCS = ["an unrelated sentence", "what is a reranker", "something else entirely"]


@pytest.fixture
def srv() -> Iterator[RerankServer]:
    with RerankServer() as server:
        yield server


@pytest.fixture
def http(srv: RerankServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        yield client


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == response.status_code
    return body["error"]


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_response_schema_sorted_best_first(http: httpx.Client, path: str) -> None:
    body = http.post(path, json={"model": MODEL, "query": "what is a reranker", "documents": DOCS}).json()
    assert set(body) == {"id", "model", "usage", "results"}
    assert body["id"].startswith("rerank-") and body["model"] == MODEL
    results = body["results"]
    assert [set(r) for r in results] == [{"index", "document", "relevance_score"}] * 3
    assert results[0]["index"] == 1 and results[0]["relevance_score"] == pytest.approx(1.0)
    assert results[0]["document"] == {"text": "what is a reranker"}
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True) and sorted(r["index"] for r in results) == [0, 1, 2]
    pairs = ["what is a reranker" + d for d in DOCS]
    assert body["usage"] == {"total_tokens": sum(len(qwen_tokenizer().encode(p).ids) for p in pairs)}


@pytest.mark.parametrize(("top_n", "expected"), [(None, 3), (0, 3), (-1, 3), (1, 1), (2, 2), (10, 3)])
def test_top_n_follows_vllm(http: httpx.Client, top_n: int | None, expected: int) -> None:
    payload: dict[str, Any] = {"query": "q", "documents": DOCS}
    if top_n is not None:
        payload["top_n"] = top_n
    assert len(http.post("/rerank", json=payload).json()["results"]) == expected


def test_return_documents_false_leaves_them_out(http: httpx.Client) -> None:
    results = http.post("/rerank", json={"query": "q", "documents": DOCS, "return_documents": False}).json()["results"]
    assert [set(r) for r in results] == [{"index", "relevance_score"}] * 3


def test_unknown_fields_are_kept_quietly(http: httpx.Client) -> None:
    assert http.post("/rerank", json={"query": "q", "documents": DOCS, "rank_fields": ["text"]}).status_code == 200


def test_another_model_is_a_404(http: httpx.Client) -> None:
    response = http.post("/rerank", json={"model": "BAAI/bge-reranker-v2-m3", "query": "q", "documents": DOCS})
    assert response.status_code == 404
    assert error(response) == {
        "message": "The model `BAAI/bge-reranker-v2-m3` does not exist.",
        "type": "NotFoundError",
        "param": "model",
        "code": 404,
    }


@pytest.mark.parametrize(
    ("payload", "first_error"),
    [
        ({"query": "q"}, "{'type': 'missing', 'loc': ('body', 'documents'), 'msg': 'Field required'"),
        ({"query": "q", "documents": [1]}, "{'type': 'string_type', 'loc': ('body', 'documents', 0)"),
        ({"query": "q", "documents": DOCS, "top_n": "many"}, "{'type': 'int_parsing', 'loc': ('body', 'top_n')"),
    ],
)
def test_schema_errors_are_400s(http: httpx.Client, payload: dict[str, Any], first_error: str) -> None:
    response = http.post("/rerank", json=payload)
    err = error(response)
    assert (response.status_code, err["type"]) == (400, "BadRequestError")
    assert err["message"].startswith("1 validation error:\n  " + first_error)
    assert "\n  Endpoint: POST /rerank [{" in err["message"]


def test_content_type_must_be_json(http: httpx.Client) -> None:
    response = http.post(
        "/rerank", content=b'{"query": "q", "documents": ["a"]}', headers={"content-type": "text/plain"}
    )
    text = "Unsupported Media Type: Only 'application/json' is allowed"
    assert response.status_code == 400 and error(response)["message"] == f'1 validation error:\n  {text} ["{text}"]'


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"query": " ", "documents": DOCS}, "query must not be empty"),
        ({"query": "q", "documents": []}, "documents must not be empty"),
        ({"query": "q", "documents": ["a", "\n"]}, "document at index 1 is empty"),
    ],
)
def test_blank_inputs_are_refused(srv: RerankServer, http: httpx.Client, payload: dict[str, Any], message: str) -> None:
    response = http.post("/rerank", json=payload)
    assert response.status_code == 400 and error(response)["message"] == message


def test_only_v1_paths_need_the_key() -> None:
    with RerankServer(api_key="k") as srv, httpx.Client(base_url=srv.url) as http:
        payload = {"query": "q", "documents": DOCS}
        denied = http.post("/v1/rerank", json=payload)
        assert (denied.status_code, denied.json()) == (401, {"error": "Unauthorized"})
        assert http.post("/v1/rerank", json=payload, headers={"authorization": "Bearer k"}).status_code == 200
        assert http.post("/rerank", json=payload).status_code == 200  # vLLM guards /v1 only
        assert http.get("/health").status_code == 200


def test_routing(http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200
    assert http.get("/rerank").status_code == 405
    assert http.post("/v1/embeddings", json={}).json() == {"detail": "Not Found"}


def test_faults_and_recording(srv: RerankServer, http: httpx.Client) -> None:
    payload = {"query": "q", "documents": DOCS}
    srv.fail_next(1, "503")
    srv.fail_next(1, "drop")
    response = http.post("/rerank", json=payload)
    assert response.status_code == 503 and error(response)["type"] == "ServiceUnavailableError"
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/rerank", json=payload)
    assert http.get("/health").status_code == 200  # faults hit work paths only
    assert http.post("/v2/rerank", json=payload).status_code == 200
    assert [(r.path, r.json) for r in srv.requests] == [
        ("/rerank", payload),
        ("/v1/rerank", payload),
        ("/health", None),
        ("/v2/rerank", payload),
    ]


def test_scorer_and_embedder_hooks() -> None:
    calls: list[tuple[str, list[str], str | None]] = []

    def shortest_first(query: str, documents: list[str], instruct: str | None) -> list[float]:
        calls.append((query, documents, instruct))
        return [-float(len(d)) for d in documents]

    with RerankServer(scorer=shortest_first) as srv, httpx.Client(base_url=srv.url) as http:
        results = http.post("/rerank", json={"query": "q", "documents": DOCS}).json()["results"]
        assert [r["index"] for r in results] == [1, 0, 2] and calls == [("q", DOCS, None)]
    with RerankServer(embedder=HashEmbedder(dim=8)) as srv, httpx.Client(base_url=srv.url) as http:
        results = http.post("/rerank", json={"query": DOCS[2], "documents": DOCS}).json()["results"]
        assert results[0]["index"] == 2 and results[0]["relevance_score"] == pytest.approx(1.0)


def test_parallel_requests() -> None:
    with RerankServer(latency_s=0.3) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:

        def rank(i: int) -> int:
            response = http.post("/rerank", json={"query": f"doc {i}", "documents": [f"doc {j}" for j in range(20)]})
            return response.json()["results"][0]["index"]

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            assert list(pool.map(rank, range(20))) == list(range(20))
        assert time.monotonic() - started < 3  # 20 x 0.3 s in series would be 6 s
