"""The retriever inside a RAG chain, built as the README and notebooks/chatbot.ipynb build it.

The chat model is LangChain's fake (offline) or ``ChatOpenAI`` against :class:`ChatServer`, a stand-in for an
OpenAI-compatible chat server on 127.0.0.1; either way the test checks what the model received.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnablePassthrough
from langchain_openai import ChatOpenAI

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.retriever import QwenRagRetriever, build_retriever
from pipelines.settings import Settings
from testbed.sglang import Handler, Incoming, Reply, StandInServer
from tests.conftest import SAMPLES

QUESTION = "什么是人工智能？"
ANSWER = "人工智能让计算机自动学习 [ml.txt]。"
PASSAGES = {name: (SAMPLES / name).read_text(encoding="utf-8").strip() for name in ("ml.txt", "dl.txt")}


class ChatServer(StandInServer):
    """An OpenAI-compatible chat server (``GET /v1/models``, ``POST /v1/chat/completions``, no streaming) that
    answers every request with ``answer``; ``requests`` records what clients sent.

    >>> with ChatServer(answer="hi") as srv:                                           # doctest: +SKIP
    ...     ChatOpenAI(base_url=srv.url + "/v1", api_key="EMPTY", model=srv.model).invoke("hello").content
    'hi'
    """

    work_paths = frozenset({"/v1/chat/completions"})

    def __init__(self, answer: str, model: str = "Qwen/Qwen3-8B") -> None:
        super().__init__(api_key=None, latency_s=0.0, hang_s=30.0, port=0)
        self.answer = answer
        self.model = model

    def chat_messages(self) -> list[list[dict[str, Any]]]:
        """The ``messages`` of every chat request received."""
        return [r.json["messages"] for r in self.requests if r.path == "/v1/chat/completions"]

    def _handlers(self, path: str) -> dict[str, Handler] | None:
        routes: dict[str, dict[str, Handler]] = {
            "/v1/models": {"GET": self._models},
            "/v1/chat/completions": {"POST": self._complete},
        }
        return routes.get(path)

    def _requires_key(self, path: str) -> bool:
        return False

    def _fault_reply(self, status: int) -> Reply:
        return Reply.json(status, {"object": "error", "message": "stand-in fault", "type": "error", "code": status})

    def _models(self, request: Incoming) -> Reply:
        model = {"id": self.model, "object": "model", "owned_by": "sglang"}
        return Reply.json(200, {"object": "list", "data": [model]})

    def _complete(self, request: Incoming) -> Reply:
        return Reply.json(
            200,
            {
                "id": "chatcmpl-stand-in",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": self.answer}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )


class PromptRecorder(BaseCallbackHandler):
    """Keeps the messages every chat model run started with: what the model actually received."""

    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.prompts.extend(messages)


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{d.metadata['source']}] {d.page_content.strip()}" for d in docs)


def rag_chain(retriever: QwenRagRetriever, llm: BaseChatModel) -> Runnable[str, str]:
    """The README's chain, unchanged."""
    prompt = ChatPromptTemplate.from_template(
        "请只根据下面的资料回答问题，并在方括号中注明来源；资料中没有答案时，就说不知道。\n\n"
        "资料：\n{context}\n\n问题：{question}"
    )
    return {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> QwenRagRetriever:
    # The default mode, as the chatbot notebook uses it.
    settings = Settings(store=tmp_path_factory.mktemp("chatbot") / "store", k=2)
    embeddings = LocalEmbeddings()
    ingest([SAMPLES], settings, embeddings=embeddings)
    return build_retriever(settings, embeddings=embeddings)


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    with ChatServer(answer=ANSWER) as srv:
        yield srv


def fake_llm() -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([ANSWER]))


def assert_prompt_holds_the_passages(text: str) -> None:
    for name, passage in PASSAGES.items():
        assert f"[{name}] {passage}" in text
    assert text.endswith(f"问题：{QUESTION}")


def test_the_passages_reach_the_chat_model_and_the_answer_comes_back(retriever: QwenRagRetriever) -> None:
    recorder = PromptRecorder()
    answer = rag_chain(retriever, fake_llm()).invoke(QUESTION, config={"callbacks": [recorder]})
    assert answer == ANSWER
    [messages] = recorder.prompts
    [message] = messages
    assert message.type == "human"
    assert_prompt_holds_the_passages(str(message.content))


def test_the_chain_works_async(retriever: QwenRagRetriever) -> None:
    recorder = PromptRecorder()
    chain = rag_chain(retriever, fake_llm())
    answer = asyncio.run(chain.ainvoke(QUESTION, config={"callbacks": [recorder]}))
    assert answer == ANSWER
    [[message]] = recorder.prompts
    assert_prompt_holds_the_passages(str(message.content))


def test_chat_openai_sends_the_passages_to_the_server(retriever: QwenRagRetriever, chat_server: ChatServer) -> None:
    llm = ChatOpenAI(base_url=chat_server.url + "/v1", api_key="EMPTY", model=chat_server.model, max_retries=0)
    chain = rag_chain(retriever, llm)
    assert chain.invoke(QUESTION) == ANSWER
    assert asyncio.run(chain.ainvoke(QUESTION)) == ANSWER
    sent = chat_server.chat_messages()
    assert len(sent) == 2
    for messages in sent:
        [message] = messages
        assert message["role"] == "user"
        assert_prompt_holds_the_passages(message["content"])
