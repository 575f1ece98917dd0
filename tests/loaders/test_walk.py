"""Walking folders: order, globs, hidden entries, symlinks, unreadable entries, SourceFile."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from loaders.errors import Problem
from loaders.source import SourceFile
from loaders.walk import walk, walk_sources

TREE = [
    "b.txt",
    "a.md",
    "sub/c.py",
    "sub/deep/d.pdf",
    "sub/deep/notes.RST",
    "node_modules/pkg/index.js",
    "docs/guide.html",
    "docs/drafts/wip.md",
    ".hidden/secret.md",
    ".env.md",
    "sub/.cache/x.py",
    "image.bin",
    "Makefile",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    for name in TREE:
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n", encoding="utf-8")
    return base


def sources(roots: Sequence[Path], **kwargs: Sequence[str]) -> list[str]:
    items = list(walk(roots, **kwargs))
    assert all(isinstance(item, SourceFile) for item in items), items
    return [item.source for item in items if isinstance(item, SourceFile)]


def problems(roots: Sequence[Path]) -> list[tuple[str, str]]:
    return [(item.source, item.cause) for item in walk(roots) if isinstance(item, Problem)]


def test_default_walk_order_hidden_and_unsupported(root: Path) -> None:
    assert sources([root]) == [
        "a.md",
        "b.txt",
        "docs/guide.html",
        "docs/drafts/wip.md",
        "node_modules/pkg/index.js",
        "sub/c.py",
        "sub/deep/d.pdf",
        "sub/deep/notes.RST",
    ]


def test_source_files_are_absolute_under_the_root(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(root.parent)
    (first, *_) = walk([Path("root")])
    assert isinstance(first, SourceFile)
    assert first.root == root and first.path == root / "a.md" and first.path.is_absolute()


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (["**/*.md"], [], ["a.md", "docs/drafts/wip.md"]),
        (["*.md"], [], ["a.md", "docs/drafts/wip.md"]),  # no "/": any depth
        (["/*.md"], [], ["a.md"]),  # leading "/": the root only
        (["docs/**"], [], ["docs/guide.html", "docs/drafts/wip.md"]),
        (["docs"], [], ["docs/guide.html", "docs/drafts/wip.md"]),  # a folder matches what is under it
        (["sub/*/*.pdf"], [], ["sub/deep/d.pdf"]),
        (["[ab].*"], [], ["a.md", "b.txt"]),
        (["[!a].*"], [], ["b.txt", "sub/c.py", "sub/deep/d.pdf"]),
        (["?.md", "?.txt"], [], ["a.md", "b.txt"]),
        (["**/*.bin"], [], []),  # no loader for it, whatever the include says
        ([], ["node_modules", "docs/drafts/**", "*.py", "sub/deep"], ["a.md", "b.txt", "docs/guide.html"]),
        (["**/*.md"], ["drafts"], ["a.md"]),
    ],
)
def test_include_and_exclude_globs(root: Path, include: list[str], exclude: list[str], expected: list[str]) -> None:
    assert sources([root], include=include, exclude=exclude) == expected


def test_excluded_folders_are_not_entered(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed: list[str] = []
    scandir = os.scandir

    def spy(path: Path) -> object:
        listed.append(Path(path).name)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    list(walk([root], exclude=["node_modules"]))
    assert "node_modules" not in listed and "pkg" not in listed
    assert "deep" in listed


def test_a_root_that_is_a_file(root: Path) -> None:
    (item,) = walk([root / "sub" / "c.py"])
    assert isinstance(item, SourceFile)
    assert item.source == "c.py" and item.root == item.path == root / "sub" / "c.py"


def test_missing_and_unsupported_roots_are_problems(root: Path) -> None:
    assert problems([root / "nope", root / "image.bin"]) == [
        ((root / "nope").as_posix(), "no such file or folder"),
        ("image.bin", "unsupported file type .bin"),
    ]


def test_several_roots_in_the_given_order(root: Path) -> None:
    items = list(walk([root / "sub", root / "docs"]))
    assert [(i.root.name, i.source) for i in items if isinstance(i, SourceFile)] == [
        ("sub", "c.py"),
        ("sub", "deep/d.pdf"),
        ("sub", "deep/notes.RST"),
        ("docs", "guide.html"),
        ("docs", "drafts/wip.md"),
    ]


def test_symlinks_inside_the_root_are_followed_after_real_entries(root: Path) -> None:
    (root / "linked").symlink_to(root / ".hidden")  # a hidden folder, reachable only through the link
    (root / "alias.md").symlink_to(root / ".env.md")
    assert sources([root], include=["*.md"]) == ["a.md", "docs/drafts/wip.md", "alias.md", "linked/secret.md"]


def test_symlink_loops_and_second_paths_are_problems(root: Path) -> None:
    (root / "sub" / "up").symlink_to(root)  # an ancestor
    (root / "again").symlink_to(root / "docs")  # a folder already walked
    (root / "self").symlink_to(root / "self")  # a link to itself: ELOOP
    (root / "dup.md").symlink_to(root / "a.md")  # a file already taken
    items = list(walk([root]))
    assert sorted((i.source, i.cause) for i in items if isinstance(i, Problem)) == [
        ("again", "symlink loop"),
        ("dup.md", "symlink to a file already taken as a.md"),
        ("self", "symlink loop"),
        ("sub/up", "symlink loop"),
    ]
    assert len([i for i in items if isinstance(i, SourceFile)]) == 8  # nothing twice


def test_symlinks_leading_out_of_the_root_are_not_followed(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.md").write_text("outside\n", encoding="utf-8")
    (root / "out").symlink_to(outside)
    (root / "leak.md").symlink_to(outside / "leak.md")
    (root / "relative.md").symlink_to(Path("..") / "outside" / "leak.md")
    (root / "photo.bin").symlink_to(outside / "leak.md")  # unsupported by its own name: silent
    (root / "gone.md").symlink_to(root / "missing.md")
    assert sorted(problems([root])) == [
        ("gone.md", "broken symlink"),
        ("leak.md", "symlink outside the root"),
        ("out", "symlink outside the root"),
        ("relative.md", "symlink outside the root"),
    ]
    assert "outside" not in " ".join(sources([root], exclude=["out", "leak.md", "relative.md", "gone.md"]))


def test_a_root_given_through_a_symlink(root: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    (root / "inner").symlink_to(root / "sub" / "deep")  # inside the real root: followed, then seen twice
    items = list(walk([alias]))
    found = [i.source for i in items if isinstance(i, SourceFile)]
    assert found[:2] == ["a.md", "b.txt"]
    assert [(i.source, i.cause) for i in items if isinstance(i, Problem)] == [("inner", "symlink loop")]


# Tests run as root, and chmod 000 does not stop root from reading: permission errors are simulated by
# making os.scandir / Path.open raise PermissionError for one entry.
def test_an_unreadable_folder_is_a_problem_and_the_walk_goes_on(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scandir = os.scandir

    def guarded(path: Path) -> object:
        if Path(path).name == "deep":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", guarded)
    items = list(walk([root]))
    assert [(i.source, i.cause) for i in items if isinstance(i, Problem)] == [("sub/deep", "permission denied")]
    assert "sub/c.py" in [i.source for i in items if isinstance(i, SourceFile)]


def test_an_unreadable_root_folder_is_a_problem(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(path: Path) -> object:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", denied)
    assert problems([root]) == [(".", "permission denied")]


def test_an_unreadable_file_is_a_problem(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path_open = Path.open

    def guarded(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == "b.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return path_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    items = list(walk([root]))
    assert [(i.source, i.cause) for i in items if isinstance(i, Problem)] == [("b.txt", "permission denied")]
    assert "b.txt" not in [i.source for i in items if isinstance(i, SourceFile)]


def test_a_fifo_is_ignored_without_blocking(root: Path) -> None:
    os.mkfifo(root / "pipe.txt")
    assert "pipe.txt" not in sources([root])


def test_sha256_is_streamed_and_cached(root: Path) -> None:
    path = root / "big.txt"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    file = SourceFile(root, path)
    assert file.sha256() == hashlib.sha256(data).hexdigest()
    path.write_bytes(b"changed")
    assert file.sha256() == hashlib.sha256(data).hexdigest()  # computed once
    assert file == SourceFile(root, path) and hash(file) == hash(SourceFile(root, path))


def test_office_lock_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "report.docx").write_bytes(b"PK")
    (tmp_path / "~$report.docx").write_bytes(b"owner")  # what Word keeps beside an open document
    assert [item.source for item in walk([tmp_path])] == ["report.docx"]


# -- the files a watch names: walk_sources ------------------------------------------------------------------------


def taken(items: Sequence[SourceFile | Problem]) -> list[tuple[str, str]]:
    return [(type(item).__name__, item.source) for item in items]


@pytest.mark.parametrize(
    ("include", "exclude"), [((), ()), (("*.md", "sub/**"), ()), ((), ("node_modules", "sub/deep/**", "*.txt"))]
)
def test_walk_sources_takes_a_file_exactly_when_the_walk_does(
    root: Path, include: tuple[str, ...], exclude: tuple[str, ...]
) -> None:
    (root / "~$report.docx").write_text("lock", encoding="utf-8")
    (root / "a.md.meta.json").write_text("{}", encoding="utf-8")
    named = [*TREE, "~$report.docx", "a.md.meta.json", "missing.md", "sub", "sub/deep/missing.pdf"]
    whole = list(walk([root], include, exclude))
    for source in named:
        assert taken(walk_sources(root, [source], include, exclude) or []) == taken(
            [item for item in whole if item.source == source]
        ), source
    assert taken(walk_sources(root, named, include, exclude) or []) == sorted(taken(whole), key=lambda t: t[1])


def test_walk_sources_leaves_a_file_reached_through_a_symlink_to_the_whole_walk(root: Path) -> None:
    os.symlink(root / "sub", root / "linked")
    os.symlink(root / "a.md", root / "also.md")
    assert walk_sources(root, ["a.md"]) is not None
    assert walk_sources(root, ["linked/c.py"]) is None
    assert walk_sources(root, ["a.md", "also.md"]) is None


def test_walk_sources_says_an_unreadable_folder_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    access = os.access

    def guarded(path: Path, mode: int) -> bool:
        return Path(path).name != "deep" and access(path, mode)

    monkeypatch.setattr(os, "access", guarded)
    found = walk_sources(root, ["sub/c.py", "sub/deep/d.pdf", "sub/deep/notes.RST"])
    assert taken(found or []) == [("SourceFile", "sub/c.py"), ("Problem", "sub/deep")]
