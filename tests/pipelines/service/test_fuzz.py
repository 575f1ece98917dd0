"""Property tests of the service against its own OpenAPI spec (schemathesis, in-process ASGI, no network).

Valid and invalid requests alike: no 5xx, every status code documented, every body matching its schema.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.schemas import BaseSchema

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.service.app import create_app
from pipelines.settings import Settings
from testbed.rerank import RerankServer
from tests.conftest import SAMPLES

# Bounded for a 2-core machine (each valid retrieve example embeds its query): about a minute in all.
EXAMPLES = 120


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseSchema]:
    """The app over the samples, with a reranker (a real local HTTP server) so that `rerank: true` runs too."""
    config = Settings(store=tmp_path_factory.mktemp("fuzz") / "store")
    embeddings = LocalEmbeddings()
    ingest([SAMPLES], config, embeddings=embeddings, progress=False)
    with RerankServer() as reranker:
        app = create_app(config.model_copy(update={"rerank_url": reranker.url}), api_key=None, embeddings=embeddings)
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


# schemathesis.pytest.from_fixture would be the short way, but 4.32.5 reads a private attribute pytest 9 no longer
# has (`Function._nodeid`); a plain Hypothesis test over each operation's strategy does the same.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        ("POST", "/v1/retrieve", GenerationMode.POSITIVE),
        ("POST", "/v1/retrieve", GenerationMode.NEGATIVE),
        ("GET", "/health", GenerationMode.POSITIVE),
        ("GET", "/v1/collections", GenerationMode.POSITIVE),
        ("POST", "/retrieval", GenerationMode.POSITIVE),
        ("POST", "/retrieval", GenerationMode.NEGATIVE),
        ("POST", "/v1/retrieval", GenerationMode.POSITIVE),  # the same handler: mounted there and valid
    ],
)
def test_no_server_errors_and_answers_match_the_spec(
    api: BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    @given(case=api[path][method].as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples on every run: a CI failure reproduces locally
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate()

    check()
