"""The default search (hybrid, convex fusion) on the tutorial's own examples, as a new user runs them: the embedded
model, real Chroma on disk and behind `chroma run`, and the CLI with no mode given."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import FUSION_ALPHA, Mode, Settings
from testbed.chroma import chroma_server
from tests.conftest import SAMPLES

TUTORIAL = ("ml.txt", "dl.txt", "nlp.txt", "python.txt", "pentest.txt")  # its five sentences
AI = "什么是人工智能？"
EXPECTED = [
    (AI, ["ml.txt", "dl.txt"]),
    ("how to implement binary search", ["binary_search.md"]),
    ("折半查找", ["binary_search.md"]),
    ("celsius_to_fahrenheit", ["temperature.py"]),
]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, local: LocalEmbeddings) -> Settings:
    settings = Settings(store=tmp_path_factory.mktemp("default-search") / "store")
    assert settings.mode is Mode.HYBRID  # what a user gets without asking
    ingest([SAMPLES], settings, embeddings=local, progress=False)
    return settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, local: LocalEmbeddings) -> Iterator[Settings]:
    with chroma_server(tmp_path_factory.mktemp("chroma")) as url:
        settings = Settings(chroma_url=url, collection="samples")
        ingest([SAMPLES], settings, embeddings=local, progress=False)
        yield settings


def sources(settings: Settings, local: LocalEmbeddings, query: str, k: int, **options: object) -> list[str]:
    docs = build_retriever(settings, embeddings=local).invoke(query, k=k, **options)
    assert all(d.page_content.strip() and d.metadata.get("source") for d in docs)
    return [d.metadata["source"] for d in docs]


@pytest.mark.parametrize(("query", "first"), EXPECTED)
def test_the_tutorials_examples_come_first_on_disk(
    samples: Settings, local: LocalEmbeddings, query: str, first: list[str]
) -> None:
    assert sources(samples, local, query, k=len(first)) == first


@pytest.mark.parametrize(("query", "first"), EXPECTED)
def test_the_tutorials_examples_come_first_on_a_chroma_server(
    server: Settings, local: LocalEmbeddings, query: str, first: list[str]
) -> None:
    assert sources(server, local, query, k=len(first)) == first


def test_the_tutorials_five_sentences_alone(tmp_path: Path, local: LocalEmbeddings) -> None:
    corpus = tmp_path / "five"
    corpus.mkdir()
    for name in TUTORIAL:
        shutil.copy(SAMPLES / name, corpus / name)
    settings = Settings(store=tmp_path / "store")
    ingest([corpus], settings, embeddings=local, progress=False)
    assert sources(settings, local, AI, k=2) == ["ml.txt", "dl.txt"]


def test_the_cli_answers_the_tutorial_in_the_default_mode(samples: Settings) -> None:
    result = CliRunner().invoke(main, ["query", AI, "-k", "2", "--store", str(samples.store), "--json"])
    assert result.exit_code == 0, result.output
    assert [row["source"] for row in json.loads(result.stdout)] == ["ml.txt", "dl.txt"]


def test_rrf_is_still_there_for_those_who_want_it(samples: Settings, local: LocalEmbeddings) -> None:
    # Reciprocal rank fusion lets one stray BM25 match on 是 outrank dl.txt: the reason it is no longer the default.
    assert sources(samples, local, AI, k=2, fusion="rrf") == ["ml.txt", "python.txt"]


def test_hybrid_scores_lie_in_0_1_and_min_score_keeps_what_the_readme_says(
    samples: Settings, local: LocalEmbeddings
) -> None:
    retriever = build_retriever(samples, embeddings=local)
    for query, _ in EXPECTED:
        everything = retriever.invoke(query, k=9)
        scores = [d.metadata["score"] for d in everything]
        assert all(0.0 <= score <= 1.0 for score in scores) and scores == sorted(scores, reverse=True)
        kept = retriever.invoke(query, k=9, min_score=0.5)
        # README: --min-score 0.5 keeps exactly the passages whose fused score is at least 0.5 ...
        assert [d.id for d in kept] == [d.id for d in everything if d.metadata["score"] >= 0.5]
        # ... the best passage by meaning scores at least the dense weight (0.45), so a threshold below it keeps it.
        best_by_meaning = max(everything, key=lambda d: d.metadata["dense_score"])
        assert best_by_meaning.metadata["score"] >= FUSION_ALPHA
        assert best_by_meaning.id in {d.id for d in retriever.invoke(query, k=9, min_score=FUSION_ALPHA)}
    # 0.5 needs both: close to the best by meaning and holding the query's rare words (an identifier, a synonym).
    assert sources(samples, local, "celsius_to_fahrenheit", k=9, min_score=0.5) == ["temperature.py"]
    assert sources(samples, local, "折半查找", k=9, min_score=0.5) == ["binary_search.md"]
    # A question that shares no rare word with any passage has no passage at 0.5: dense decides its order alone.
    assert sources(samples, local, AI, k=9, min_score=0.5) == []
    assert sources(samples, local, AI, k=2, min_score=FUSION_ALPHA) == ["ml.txt"]


def test_a_passages_score_does_not_depend_on_how_many_are_asked_for(samples: Settings, local: LocalEmbeddings) -> None:
    """The dense scale runs to a fixed depth (fusion.DENSE_SCALE), not to k or the candidate pool."""
    retriever = build_retriever(samples, embeddings=local)
    for query, _ in EXPECTED:
        one = retriever.invoke(query, k=1)[0]
        many = {d.id: d.metadata["score"] for d in retriever.invoke(query, k=9, rerank_candidates=9)}
        assert many[one.id] == one.metadata["score"]
