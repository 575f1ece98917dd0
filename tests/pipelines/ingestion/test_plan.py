"""Planning an ingest: which files to index, which are unchanged, which records go, and which stay though unread."""

from __future__ import annotations

from pathlib import Path

import pytest

from loaders import Problem, SourceFile, walk
from pipelines.ingestion.plan import plan
from pipelines.store.records import FileRecord

CHUNKER = "qwen3:512:64"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name, text in {"same.md": "# Same", "edited.md": "# Edited", "new.md": "# New", "cut.md": "# Cut"}.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def record_of(file: SourceFile, chunker: str = CHUNKER, chunks: int = 2) -> FileRecord:
    ids = {f"{file.source}-{i}": f"hash-{i}" for i in range(chunks)}
    return FileRecord(hashes={file.sha256()}, chunkers={chunker}, total=chunks, ids=ids)


def key(root: Path, source: str) -> tuple[str, str]:
    return (str(root), source)


def test_new_changed_recut_and_unchanged_files(root: Path) -> None:
    found = {f.source: f for f in walk([root]) if isinstance(f, SourceFile)}
    records = {
        key(root, "same.md"): record_of(found["same.md"]),
        key(root, "edited.md"): FileRecord(hashes={"an older hash"}, chunkers={CHUNKER}, total=1, ids={"e-0": "h"}),
        key(root, "cut.md"): record_of(found["cut.md"], chunker="qwen3:256:32"),
    }
    todo = plan(walk([root]), [root], records, CHUNKER)
    assert (todo.files, todo.unchanged, todo.unreadable, todo.gone, todo.problems) == (4, 1, 0, {}, [])
    assert sorted(job.file.source for job in todo.jobs) == ["cut.md", "edited.md", "new.md"]
    edited = next(job for job in todo.jobs if job.file.source == "edited.md")
    assert edited.key == key(root, "edited.md") and edited.digest == found["edited.md"].sha256()
    assert edited.record is records[key(root, "edited.md")] and edited.stored() == {"h": "e-0"}
    assert next(job for job in todo.jobs if job.file.source == "new.md").stored() == {}


def test_an_unfinished_file_is_redone(root: Path) -> None:
    same = SourceFile(root, root / "same.md")
    unfinished = record_of(same)
    unfinished.total = 0  # its first chunk, the completion mark, was never written
    todo = plan([same], [root], {key(root, "same.md"): unfinished}, CHUNKER)
    assert [job.file.source for job in todo.jobs] == ["same.md"] and todo.unchanged == 0


def test_files_gone_from_the_roots_lose_their_records(root: Path) -> None:
    records = {key(root, "deleted.md"): FileRecord(ids={"d-0": "h"}), key(root, "same.md"): FileRecord()}
    todo = plan(walk([root]), [root], records, CHUNKER)
    assert list(todo.gone) == [key(root, "deleted.md")]


def test_a_file_the_walk_could_not_read_keeps_its_chunks(root: Path) -> None:
    other = root.parent / "other-root"
    found: list[SourceFile | Problem] = [SourceFile(root, root / "same.md"), Problem("locked.md", "permission denied")]
    records = {key(root, "locked.md"): FileRecord(ids={"l-0": "h"}), key(other, "locked.md"): FileRecord()}
    todo = plan(found, [root, other], records, CHUNKER)
    assert todo.gone == {} and todo.problems == [Problem("locked.md", "permission denied")]


def test_a_file_that_cannot_be_hashed_is_reported_and_keeps_its_chunks(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path_open = Path.open

    def denied(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == "edited.md":  # tests run as root, whom chmod does not stop
            raise PermissionError(13, "Permission denied", str(self))
        return path_open(self, *args, **kwargs)

    files = [SourceFile(root, root / "same.md"), SourceFile(root, root / "edited.md")]
    monkeypatch.setattr(Path, "open", denied)
    todo = plan(files, [root], {key(root, "edited.md"): FileRecord(ids={"e-0": "h"})}, CHUNKER)
    assert todo.problems == [Problem("edited.md", "cannot read: permission denied")]
    assert (todo.files, todo.unreadable, todo.gone) == (2, 1, {})
    assert [job.file.source for job in todo.jobs] == ["same.md"]
