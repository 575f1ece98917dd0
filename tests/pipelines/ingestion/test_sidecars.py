"""The user's own fields at ingest: --meta, folder and file sidecars, their precedence, refusals, and a change of
fields alone re-tagging the chunks without an embedding request (the SGLang stand-in counts them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loaders import SourceFile, walk
from pipelines.embeddings.server import ServerEmbeddings
from pipelines.errors import ConfigError
from pipelines.ingestion.sidecars import Sidecars
from pipelines.ingestion.writer import IngestReport, ingest
from pipelines.retrieve.lexical import Passage
from pipelines.retrieve.lexical_sync import lexical_sync
from pipelines.settings import Settings
from pipelines.store.chroma import Store
from testbed.embedders import HashEmbedder
from testbed.sglang import SGLangServer

QWEN = "Qwen/Qwen3-Embedding-0.6B"


@pytest.fixture(scope="module")
def server() -> Iterator[SGLangServer]:
    with SGLangServer(embedder=HashEmbedder(dim=64), served_model_name=QWEN) as srv:
        yield srv


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "policies" / "old").mkdir(parents=True)
    (root / "readme.md").write_text("# Read me\n\nHow this folder is organised.\n")
    (root / "policies" / "leave.md").write_text("# Leave\n\nAnnual leave is 25 days.\n\n" + "More text. " * 200)
    (root / "policies" / "old" / "travel.md").write_text("# Travel\n\nTrain over plane.\n")
    (root / "qwen-rag.meta.yaml").write_text("'*.md': {department: all, year: 2023}\n'policies/**': {department: hr}\n")
    (root / "policies" / "old" / "qwen-rag.meta.yaml").write_text("'*': {year: 2019, archived: true}\n")
    (root / "policies" / "leave.md.meta.json").write_text(json.dumps({"owner": "Ana", "year": 2025}))
    return root


def fields_of(root: Path, run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sidecars = Sidecars(run)
    return {f.source: sidecars.fields(f) for f in walk([root]) if isinstance(f, SourceFile)}


def test_precedence_file_over_nearest_folder_over_run(tree: Path) -> None:
    assert fields_of(tree, {"team": "core", "year": 1999}) == {
        "readme.md": {"team": "core", "year": 2023, "department": "all"},
        "policies/leave.md": {"team": "core", "year": 2025, "department": "hr", "owner": "Ana"},
        "policies/old/travel.md": {"team": "core", "year": 2019, "department": "hr", "archived": True},
    }


def test_sidecars_are_not_documents(tree: Path) -> None:
    assert sorted(f.source for f in walk([tree]) if isinstance(f, SourceFile)) == [
        "policies/leave.md",
        "policies/old/travel.md",
        "readme.md",
    ]


@pytest.mark.parametrize(
    ("sidecar", "cause"),
    [
        ('{"page": 3}', "'page' is qwen-rag's own metadata"),
        ('{"tags": ["a", "b"]}', "'tags' must be a string, number or true/false, not list"),
        ('{"owner": null}', "not null"),
        ("{owner", "not valid JSON"),
        ('["a"]', "expected a JSON object"),
    ],
)
def test_a_bad_file_sidecar_is_one_line_naming_it(tree: Path, sidecar: str, cause: str) -> None:
    path = tree / "policies" / "leave.md.meta.json"
    path.write_text(sidecar)
    file = SourceFile(tree, tree / "policies" / "leave.md")
    with pytest.raises(ConfigError, match=cause) as raised:
        Sidecars({}).fields(file)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_a_bad_folder_sidecar_is_one_line_naming_it(tree: Path) -> None:
    (tree / "qwen-rag.meta.yaml").write_text("'*.md': [department, hr]\n")
    with pytest.raises(ConfigError, match=r"qwen-rag\.meta\.yaml: '\*\.md' should map a glob to its fields"):
        Sidecars({}).fields(SourceFile(tree, tree / "readme.md"))


def test_meta_refuses_qwen_rags_own_keys() -> None:
    with pytest.raises(ConfigError, match="meta: 'source' is qwen-rag's own metadata"):
        Settings(meta=["source=x"])
    assert Settings(meta=["year=2024", "draft=false", "code='007'"]).meta == {
        "year": 2024,
        "draft": False,
        "code": "'007'",
    }


def chunks(store: Path) -> dict[str, dict[str, Any]]:
    collection = Store.open(path=store).existing("default")
    assert collection is not None
    got = collection.get(include=["metadatas", "embeddings"])
    return {
        cid: {**meta, "vector": list(vec)}
        for cid, meta, vec in zip(got["ids"], got["metadatas"], got["embeddings"], strict=True)
    }


def assert_the_index_keeps_the_collections_passages(store: Path) -> None:
    """What a BM25 search answers with (the lexical index's copy of each passage) is what the collection holds."""
    opened = Store.open(path=store)
    collection = opened.existing("default")
    assert collection is not None
    got = collection.get(include=["documents", "metadatas"])
    kept = lexical_sync(opened, "default").current(opened, collection).passages(got["ids"])
    texts, metas = got["documents"] or [], got["metadatas"] or []
    assert kept == {cid: Passage(t, dict(m)) for cid, t, m in zip(got["ids"], texts, metas, strict=True)}


def run(tree: Path, store: Path, srv: SGLangServer, **settings: Any) -> tuple[IngestReport, int]:
    """The report, and how many embedding requests the stand-in received during the run."""
    before = sum(r.path == "/v1/embeddings" for r in srv.requests)
    remote = ServerEmbeddings.connect(srv.url + "/v1")
    report = ingest([tree], Settings(store=store, chunk_tokens=64, chunk_overlap=8, **settings), embeddings=remote)
    assert_the_index_keeps_the_collections_passages(store)
    return report, sum(r.path == "/v1/embeddings" for r in srv.requests) - before


def test_changing_only_a_sidecar_re_tags_without_embedding(tree: Path, tmp_path: Path, server: SGLangServer) -> None:
    store = tmp_path / "store"
    first, sent = run(tree, store, server, meta=["team=core"])
    assert first.added == 3 and sent > 0
    before = chunks(store)
    leave = [c for c in before.values() if c["source"] == "policies/leave.md"]
    assert len(leave) > 1 and all(c["owner"] == "Ana" and c["team"] == "core" for c in leave)

    (tree / "policies" / "leave.md.meta.json").write_text(json.dumps({"year": 2026}))  # owner removed, year changed
    again, sent = run(tree, store, server, meta=["team=core"])
    assert (again.retagged, again.unchanged, again.updated, again.chunks_written, sent) == (1, 2, 0, 0, 0)
    after = chunks(store)
    assert after.keys() == before.keys()
    for cid, chunk in after.items():
        assert chunk["vector"] == before[cid]["vector"] and chunk["file_hash"] == before[cid]["file_hash"]
        if chunk["source"] == "policies/leave.md":
            assert (chunk["year"], chunk["department"], "owner" in chunk) == (2026, "hr", False)
        else:
            assert chunk == before[cid]

    # --meta alone, changed: every file re-tagged, nothing sent; then the same again: nothing at all.
    third, sent = run(tree, store, server, meta=["team=search"])
    assert (third.retagged, sent) == (3, 0)
    assert {c["team"] for c in chunks(store).values()} == {"search"}
    fourth, sent = run(tree, store, server, meta=["team=search"])
    assert (fourth.unchanged, fourth.retagged, fourth.chunks_written, sent) == (3, 0, 0, 0)


def test_removing_all_fields_leaves_no_trace(tree: Path, tmp_path: Path, server: SGLangServer) -> None:
    store = tmp_path / "store"
    run(tree, store, server)
    for sidecar in (*tree.rglob("qwen-rag.meta.yaml"), *tree.rglob("*.meta.json")):
        sidecar.unlink()
    report, sent = run(tree, store, server)
    assert (report.retagged, sent) == (3, 0)
    keys = set().union(*(c.keys() for c in chunks(store).values()))
    assert not keys & {"department", "year", "owner", "archived", "meta_hash", "meta_keys"}


def test_a_broken_sidecar_keeps_the_files_chunks(tree: Path, tmp_path: Path, server: SGLangServer) -> None:
    store = tmp_path / "store"
    run(tree, store, server)
    before = chunks(store)
    (tree / "policies" / "leave.md.meta.json").write_text("{oops")
    report, sent = run(tree, store, server)
    assert (report.failed, report.deleted, report.unchanged, sent) == (1, 0, 2, 0)
    (problem,) = report.problems
    assert problem.source == "policies/leave.md" and "leave.md.meta.json: not valid JSON" in problem.cause
    assert chunks(store) == before


def test_a_content_change_writes_the_new_fields_too(tree: Path, tmp_path: Path, server: SGLangServer) -> None:
    store = tmp_path / "store"
    run(tree, store, server)
    (tree / "readme.md").write_text("# Read me\n\nHow this folder is organised, now with more.\n")
    (tree / "qwen-rag.meta.yaml").write_text("'*.md': {department: all}\n")  # year dropped everywhere
    report, _ = run(tree, store, server)
    assert (report.updated, report.retagged) == (1, 2)
    metas = list(chunks(store).values())
    readme = [m for m in metas if m["source"] == "readme.md"]
    assert readme and all("year" not in m and m["department"] == "all" for m in readme)
    # travel.md still has its own folder's year; leave.md its sidecar's.
    assert {m["source"]: m.get("year") for m in metas if m["source"] != "readme.md"} == {
        "policies/leave.md": 2025,
        "policies/old/travel.md": 2019,
    }


def test_ingest_command_takes_meta(tree: Path, tmp_path: Path, server: SGLangServer) -> None:
    from click.testing import CliRunner

    from pipelines.cli import main

    store = tmp_path / "store"
    base = ["ingest", str(tree), "--store", str(store), "--embeddings-url", server.url + "/v1", "--json"]
    result = CliRunner().invoke(main, [*base, "--meta", "team=core", "--meta", "reviewed=true"])
    assert result.exit_code == 0, result.output
    assert {(c["team"], c["reviewed"]) for c in chunks(store).values()} == {("core", True)}
    again = CliRunner().invoke(main, [*base, "--meta", "team=search", "--meta", "reviewed=true"])
    assert json.loads(again.stdout)["retagged"] == 3
    refused = CliRunner().invoke(main, [*base, "--meta", "chunk=1"])
    assert refused.exit_code == 1
    assert refused.stderr == "error: meta: 'chunk' is qwen-rag's own metadata; choose another name\n"


@pytest.mark.slow
def test_dropping_a_title_override_brings_the_documents_own_back_unembedded(
    tmp_path: Path, server: SGLangServer
) -> None:
    import docx

    root, store = tmp_path / "docs", tmp_path / "store"
    root.mkdir()
    document = docx.Document()
    document.core_properties.title = "员工手册"
    for n in range(3):
        document.add_heading(f"第{n + 1}章", level=1)
        document.add_paragraph("年假的规定。" * 40)
    document.save(str(root / "handbook.docx"))
    sidecar = root / "handbook.docx.meta.json"
    sidecar.write_text(json.dumps({"title": "Staff handbook", "owner": "Ana"}))
    run(root, store, server)
    before = chunks(store)
    assert len(before) > 1 and {(c["title"], c["owner"]) for c in before.values()} == {("Staff handbook", "Ana")}

    sidecar.unlink()  # the file's own title must come back: it is read again, its vectors reused
    report, sent = run(root, store, server)
    assert (report.updated, report.retagged, sent, report.chunks_reused) == (1, 0, 0, len(before))
    after = chunks(store)
    assert after.keys() == before.keys()
    assert all(c["title"] == "员工手册" and "owner" not in c and "meta_keys" not in c for c in after.values())
