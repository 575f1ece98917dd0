"""Dify's External Knowledge API, driven exactly as Dify's own client drives it, against ``qwen-rag serve --keys``
served by uvicorn on 127.0.0.1 over two collections (``hr-policies``, ``engineering``) with keys scoped to each.

The client is a port of ``ExternalDatasetService.fetch_external_knowledge_retrieval`` (and the ``process_external_api``
it calls) in langgenius/dify ``api/services/external_knowledge_service.py``: the same headers, the same body (the
threshold only when enabled, ``metadata_condition`` only when given, as ``MetadataCondition.model_dump()`` writes it),
sent as a JSON string with redirects followed, and the records read from a 200 only. Its registration check
(``check_endpoint_and_api_key`` in the same file) is ported too.

The user metadata (department, year, title, created) are written onto the chunks with Chroma's ``update`` in the
fixture: ingest's own ``--meta`` and sidecars (issue 18's metadata half) land separately.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from pipelines.embeddings import Provider, make_embeddings
from pipelines.ingestion.writer import ingest
from pipelines.service.app import create_app
from pipelines.service.keys import Keys
from pipelines.service.run import serve_in_background
from pipelines.settings import Mode, Settings
from pipelines.store.chroma import open_store

HR, ENG = "hr-policies", "engineering"
HR_KEY, ENG_KEY, ADMIN_KEY = "hr-key-3b8f1c2d9e", "eng-key-77a0e4b1c5", "admin-key-0d6e2f9a41"
#: Per file of the HR collection: the user's own metadata (None: the field is left out).
HR_FILES: dict[str, tuple[str, dict[str, Any]]] = {
    "annual_leave.txt": (
        "年假规定：员工每年享有十五天带薪年假，入职满一年后开始计算。Annual leave: every employee has fifteen days "
        "of paid leave a year, counted from the first anniversary of joining.",
        {"department": "hr", "year": 2024, "title": "Annual leave policy", "created": "2024-03-01"},
    ),
    "expenses.md": (
        "# 差旅报销\n\n出差的交通和住宿费用凭发票在三十天内报销。Travel expenses: transport and hotel costs are "
        "reimbursed against receipts within thirty days.",
        {"department": "finance", "year": 2021, "title": "Travel expenses", "created": "2021-06-15T09:30:00+08:00"},
    ),
    "handbook.txt": (
        "员工手册（旧版）：办公室开放时间为早上八点到晚上八点。Employee handbook (old): the office is open from "
        "eight in the morning to eight in the evening.",
        {"year": 2019, "created": "2019-01-10"},
    ),
}
ENG_FILES = {
    "deploy.md": "# 部署\n\n服务通过流水线部署到生产环境，先发布到预发环境验证。Deploys go through the pipeline to "
    "production, after a staging check.",
}
#: A long file of the engineering collection: one distinct word per paragraph, so that a search hits the middle.
WORDS = [
    "albatross", "badger", "cheetah", "dolphin", "elephant", "falcon", "gazelle", "hedgehog", "iguana", "jaguar",
    "koala", "lemur", "meerkat", "narwhal", "ocelot", "pelican", "quokka", "raccoon", "salamander", "tapir",
    "urchin", "vulture", "walrus", "xerus", "yak", "zebra",
]  # fmt: skip
RUNBOOK = [
    f"第{i}步：值班工程师检查{word}服务的告警。Step {i}: the on-call engineer checks the {word} service alerts "
    f"and writes the result in the incident log."
    for i, word in enumerate(WORDS, 1)
]


# -- Dify's client, ported ---------------------------------------------------------------------------------------


def dify_fetch(
    api: dict[str, str],
    knowledge_id: str,
    query: str,
    external_retrieval_parameters: dict[str, Any],
    metadata_condition: dict[str, Any] | None = None,
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """``fetch_external_knowledge_retrieval``: ``api`` is the registered External Knowledge API's settings
    (``endpoint``, ``api_key``); returns the response and the records Dify would read from it."""
    headers = {"Content-Type": "application/json"}
    if api.get("api_key"):
        headers["Authorization"] = f"Bearer {api.get('api_key')}"
    score_threshold_enabled = external_retrieval_parameters.get("score_threshold_enabled") or False
    score_threshold = external_retrieval_parameters.get("score_threshold", 0.0) if score_threshold_enabled else 0.0
    request_params: dict[str, Any] = {
        "retrieval_setting": {"top_k": external_retrieval_parameters.get("top_k"), "score_threshold": score_threshold},
        "query": query,
        "knowledge_id": knowledge_id,
    }
    if metadata_condition:
        request_params["metadata_condition"] = metadata_condition
    # process_external_api: ssrf_proxy.post(data=json.dumps(params), files=None, url=..., headers=...,
    # follow_redirects=True); httpx sends a str `data` as the body as it is, which `content=` says without a warning.
    response = httpx.post(
        f"{api.get('endpoint')}/retrieval",
        content=json.dumps(request_params),
        headers=headers,
        follow_redirects=True,
        timeout=120,
    )
    if response.status_code == 200:
        return response, list(response.json().get("records", []))
    return response, []


def condition(logical_operator: str | None, *conditions: tuple[str, str, Any]) -> dict[str, Any]:
    """``MetadataCondition(...).model_dump()``: every field written, ``value`` None where not given."""
    return {
        "logical_operator": logical_operator,
        "conditions": [{"name": n, "comparison_operator": op, "value": v} for n, op, v in conditions],
    }


def dify_registration_error(endpoint: str, api_key: str) -> str | None:
    """``check_endpoint_and_api_key``: the error Dify shows when the API is registered, or None (saved)."""
    response = httpx.post(f"{endpoint}/retrieval", headers={"Authorization": f"Bearer {api_key}"})
    if response.status_code == 502:
        return "Bad Gateway"
    if response.status_code == 404:
        return "Not Found"
    if response.status_code == 403:
        return "Forbidden: Authorization failed"
    return None


# -- the service -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider() -> Provider:
    return make_embeddings(Settings())


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> Settings:
    """Two collections: one chunk per HR file; small chunks for engineering, so that the runbook is a long file."""
    base = Settings(store=tmp_path_factory.mktemp("dify") / "store", mode=Mode.DENSE)
    small = {"chunk_tokens": 64, "chunk_overlap": 16}
    hr, eng = tmp_path_factory.mktemp("hr"), tmp_path_factory.mktemp("eng")
    for name, (text, _) in HR_FILES.items():
        (hr / name).write_text(text + "\n", encoding="utf-8")
    for name, text in ENG_FILES.items():
        (eng / name).write_text(text + "\n", encoding="utf-8")
    (eng / "runbook.txt").write_text("\n\n".join(RUNBOOK) + "\n", encoding="utf-8")
    for folder, update in ((hr, {"collection": HR}), (eng, {"collection": ENG, **small})):
        report = ingest([folder], base.model_copy(update=update), embeddings=provider, progress=False)
        assert report.failed == 0, report.problems
    collection = open_store(base).existing(HR)
    assert collection is not None
    got = collection.get(include=["metadatas"])
    metadatas = [{**(meta or {}), **HR_FILES[str((meta or {})["source"])][1]} for meta in got["metadatas"] or []]
    collection.update(ids=got["ids"], metadatas=metadatas)
    return base


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.toml"
    path.write_text(f'[keys]\n"{HR_KEY}" = ["{HR}"]\n"{ENG_KEY}" = ["{ENG}"]\n"{ADMIN_KEY}" = "*"\n', encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def endpoint(settings: Settings, provider: Provider, keys_file: Path) -> Iterator[str]:
    """``qwen-rag serve --keys keys.toml``: the URL to paste into Dify as the API endpoint."""
    app = create_app(settings, api_key=None, keys=Keys.from_file(keys_file), embeddings=provider)
    with serve_in_background(app) as url:
        yield url


def hr_api(endpoint: str) -> dict[str, str]:
    return {"endpoint": endpoint, "api_key": HR_KEY}


def sources(records: list[dict[str, Any]]) -> set[str]:
    return {record["metadata"]["source"] for record in records}


# -- records -----------------------------------------------------------------------------------------------------


def test_records_answer_the_query_with_scores_in_0_1_best_first(endpoint: str) -> None:
    response, records = dify_fetch(hr_api(endpoint), HR, "每年有几天年假？", {"top_k": 3})
    assert response.status_code == 200, response.text
    assert len(records) == 3
    best = records[0]
    assert best["metadata"]["source"] == "annual_leave.txt" and "十五天" in best["content"]
    assert best["title"] == "Annual leave policy"  # the document's title, not its file name
    scores = [record["score"] for record in records]
    assert all(0 <= score <= 1 for score in scores) and scores == sorted(scores, reverse=True)
    # metadata: an object with the citation and the user's fields, none of the store's bookkeeping
    assert best["metadata"]["start_index"] == 0
    assert {"department": "hr", "year": 2024, "file_type": "text"}.items() <= best["metadata"].items()
    assert not {"root", "file_hash", "chunk", "chunk_hash", "score"} & best["metadata"].keys()
    handbook = next(record for record in records if record["metadata"]["source"] == "handbook.txt")
    assert handbook["title"] == "handbook.txt"  # no title: the file name


def test_score_threshold_applies_only_when_enabled(endpoint: str) -> None:
    _, every = dify_fetch(hr_api(endpoint), HR, "每年有几天年假？", {"top_k": 3})
    cut = (every[0]["score"] + every[1]["score"]) / 2  # between the best and the second
    parameters = {"top_k": 3, "score_threshold": cut}
    _, disabled = dify_fetch(hr_api(endpoint), HR, "每年有几天年假？", parameters)
    _, enabled = dify_fetch(hr_api(endpoint), HR, "每年有几天年假？", parameters | {"score_threshold_enabled": True})
    assert len(disabled) == 3
    assert [record["metadata"]["source"] for record in enabled] == ["annual_leave.txt"]


def test_hybrid_scores_lie_in_0_1_and_take_the_threshold(settings: Settings, provider: Provider) -> None:
    """The default mode: the fused score (pipelines/retrieve/fusion.py) is what Dify compares with its threshold."""
    client = TestClient(
        create_app(settings.model_copy(update={"mode": Mode.HYBRID}), api_key=None, embeddings=provider)
    )
    body = {"knowledge_id": HR, "query": "年假有几天", "retrieval_setting": {"top_k": 3, "score_threshold": 0.0}}
    records = client.post("/retrieval", json=body).json()["records"]
    scores = [record["score"] for record in records]
    assert len(scores) == 3 and all(0 <= s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    assert records[0]["metadata"]["source"] == "annual_leave.txt"
    cut = (scores[0] + scores[1]) / 2
    body["retrieval_setting"] = {"top_k": 3, "score_threshold": cut}
    assert [r["score"] for r in client.post("/retrieval", json=body).json()["records"]] == scores[:1]


def test_a_key_reads_its_own_collection(endpoint: str) -> None:
    response, records = dify_fetch(
        {"endpoint": endpoint, "api_key": ENG_KEY}, ENG, "how do deploys reach production?", {"top_k": 1}
    )
    assert response.status_code == 200 and sources(records) == {"deploy.md"}
    _, both = dify_fetch({"endpoint": endpoint, "api_key": ADMIN_KEY}, HR, "年假", {"top_k": 1})
    assert sources(both) == {"annual_leave.txt"}


# -- errors ------------------------------------------------------------------------------------------------------


def test_no_key_wrong_key_and_unknown_knowledge_answer_dify_codes(endpoint: str) -> None:
    response, records = dify_fetch({"endpoint": endpoint, "api_key": ""}, HR, "年假", {"top_k": 3})  # no header
    assert (response.status_code, response.json()["error_code"], records) == (403, 1001, [])
    response, _ = dify_fetch({"endpoint": endpoint, "api_key": "Basic abc"}, HR, "年假", {"top_k": 3})
    assert (response.status_code, response.json()["error_code"]) == (403, 1002)  # "Bearer Basic abc": a wrong key
    response, _ = dify_fetch({"endpoint": endpoint, "api_key": HR_KEY + "x"}, HR, "年假", {"top_k": 3})
    assert (response.status_code, response.json()["error_code"]) == (403, 1002)
    response, _ = dify_fetch({"endpoint": endpoint, "api_key": ADMIN_KEY}, "no-such-kb", "年假", {"top_k": 3})
    assert (response.status_code, response.json()["error_code"]) == (404, 2001)
    assert set(response.json()) == {"error_code", "error_msg"}


def test_a_key_may_not_read_another_collection_and_learns_nothing_of_it(endpoint: str) -> None:
    for knowledge in (ENG, "no-such-kb"):  # another key's collection, and none at all: the same answer
        response, records = dify_fetch(hr_api(endpoint), knowledge, "部署", {"top_k": 3})
        assert response.status_code == 403 and records == []
        assert response.json() == {
            "error_code": 1002,
            "error_msg": "Authorization failed: this key may not read this knowledge",
        }
    refused = httpx.post(
        f"{endpoint}/v1/retrieve",
        json={"query": "部署", "collection": ENG},
        headers={"Authorization": f"Bearer {HR_KEY}"},
    )
    assert refused.status_code == 403 and ENG not in refused.text and HR not in refused.text
    listed = httpx.get(f"{endpoint}/v1/collections", headers={"Authorization": f"Bearer {HR_KEY}"})
    assert [c["name"] for c in listed.json()["collections"]] == [HR]
    everything = httpx.get(f"{endpoint}/v1/collections", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert [c["name"] for c in everything.json()["collections"]] == [ENG, HR]
    assert httpx.get(f"{endpoint}/v1/collections").status_code == 401


def test_registering_in_dify_accepts_a_right_key_and_refuses_a_wrong_one(endpoint: str) -> None:
    assert dify_registration_error(endpoint, HR_KEY) is None
    assert dify_registration_error(endpoint, "not-a-key") == "Forbidden: Authorization failed"
    assert dify_registration_error(endpoint + "/v1", HR_KEY) is None  # the endpoint may end in /v1 too


# -- metadata_condition ------------------------------------------------------------------------------------------

EVERY_FILE = set(HR_FILES)


@pytest.mark.parametrize(
    ("metadata_condition", "expected"),
    [
        (condition("and", ("department", "is", "hr")), {"annual_leave.txt"}),
        (condition("and", ("department", "in", ["hr", "finance"])), {"annual_leave.txt", "expenses.md"}),
        (condition("and", ("department", "in", "hr, finance")), {"annual_leave.txt", "expenses.md"}),
        (condition("and", ("title", "contains", "leave")), {"annual_leave.txt"}),
        (condition("and", ("year", ">", 2020)), {"annual_leave.txt", "expenses.md"}),
        (condition("and", ("created", "before", "2022-01-01")), {"expenses.md", "handbook.txt"}),
        # and / or
        (condition("and", ("department", "in", ["hr", "finance"]), ("year", ">", "2022")), {"annual_leave.txt"}),
        (
            condition("or", ("department", "is", "finance"), ("created", "before", "2020-01-01")),
            {"expenses.md", "handbook.txt"},
        ),
        (condition(None, ("department", "is", "hr"), ("year", "<", 2020)), set()),  # null: and
        # the rest of Dify's list
        (condition("and", ("department", "not in", ["hr"])), {"expenses.md", "handbook.txt"}),
        (condition("and", ("department", "is not", "hr")), {"expenses.md", "handbook.txt"}),
        (condition("and", ("title", "not contains", "leave")), {"expenses.md", "handbook.txt"}),
        (condition("and", ("title", "start with", "Travel")), {"expenses.md"}),
        (condition("and", ("title", "end with", "policy")), {"annual_leave.txt"}),
        (condition("and", ("department", "empty", None)), {"handbook.txt"}),
        (condition("and", ("department", "not empty", None)), {"annual_leave.txt", "expenses.md"}),
        (condition("and", ("year", "=", 2021)), {"expenses.md"}),
        (condition("and", ("year", "≠", 2021)), {"annual_leave.txt", "handbook.txt"}),
        (condition("and", ("year", "≥", 2021)), {"annual_leave.txt", "expenses.md"}),
        (condition("and", ("year", "≤", 2021)), {"expenses.md", "handbook.txt"}),
        (condition("and", ("created", "after", 1600000000)), {"annual_leave.txt", "expenses.md"}),  # 2020-09-13
        (condition("and", ("created", "before", "2021-06-15T01:00:00Z")), {"handbook.txt"}),  # 09:30+08:00 = 01:30Z
        (condition("and", ("created", "after", "2021-06-15T01:00:00Z")), {"annual_leave.txt", "expenses.md"}),
    ],
)
def test_metadata_condition_selects_exactly_the_matching_files(
    endpoint: str, metadata_condition: dict[str, Any], expected: set[str]
) -> None:
    response, records = dify_fetch(hr_api(endpoint), HR, "公司规定", {"top_k": 10}, metadata_condition)
    assert response.status_code == 200, response.text
    assert sources(records) == expected


def test_a_condition_that_cannot_apply_is_a_400_saying_why(endpoint: str) -> None:
    response, records = dify_fetch(
        hr_api(endpoint), HR, "年假", {"top_k": 3}, condition("and", ("year", ">", "recent"))
    )
    assert response.status_code == 400 and records == []
    assert response.json() == {"error_code": 400, "error_msg": "metadata_condition: > needs a number, not 'recent'"}


# -- window ------------------------------------------------------------------------------------------------------


def runbook_chunks(settings: Settings) -> list[str]:
    collection = open_store(settings).existing(ENG)
    assert collection is not None
    got = collection.get(where={"source": "runbook.txt"}, include=["documents", "metadatas"])
    rows = sorted(zip(got["metadatas"] or [], got["documents"] or [], strict=True), key=lambda r: int(r[0]["chunk"]))
    return [text for _, text in rows]


def check_window(text: str, spans: list[list[int]], chunks: list[str], word: str) -> None:
    """The hit (marked by its span) in the middle of the file, with one chunk on each side, in file order, each once."""
    assert len(spans) == 1
    hit = chunks.index(text[spans[0][0] : spans[0][1]])
    assert word in chunks[hit] and 0 < hit < len(chunks) - 1  # in the middle of the file
    expected = [chunks[hit - 1], chunks[hit], chunks[hit + 1]]
    assert all(text.count(chunk) == 1 for chunk in expected), "each chunk once"
    at = [text.find(chunk) for chunk in expected]
    assert at == sorted(at), "in file order"
    # nothing else: the text starts with the chunk before and ends with the chunk after
    assert text.startswith(chunks[hit - 1]) and text.endswith(chunks[hit + 1])


def test_window_1_returns_the_neighbouring_chunks_in_file_order_once_each(endpoint: str, settings: Settings) -> None:
    chunks = runbook_chunks(settings)
    assert len(chunks) >= 10
    body = {"query": "narwhal", "mode": "bm25", "k": 1, "collection": ENG, "window": 1}
    response = httpx.post(f"{endpoint}/v1/retrieve", json=body, headers={"Authorization": f"Bearer {ENG_KEY}"})
    assert response.status_code == 200, response.text
    [found] = response.json()["results"]
    check_window(found["text"], found["spans"], chunks, "narwhal")


def test_dify_records_carry_the_window_of_serve_window(settings: Settings, provider: Provider) -> None:
    windowed = settings.model_copy(update={"window": 1, "mode": Mode.BM25})
    client = TestClient(create_app(windowed, api_key=None, embeddings=provider))
    body = {"knowledge_id": ENG, "query": "walrus", "retrieval_setting": {"top_k": 1, "score_threshold": 0.5}}
    response = client.post("/retrieval", json=body)
    assert response.status_code == 200, response.text
    [record] = response.json()["records"]
    assert record["score"] == 1.0  # bm25: over the best hit's
    check_window(record["content"], record["metadata"]["spans"], runbook_chunks(settings), "walrus")
