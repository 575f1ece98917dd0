"""An ingest restricted to some files (``only``: what a watch's events named) plans, reads and writes those files
alone, and leaves the store as a whole ingest would for them. Real files, real Chroma, the embedded model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion import digests, writer
from pipelines.ingestion.writer import IngestReport, ingest
from pipelines.settings import Settings
from pipelines.store import heads_cache
from pipelines.store.chroma import Store
from pipelines.store.heads_cache import HeadsCache

FILES = 30
TEA = "Green tea is steeped at eighty degrees Celsius for two minutes."
ZEBRAS = "The savannah shelters zebras and giraffes near the waterhole."


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    for n in range(FILES):
        (folder / ("sub" if n % 2 else "") / f"n{n:02d}.md").write_text(f"Note {n} on orchards and rivers.")
    return folder


def run(corpus: Path, store: Path, local: LocalEmbeddings, only: set[str] | None = None, **kw: Any) -> IngestReport:
    keys = None if only is None else {(str(corpus), source) for source in only}
    return ingest([corpus], Settings(store=store, **kw), embeddings=local, only=keys)


def stored(store: Path) -> dict[str, dict[str, Any]]:
    """Per source, its first chunk's text and metadata."""
    collection = Store.open(path=store).existing("default")
    assert collection is not None
    got = collection.get(include=["documents", "metadatas"])
    return {
        str(m["source"]): {**m, "text": d}
        for m, d in zip(got["metadatas"] or [], got["documents"] or [], strict=True)
        if m["chunk"] == 0
    }


def ids(store: Path) -> set[str]:
    collection = Store.open(path=store).existing("default")
    assert collection is not None
    return set(collection.get(include=[])["ids"])


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The whole-root reads a restricted ingest must not make: the walk of a root, every file's first chunk or
    every chunk's record. Each is allowed (the spy passes it on) but noted."""
    calls: list[str] = []
    for module, name in ((writer, "walk"), (writer, "read_records"), (heads_cache, "read_heads"), (HeadsCache, "read")):
        original = getattr(module, name)

        def noted(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, noted)
    return calls


def test_one_changed_file_is_all_that_is_read_and_a_change_no_event_named_waits(
    corpus: Path, store_dir: Path, local: LocalEmbeddings, spied: list[str]
) -> None:
    assert run(corpus, store_dir, local).added == FILES
    spied.clear()
    (corpus / "n00.md").write_text(TEA, encoding="utf-8")
    (corpus / "sub" / "n01.md").write_text(ZEBRAS, encoding="utf-8")  # changed too, but not named
    report = run(corpus, store_dir, local, only={"n00.md"})
    assert (report.files, report.updated, report.unchanged, report.added, report.deleted) == (1, 1, 0, 0, 0)
    assert spied == []  # no walk of the root, no read of every file's records
    assert stored(store_dir)["n00.md"]["text"] == TEA
    assert stored(store_dir)["sub/n01.md"]["text"] == "Note 1 on orchards and rivers."  # untouched

    whole = run(corpus, store_dir, local)  # a whole ingest finds what no event named
    assert (whole.files, whole.updated, whole.unchanged) == (FILES, 1, FILES - 1)
    assert {"walk", "read"} <= set(spied)  # (the spies see a whole ingest's reads)
    assert stored(store_dir)["sub/n01.md"]["text"] == ZEBRAS


def test_deleted_and_moved_files(corpus: Path, store_dir: Path, local: LocalEmbeddings, tmp_path: Path) -> None:
    run(corpus, store_dir, local)
    (corpus / "n02.md").unlink()
    (corpus / "n04.md").rename(corpus / "sub" / "moved.md")
    report = run(corpus, store_dir, local, only={"n02.md", "n04.md", "sub/moved.md"})
    assert (report.files, report.deleted, report.added, report.updated) == (1, 2, 1, 0)
    assert {"n02.md", "n04.md"}.isdisjoint(stored(store_dir)) and "sub/moved.md" in stored(store_dir)
    clean = tmp_path / "clean"
    run(corpus, clean, local)
    assert ids(store_dir) == ids(clean)


def test_sidecars_re_tag_the_files_named(corpus: Path, store_dir: Path, local: LocalEmbeddings) -> None:
    run(corpus, store_dir, local)
    (corpus / "n00.md.meta.json").write_text('{"department": "eng"}', encoding="utf-8")
    (corpus / "sub" / "qwen-rag.meta.yaml").write_text("'*.md': {department: hr}\n", encoding="utf-8")
    under_sub = {f"sub/n{n:02d}.md" for n in range(1, FILES, 2)}
    report = run(corpus, store_dir, local, only={"n00.md", *under_sub})
    assert (report.files, report.retagged, report.embedding_requests) == (1 + len(under_sub), 1 + len(under_sub), 0)
    found = stored(store_dir)
    assert found["n00.md"]["department"] == "eng"
    assert {found[source]["department"] for source in under_sub} == {"hr"}
    assert "department" not in found["n02.md"]  # not named: not re-tagged


def test_excluded_hidden_and_unsupported_files_stay_out(corpus: Path, store_dir: Path, local: LocalEmbeddings) -> None:
    exclude = ["drafts/**", "*.txt"]
    run(corpus, store_dir, local, exclude=exclude)
    (corpus / "drafts").mkdir()
    (corpus / "drafts" / "x.md").write_text(TEA, encoding="utf-8")
    (corpus / "notes.txt").write_text(TEA, encoding="utf-8")
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "y.md").write_text(TEA, encoding="utf-8")
    (corpus / "app.log").write_text(TEA, encoding="utf-8")
    named = {"drafts/x.md", "notes.txt", ".hidden/y.md", "app.log", "sub/missing.md"}
    report = run(corpus, store_dir, local, only=named, exclude=exclude)
    assert (report.files, report.added, report.problems) == (0, 0, [])
    assert set(stored(store_dir)).isdisjoint(named)


def test_a_file_reached_through_a_symlink_makes_the_run_a_whole_one(
    corpus: Path, store_dir: Path, local: LocalEmbeddings
) -> None:
    run(corpus, store_dir, local)
    os.symlink(corpus / "sub", corpus / "linked")
    report = run(corpus, store_dir, local, only={"linked/n01.md"})
    # The whole walk takes sub/'s files under their own names and calls the link a loop: nothing new.
    assert (report.files, report.unchanged, report.added) == (FILES, FILES, 0)
    assert [p.cause for p in report.problems] == ["symlink loop"]


def test_the_hashes_of_files_not_named_are_kept(
    corpus: Path, store_dir: Path, local: LocalEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "RACY_NS", 0)  # keep the hashes of files written a moment ago
    run(corpus, store_dir, local)
    (corpus / "n00.md").write_text(TEA, encoding="utf-8")
    run(corpus, store_dir, local, only={"n00.md"})
    kept = json.loads((store_dir / "records" / "default" / "digests.json").read_text(encoding="utf-8"))["files"]
    assert len(kept) == FILES  # the other files keep their entries: the next whole run hashes none of them
