"""Rerank compressors against real local HTTP servers (the SGLang and /rerank stand-ins) and a tiny real
cross-encoder saved by the test."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document

from pipelines.embeddings.profiles import DEFAULT_TASK
from pipelines.retrieve.rerank import (
    AutoReranker,
    CrossEncoderReranker,
    RerankAPIReranker,
    RerankKind,
    SGLangReranker,
    make_reranker,
)
from testbed.rerank import RerankServer
from testbed.sglang import SGLangServer

RERANKER_MODEL = "Qwen/Qwen3-Reranker-0.6B"
# The servers score each document by this table: the reranked order is known in advance.
SCORES = {"alpha": 0.1, "bravo": 0.9, "charlie": 0.5, "delta": 0.7, "echo": 0.3}


def table_scorer(query: str, documents: list[str], instruct: str | None) -> list[float]:
    return [SCORES[d] for d in documents]


def docs(*texts: str) -> list[Document]:
    return [Document(page_content=t, metadata={"first_stage": i}, id=f"id-{i}") for i, t in enumerate(texts)]


def texts(documents: list[Document]) -> list[str]:
    return [d.page_content for d in documents]


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


@pytest.fixture
def sglang() -> Iterator[SGLangServer]:
    with SGLangServer(scorer=table_scorer, hang_s=2.0) as server:
        yield server


@pytest.fixture
def rerank_api() -> Iterator[RerankServer]:
    with RerankServer(scorer=table_scorer, served_model_name=RERANKER_MODEL) as server:
        yield server


# -- SGLang /v1/rerank --------------------------------------------------------------------------------------------


def test_sglang_order_follows_the_server_scores(sglang: SGLangServer) -> None:
    reranker = SGLangReranker(sglang.url, top_n=3)
    out = reranker.compress_documents(docs("alpha", "bravo", "charlie", "delta", "echo"), "query")
    assert texts(out) == ["bravo", "delta", "charlie"]
    assert [d.metadata["rerank_score"] for d in out] == [0.9, 0.7, 0.5]
    assert [d.metadata["first_stage"] for d in out] == [1, 3, 2] and [d.id for d in out] == ["id-1", "id-3", "id-2"]
    assert not any("rerank_fallback" in d.metadata for d in out)


def test_sglang_request_is_exactly_the_protocol(sglang: SGLangServer) -> None:
    SGLangReranker(sglang.url, top_n=2).compress_documents(docs("alpha", "bravo", "charlie"), "what is bravo?")
    (request,) = sglang.requests
    assert (request.method, request.path) == ("POST", "/v1/rerank")
    assert request.json == {
        "query": "what is bravo?",
        "documents": ["alpha", "bravo", "charlie"],
        "instruct": DEFAULT_TASK,
        "top_n": 2,
        "return_documents": False,
    }
    assert sglang.rerank_instructs == [DEFAULT_TASK]


def test_sglang_custom_instruction_model_and_key(tmp_path: Path) -> None:
    with SGLangServer(scorer=table_scorer, api_key="sk-test") as server:
        reranker = SGLangReranker(server.url + "/v1", model="rr", instruction="Judge code", top_n=5, api_key="sk-test")
        out = reranker.compress_documents(docs("alpha", "bravo"), "q")
        assert texts(out) == ["bravo", "alpha"]  # top_n above the number of documents
        assert server.requests[-1].json["top_n"] == 2 and server.requests[-1].json["model"] == "rr"
        assert server.rerank_instructs == ["Judge code"]
        assert server.requests[-1].headers["authorization"] == "Bearer sk-test"


def test_blank_documents_are_not_sent_and_go_last(sglang: SGLangServer) -> None:
    reranker = SGLangReranker(sglang.url, top_n=10)
    out = reranker.compress_documents(docs("alpha", "", "bravo", "  \n", "charlie"), "q")
    assert sglang.requests[-1].json["documents"] == ["alpha", "bravo", "charlie"]
    assert texts(out) == ["bravo", "charlie", "alpha", "", "  \n"]
    assert "rerank_score" not in out[3].metadata and out[3].metadata["first_stage"] == 1

    assert SGLangReranker(sglang.url, top_n=1).compress_documents(docs("", " "), "q") == docs("")
    assert len(sglang.requests) == 1  # nothing to score, nothing sent


def test_the_callers_documents_are_not_changed(sglang: SGLangServer) -> None:
    original = docs("alpha", "bravo")
    SGLangReranker(sglang.url, top_n=2).compress_documents(original, "q")
    assert original == docs("alpha", "bravo")


def test_async_gives_the_same_answer(sglang: SGLangServer) -> None:
    reranker = SGLangReranker(sglang.url, top_n=3)
    documents = docs("alpha", "bravo", "charlie", "delta")
    assert asyncio.run(reranker.acompress_documents(documents, "q")) == reranker.compress_documents(documents, "q")


# -- /rerank schema -----------------------------------------------------------------------------------------------


def test_rerank_api_schema(rerank_api: RerankServer) -> None:
    reranker = RerankAPIReranker(rerank_api.url, model=RERANKER_MODEL, top_n=2)
    out = reranker.compress_documents(docs("echo", "charlie", "delta"), "q")
    assert texts(out) == ["delta", "charlie"] and [d.metadata["rerank_score"] for d in out] == [0.7, 0.5]
    (request,) = rerank_api.requests
    assert request.path == "/rerank"
    assert request.json == {
        "model": RERANKER_MODEL,
        "query": "q",
        "documents": ["echo", "charlie", "delta"],
        "top_n": 2,
    }


def test_rerank_api_async(rerank_api: RerankServer) -> None:
    reranker = RerankAPIReranker(rerank_api.url, model=RERANKER_MODEL, top_n=1)
    assert texts(asyncio.run(reranker.acompress_documents(docs("alpha", "bravo"), "q"))) == ["bravo"]


# -- fallback -----------------------------------------------------------------------------------------------------


def assert_fallback(out: list[Document], expected: list[str], caplog: pytest.LogCaptureFixture, reason: str) -> None:
    assert texts(out) == expected
    assert all(d.metadata["rerank_fallback"] is True and "rerank_score" not in d.metadata for d in out)
    (record,) = [r for r in caplog.records if r.name == "pipelines.retrieve.rerank"]
    assert record.levelno == logging.WARNING
    assert reason in record.getMessage() and "keeping the first-stage order" in record.getMessage()


def test_a_dead_server_falls_back_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    reranker = SGLangReranker(dead_url(), top_n=2, timeout=5)
    with caplog.at_level(logging.WARNING, logger="pipelines.retrieve.rerank"):
        out = reranker.compress_documents(docs("alpha", "bravo", "charlie"), "q")
    assert_fallback(out, ["alpha", "bravo"], caplog, "ConnectError")


def test_a_dead_server_falls_back_async(caplog: pytest.LogCaptureFixture) -> None:
    reranker = RerankAPIReranker(dead_url(), top_n=2, timeout=5)
    with caplog.at_level(logging.WARNING, logger="pipelines.retrieve.rerank"):
        out = asyncio.run(reranker.acompress_documents(docs("alpha", "bravo", "charlie"), "q"))
    assert_fallback(out, ["alpha", "bravo"], caplog, "ConnectError")


def test_an_error_status_falls_back_with_the_servers_message(
    sglang: SGLangServer, caplog: pytest.LogCaptureFixture
) -> None:
    sglang.fail_next(1, "503")
    with caplog.at_level(logging.WARNING, logger="pipelines.retrieve.rerank"):
        out = SGLangReranker(sglang.url, top_n=3).compress_documents(docs("alpha", "bravo"), "q")
    assert_fallback(out, ["alpha", "bravo"], caplog, "HTTP 503: The request queue is full.")
    # The next call reranks again.
    assert texts(SGLangReranker(sglang.url, top_n=3).compress_documents(docs("alpha", "bravo"), "q"))[0] == "bravo"


def test_a_missing_key_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    with (
        SGLangServer(scorer=table_scorer, api_key="sk-test") as server,
        caplog.at_level(logging.WARNING, logger="pipelines.retrieve.rerank"),
    ):
        out = SGLangReranker(server.url, top_n=1).compress_documents(docs("alpha", "bravo"), "q")
    assert_fallback(out, ["alpha"], caplog, "HTTP 401: Unauthorized")


def test_a_slow_server_falls_back_at_the_timeout(sglang: SGLangServer, caplog: pytest.LogCaptureFixture) -> None:
    sglang.fail_next(1, "timeout")  # the stand-in stays silent for hang_s = 2 s
    with caplog.at_level(logging.WARNING, logger="pipelines.retrieve.rerank"):
        out = SGLangReranker(sglang.url, top_n=1, timeout=0.3).compress_documents(docs("alpha", "bravo"), "q")
    assert_fallback(out, ["alpha"], caplog, "ReadTimeout")


def test_an_answer_in_another_schema_falls_back(rerank_api: RerankServer, caplog: pytest.LogCaptureFixture) -> None:
    # SGLang's client against a /rerank server: {"results": [...]} is not the bare list it expects.
    with caplog.at_level(logging.WARNING, logger="pipelines.retrieve.rerank"):
        out = SGLangReranker(rerank_api.url, top_n=1).compress_documents(docs("alpha", "bravo"), "q")
    assert_fallback(out, ["alpha"], caplog, "unreadable answer: expected a JSON list")


def test_a_blank_query_is_not_sent(sglang: SGLangServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pipelines.retrieve.rerank"):
        out = SGLangReranker(sglang.url, top_n=1).compress_documents(docs("alpha", "bravo"), "  ")
    assert_fallback(out, ["alpha"], caplog, "the query is blank")
    assert sglang.requests == []


# -- auto-detection -----------------------------------------------------------------------------------------------


def test_auto_detects_sglang_and_keeps_its_schema(sglang: SGLangServer) -> None:
    reranker = make_reranker(sglang.url, None, top_n=2)
    assert isinstance(reranker, AutoReranker) and reranker.kind is RerankKind.AUTO
    for _ in range(2):
        assert texts(reranker.compress_documents(docs("alpha", "bravo", "delta"), "q")) == ["bravo", "delta"]
        assert reranker.kind is RerankKind.SGLANG
    assert [r.path for r in sglang.requests] == ["/v1/rerank", "/v1/rerank"]
    assert sglang.rerank_instructs == [DEFAULT_TASK, DEFAULT_TASK]


def test_auto_detects_the_rerank_api_and_then_speaks_it(rerank_api: RerankServer) -> None:
    reranker = make_reranker(rerank_api.url, RERANKER_MODEL, top_n=2)
    assert isinstance(reranker, AutoReranker)
    assert texts(reranker.compress_documents(docs("alpha", "bravo", "delta"), "q")) == ["bravo", "delta"]
    assert reranker.kind is RerankKind.RERANK_API
    assert texts(asyncio.run(reranker.acompress_documents(docs("echo", "charlie"), "q"))) == ["charlie", "echo"]
    first, second = rerank_api.requests
    assert first.path == second.path == "/v1/rerank"
    assert "instruct" in first.json  # the probe carries both schemas' fields
    assert second.json == {"model": RERANKER_MODEL, "query": "q", "documents": ["echo", "charlie"], "top_n": 2}


def test_auto_decides_only_on_an_answer(sglang: SGLangServer, caplog: pytest.LogCaptureFixture) -> None:
    reranker = make_reranker(sglang.url, None, top_n=1)
    assert isinstance(reranker, AutoReranker)
    sglang.fail_next(1, "500")
    with caplog.at_level(logging.WARNING, logger="pipelines.retrieve.rerank"):
        assert reranker.compress_documents(docs("alpha", "bravo"), "q")[0].metadata["rerank_fallback"]
    assert reranker.kind is RerankKind.AUTO
    assert texts(reranker.compress_documents(docs("alpha", "bravo"), "q")) == ["bravo"]
    assert reranker.kind is RerankKind.SGLANG


# -- construction -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reranker", "endpoint"),
    [
        (SGLangReranker("http://h:30000"), "http://h:30000/v1/rerank"),
        (SGLangReranker("http://h:30000/"), "http://h:30000/v1/rerank"),
        (SGLangReranker("http://h:30000/v1"), "http://h:30000/v1/rerank"),
        (RerankAPIReranker("http://h:8000"), "http://h:8000/rerank"),
        (RerankAPIReranker("http://h:8000/v1"), "http://h:8000/v1/rerank"),
        (RerankAPIReranker("https://api.example/v2/rerank"), "https://api.example/v2/rerank"),
        (AutoReranker(url="http://h:8000"), "http://h:8000/v1/rerank"),
    ],
)
def test_endpoints(reranker: SGLangReranker, endpoint: str) -> None:
    assert reranker.endpoint() == endpoint


def test_make_reranker_chooses_by_url_and_kind(tmp_path: Path) -> None:
    assert make_reranker(None, None, top_n=3) is None
    assert isinstance(make_reranker("http://h:1", None, 3, kind="sglang"), SGLangReranker)
    assert isinstance(make_reranker("http://h:1", "m", 3, kind=RerankKind.RERANK_API), RerankAPIReranker)
    local = make_reranker(str(tmp_path), None, top_n=4)
    assert isinstance(local, CrossEncoderReranker) and local.model_dir == tmp_path and local.top_n == 4
    with pytest.raises(ValueError, match="neither an http"):
        make_reranker(str(tmp_path / "missing"), None, 3)
    with pytest.raises(ValueError, match="needs an http"):
        make_reranker(str(tmp_path), None, 3, kind="sglang")
    with pytest.raises(ValueError, match="'nonsense' is not a valid RerankKind"):
        make_reranker("http://h:1", None, 3, kind="nonsense")


# -- local cross-encoder ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT cross-encoder with a 20-word WordPiece vocabulary: no hub download."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory = tmp_path_factory.mktemp("cross-encoder")
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {word: i for i, word in enumerate([*special, "what", "is", "bm25", "?", *SCORES, "rerank", "query"])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    ).save_pretrained(directory)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    return directory


@pytest.mark.slow
def test_cross_encoder_ranks_by_the_models_scores(tiny_cross_encoder: Path) -> None:
    from sentence_transformers import CrossEncoder

    reranker = CrossEncoderReranker(tiny_cross_encoder, top_n=3)
    assert reranker._model is None  # loaded lazily
    documents = docs("alpha", "bravo bm25", "", "charlie rerank", "delta", "what is echo")
    out = reranker.compress_documents(documents, "what is bm25?")
    assert reranker._model is not None

    reference = CrossEncoder(str(tiny_cross_encoder), device="cpu", local_files_only=True)
    scored = [d.page_content for d in documents if d.page_content]
    scores = reference.predict([("what is bm25?", t) for t in scored]).tolist()
    expected = sorted(zip(scores, scored, strict=True), reverse=True)
    assert texts(out) == [t for _, t in expected[:3]]
    assert [d.metadata["rerank_score"] for d in out] == pytest.approx([s for s, _ in expected[:3]])
    assert asyncio.run(reranker.acompress_documents(documents, "what is bm25?")) == out


@pytest.mark.slow
def test_cross_encoder_loads_once_and_refuses_a_missing_directory(tiny_cross_encoder: Path, tmp_path: Path) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder, top_n=1)
    assert reranker.warm_up() is reranker.warm_up()
    with pytest.raises(FileNotFoundError, match="no such cross-encoder model directory"):
        CrossEncoderReranker(tmp_path / "missing").warm_up()
