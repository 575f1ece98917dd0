"""LangChain's standard test suites (``langchain-tests``) for the retriever and both embedding providers.

The suites build the object under test from a class and keyword arguments, so class-scoped fixtures put the real
parts they need (an ingested store, the SGLang stand-in's URL) on the test class before the suite runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.embeddings.profiles import DEFAULT_TASK, profile_for
from pipelines.embeddings.server import ServerEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.retriever import QwenRagRetriever, build_retriever
from pipelines.settings import Settings
from testbed.embedders import embedded_default
from testbed.sglang import SGLangServer
from tests.conftest import SAMPLES

# The suites' async tests are plain ``async def``: pytest-asyncio (a langchain-tests dependency) runs them once
# marked. A module mark also reaches the sync tests, for which pytest-asyncio warns and does nothing.
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings(
        "ignore:The test <Function .*> is marked with '@pytest.mark.asyncio':pytest.PytestWarning"
    ),
]

QWEN = "Qwen/Qwen3-Embedding-0.6B"


@pytest.fixture(scope="module")
def sglang() -> Iterator[SGLangServer]:
    with SGLangServer(embedder=embedded_default(), served_model_name=QWEN) as srv:
        yield srv


class TestQwenRagRetriever(RetrieversIntegrationTests):
    """``QwenRagRetriever`` over ``data/samples`` ingested with the embedded model."""

    params: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _index(cls, tmp_path_factory: pytest.TempPathFactory) -> None:
        settings = Settings(store=tmp_path_factory.mktemp("standard") / "store")
        embeddings = LocalEmbeddings()
        ingest([SAMPLES], settings, embeddings=embeddings)
        built = build_retriever(settings, embeddings=embeddings)
        cls.params = {
            "collection": built.collection,
            "embeddings": embeddings,
            "dimension": built.dimension,
            "settings": settings,
            "store": built.store,
        }

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return QwenRagRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self.params

    @property
    def retriever_query_example(self) -> str:
        return "什么是人工智能？"


class TestLocalEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[LocalEmbeddings]:
        return LocalEmbeddings


class TestLocalEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[LocalEmbeddings]:
        return LocalEmbeddings


class _AgainstTheStandIn:
    """``ServerEmbeddings`` built directly from its fields (the suites call the class), aimed at the stand-in."""

    url: ClassVar[str] = ""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _server(cls, sglang: SGLangServer) -> None:
        cls.url = sglang.url + "/v1"

    @property
    def embeddings_class(self) -> type[ServerEmbeddings]:
        return ServerEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {
            "model": QWEN,
            "base_url": self.url,
            "api_key": "EMPTY",
            "check_embedding_ctx_length": False,
            "max_retries": 0,
            "profile": profile_for(QWEN),
            "task": DEFAULT_TASK,
        }


class TestServerEmbeddingsUnit(_AgainstTheStandIn, EmbeddingsUnitTests):
    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # OpenAIEmbeddings' own variables still work for the server and its key.
        params = {k: v for k, v in self.embedding_model_params.items() if k not in ("base_url", "api_key")}
        return (
            {"OPENAI_API_KEY": "sk-from-env", "OPENAI_API_BASE": self.url},
            params,
            {"openai_api_key": "sk-from-env", "openai_api_base": self.url},
        )


class TestServerEmbeddingsIntegration(_AgainstTheStandIn, EmbeddingsIntegrationTests):
    pass
