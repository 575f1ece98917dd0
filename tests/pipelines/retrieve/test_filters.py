"""Filters on the user's own fields, from ingest (--meta, a folder sidecar) to query (--filter, --where), in every
mode, with the files that do not match made far closer to the query so that a filter applied after ranking fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Settings

QUERY = "tea brewing temperature"
OTHERS = 60  # more than any over-fetch of the first stage (rerank_candidates, 50): all of them outrank HR
HR = {"hr/leave.md", "hr/pay.md", "legal/contracts.md", "legal/privacy.md"}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, local: LocalEmbeddings) -> Settings:
    base = tmp_path_factory.mktemp("filters")
    hr, legal, other = base / "hr", base / "legal", base / "other"
    for folder in (hr, legal, other):
        folder.mkdir()
    # The four files with department=hr mention tea once, in passing; sixty others are all about brewing tea.
    (hr / "leave.md").write_text("Annual leave requests go to your manager. The kitchen has tea.\n")
    (hr / "pay.md").write_text("Salaries are paid on the last working day. Tea is free.\n")
    (legal / "contracts.md").write_text("Contracts are signed by two directors. No tea on the desk.\n")
    (legal / "privacy.md").write_text("Personal data stays in the EU. Tea breaks are unpaid.\n")
    (legal / "qwen-rag.meta.yaml").write_text("'*.md': {department: hr, year: 2024}\n")
    for n in range(OTHERS):
        (other / f"tea{n:02}.md").write_text(
            f"Brewing tea at the right temperature, note {n}: green tea brewing wants 80 degrees, black tea "
            f"brewing wants boiling water; tea brewing temperature decides the taste of the tea.\n"
        )
    settings = Settings(store=base / "store", k=3)
    ingest([hr], settings.model_copy(update={"meta": {"department": "hr"}}), embeddings=local)
    ingest([legal, other], settings, embeddings=local)
    return settings


def sources(settings: Settings, local: LocalEmbeddings, **options: Any) -> list[str]:
    docs = build_retriever(settings, embeddings=local).invoke(QUERY, **options)
    return [f"{Path(d.metadata['root']).name}/{d.metadata['source']}" for d in docs]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_unfiltered_the_tea_files_win(indexed: Settings, local: LocalEmbeddings, mode: str) -> None:
    # So a filter applied to a first stage of the 50 best would find nothing to return.
    assert all(s.startswith("other/") for s in sources(indexed, local, mode=mode, k=OTHERS))


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize(
    "options",
    [{"filter": {"department": "hr"}}, {"filter": ["department=hr"]}, {"where": {"department": "hr"}}],
    ids=["filter", "filter-pairs", "where"],
)
def test_a_filter_returns_exactly_k_matching_passages(
    indexed: Settings, local: LocalEmbeddings, mode: str, options: dict[str, Any]
) -> None:
    found = sources(indexed, local, mode=mode, **options)
    assert len(found) == 3 and set(found) <= HR


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_filters_combine_with_and(indexed: Settings, local: LocalEmbeddings, mode: str) -> None:
    found = sources(indexed, local, mode=mode, k=10, filter={"department": "hr"}, where={"year": {"$gte": 2024}})
    assert sorted(found) == ["legal/contracts.md", "legal/privacy.md"]


def test_the_fields_are_on_every_chunk_of_the_tagged_files(indexed: Settings, local: LocalEmbeddings) -> None:
    docs = build_retriever(indexed, embeddings=local).invoke(QUERY, k=10, mode="dense", filter={"year": 2024})
    assert {d.metadata["department"] for d in docs} == {"hr"}
    assert all(d.metadata["year"] == 2024 for d in docs)  # typed: a number, as --filter year=2024 types it


@pytest.mark.parametrize("flags", [["--filter", "department=hr"], ["--where", '{"department": "hr"}']])
def test_query_command_filters(indexed: Settings, flags: list[str]) -> None:
    for mode in ("dense", "bm25", "hybrid"):
        args = ["query", QUERY, "--store", str(indexed.store), "-k", "3", "--mode", mode, "--json", *flags]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        rows = json.loads(result.output)
        assert len(rows) == 3 and {row["source"] for row in rows} <= {Path(s).name for s in HR}


def test_a_bad_where_is_one_line(indexed: Settings) -> None:
    args = ["query", QUERY, "--store", str(indexed.store), "--where", '{"department": ["hr"]}']
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "where" in result.output and "Traceback" not in result.output


def test_filter_flags_repeat(indexed: Settings) -> None:
    args = ["query", QUERY, "--store", str(indexed.store), "-k", "5", "--mode", "bm25", "--json"]
    result = CliRunner().invoke(main, [*args, "--filter", "department=hr", "--filter", "year=2024"])
    assert result.exit_code == 0, result.output
    assert sorted(row["source"] for row in json.loads(result.output)) == ["contracts.md", "privacy.md"]
