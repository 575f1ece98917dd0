"""The watch's pure rules: which events matter, when a burst has settled, which files a sync may change, and the
lines it prints. No file system, no clock (tests/scenarios/test_watch.py runs the real thing)."""

from __future__ import annotations

from pathlib import Path

from loaders import Problem
from pipelines.ingestion.watch import (
    WHOLE_SYNC_PLACES,
    Burst,
    Indexed,
    Roots,
    candidates,
    changes,
    describe,
    needs_whole,
    problem_lines,
    relevant,
    summarise,
)

ROOT = Path("/data/notes")
R = str(ROOT)


def roots(store: str = "/data/notes/index") -> Roots:
    return Roots((ROOT, Path("/data/todo.md")), frozenset({Path("/data/todo.md")}), Path(store))


def no_folders(path: str) -> bool:
    return False


# -- debouncing --------------------------------------------------------------------------------------------------


def test_a_burst_settles_after_the_quiet_time_since_its_last_event() -> None:
    burst = Burst(quiet=1.0, longest=10.0)
    assert not burst.due(now=5.0)  # nothing gathered, nothing due
    burst.add({(R, "a.md")}, now=0.0)
    burst.add({(R, "a.md"), (R, "b.md")}, now=0.5)  # a burst: several files saved together
    assert not burst.due(now=1.4)
    assert burst.due(now=1.5)
    assert burst.take() == ({(R, "a.md"), (R, "b.md")}, False)
    assert not burst.due(now=9.0)


def test_the_same_file_written_again_keeps_the_burst_open_until_the_longest_wait() -> None:
    burst = Burst(quiet=1.0, longest=10.0)
    settled = None
    for tick in range(30):  # a large copy: the same file modified every 0.5 s
        burst.add({(R, "big.pdf")}, now=tick * 0.5)
        if burst.due(now=tick * 0.5):
            settled = tick * 0.5
            break
    assert settled == 10.0  # never quiet for a second, yet synced at the longest wait


def test_empty_ticks_and_noise_neither_start_nor_prolong_a_burst() -> None:
    burst = Burst(quiet=1.0, longest=10.0)
    burst.add(set(), now=0.0)
    assert not burst.places
    burst.add({(R, "a.md")}, now=1.0)
    burst.add(set(), now=1.5)
    assert burst.due(now=2.0)


def test_a_failed_sync_is_retried_after_the_delay_with_what_came_since() -> None:
    burst = Burst(quiet=1.0, longest=10.0)
    burst.add({(R, "a.md")}, now=0.0)
    failed, _ = burst.take()
    burst.retry(failed, now=2.0, delay=30.0)
    burst.add({(R, "b.md")}, now=3.0)
    assert not burst.due(now=31.0)
    assert burst.due(now=32.0)
    assert burst.take() == ({(R, "a.md"), (R, "b.md")}, False)


def test_a_burst_the_events_cannot_tell_syncs_the_whole_roots() -> None:
    burst = Burst(quiet=1.0, longest=10.0)
    burst.add(set(), now=0.0, whole=True)  # an event on the root itself: no place, yet a sync
    assert burst.due(now=1.0)
    assert burst.take() == (set(), True)
    many = {(R, f"n{n}.md") for n in range(WHOLE_SYNC_PLACES + 1)}  # a flood: events may have been lost
    burst.add(many, now=2.0)
    assert burst.take() == (many, True)
    burst.add({(R, "a.md")}, now=4.0)
    failed, whole = burst.take()
    burst.retry(failed, now=5.0, delay=1.0, whole=whole)
    assert burst.take() == ({(R, "a.md")}, False)
    assert not needs_whole(["/data/notes/a.md", "/data/todo.md", "/data"], roots())
    assert needs_whole(["/data/notes"], roots())


# -- filtering ---------------------------------------------------------------------------------------------------


def test_hidden_entries_the_store_and_other_paths_are_not_ours() -> None:
    r = roots()
    assert r.locate("/data/notes/a/b.md") == [(R, "a/b.md")]
    assert r.locate("/data/notes/.a.md.swp") == []
    assert r.locate("/data/notes/.git/objects/x.md") == []
    assert r.locate("/data/notes/drafts/.obsidian/w.md") == []
    assert r.locate("/data/notes/index/chroma.sqlite3") == []  # the store inside the root
    assert r.locate("/data/notes/index/bm25/default/x.txt") == []
    assert r.locate("/data/notes/indexes/a.md") == [(R, "indexes/a.md")]  # a neighbour of the store is not it
    assert r.locate("/data/notes") == []  # the root itself
    assert r.locate("/data/other/a.md") == []


def test_a_hidden_root_is_watched_and_a_store_above_the_root_hides_nothing() -> None:
    hidden = Roots((Path("/home/me/.notes"),), store=Path("/home/me"))
    assert hidden.locate("/home/me/.notes/a.md") == [("/home/me/.notes", "a.md")]


def test_a_file_root_is_that_file_only_and_is_watched_through_its_folder() -> None:
    r = roots()
    assert r.locate("/data/todo.md") == [("/data/todo.md", "todo.md")]
    assert r.locate("/data/todo.md.tmp") == []
    assert r.watched() == [ROOT, Path("/data")]


def test_nested_roots_each_see_the_file() -> None:
    r = Roots((ROOT, ROOT / "work"))
    assert r.locate("/data/notes/work/a.md") == [(R, "work/a.md"), (f"{R}/work", "a.md")]


def test_only_readable_files_folders_and_indexed_folders_matter() -> None:
    indexed = {(R, "old/x.md"), (R, "old/deep/y.txt")}
    paths = [
        "/data/notes/a.md",  # a document
        "/data/notes/A.PDF",  # extensions in any case
        "/data/notes/app.log",  # another type: noise
        "/data/notes/4913",  # vim's write test
        "/data/notes/.~lock.report.docx#",  # LibreOffice's lock: hidden
        "/data/notes/new",  # a folder moved in
        "/data/notes/old",  # a folder moved out: the store holds files under it
        "/data/notes/ol",  # a prefix of it is not it
    ]
    found = relevant(paths, roots(), is_folder=lambda p: p.endswith("/new"), indexed=indexed)
    assert found == {(R, "a.md"), (R, "A.PDF"), (R, "new"), (R, "old")}


def test_a_sidecar_stands_for_its_file_or_folder() -> None:
    paths = ["/data/notes/a.md.meta.json", "/data/notes/docs/qwen-rag.meta.yaml", "/data/notes/qwen-rag.meta.yaml"]
    found = relevant(paths, roots(), is_folder=lambda p: False, indexed=set())
    assert found == {(R, "a.md"), (R, "docs"), (R, "")}
    on_disk = {(R, ""): ["a.md", "docs/b.md"]}
    indexed = {(R, "gone.md"), ("/elsewhere", "c.md")}
    assert candidates({(R, "")}, files_under=lambda place: on_disk.get(place, []), indexed=indexed) == {
        (R, "a.md"),
        (R, "docs/b.md"),
        (R, "gone.md"),
    }


def test_candidates_are_the_files_and_the_files_inside_folders_on_disk_and_in_the_store() -> None:
    on_disk = {(R, "new"): ["new/a.md", "new/sub/b.txt"]}
    indexed = {(R, "old/x.md"), (R, "keep.md"), ("/elsewhere", "old/z.md")}
    found = candidates(
        {(R, "c.md"), (R, "new"), (R, "old")}, files_under=lambda place: on_disk.get(place, []), indexed=indexed
    )
    assert found == {(R, "c.md"), (R, "new/a.md"), (R, "new/sub/b.txt"), (R, "old/x.md")}


# -- what the store holds, and the lines ---------------------------------------------------------------------------


def chunk(source: str, position: int, file_hash: str = "h1", total: int = 2) -> dict[str, object]:
    meta: dict[str, object] = {"root": R, "source": source, "chunk": position, "file_hash": file_hash}
    if position == 0:
        meta["chunks"] = total
    return meta


def test_a_file_is_complete_when_its_first_chunk_counts_all_of_one_version() -> None:
    state = summarise(
        [
            ("a0", chunk("a.md", 0)),
            ("a1", chunk("a.md", 1)),
            ("b1", chunk("b.md", 1)),  # killed before the completion mark
            ("c0", chunk("c.md", 0, "h2")),
            ("c1", chunk("c.md", 1, "h1")),  # an update cut short: two versions
        ]
    )
    assert state[(R, "a.md")].complete and state[(R, "a.md")].chunks == 2
    assert not state[(R, "b.md")].complete
    assert not state[(R, "c.md")].complete
    rehashed = summarise([("a0", chunk("a.md", 0, "h9")), ("a1", chunk("a.md", 1, "h9"))])[(R, "a.md")]
    assert rehashed.fingerprint != state[(R, "a.md")].fingerprint  # same chunks, another file version


def test_each_transition_gets_its_line() -> None:
    one, two, partial = Indexed(1, True, "x"), Indexed(2, True, "y"), Indexed(1, False, "z")
    assert describe("a.md", None, one) == "added a.md (1 chunk)"
    assert describe("a.md", partial, two) == "added a.md (2 chunks)"  # finishing a killed run's file
    assert describe("a.md", one, two) == "updated a.md (2 chunks)"
    assert describe("a.md", one, None) == "deleted a.md"
    assert describe("a.md", one, one) is None  # saved without a change
    assert describe("a.md", None, partial) is None  # not indexed completely: never "added"
    assert describe("a.md", None, None) is None  # a file that came and went between two syncs


def test_a_rename_is_a_deletion_and_an_addition_and_a_problem_file_is_never_added() -> None:
    before = {(R, "old.md"): Indexed(2, True, "x"), (R, "bad.pdf"): Indexed(1, True, "p")}
    after = {(R, "new.md"): Indexed(2, True, "x2"), (R, "bad.pdf"): Indexed(3, True, "q")}
    keys = {(R, "old.md"), (R, "new.md"), (R, "bad.pdf")}
    problems = [Problem("bad.pdf", "encrypted PDF: needs a password (use --pdf-password)")]
    assert changes(keys, before, after, problems) == ["added new.md (2 chunks)", "deleted old.md"]


def test_problems_are_said_for_touched_files_and_once_for_standing_ones() -> None:
    link = Problem("loop", "symlink loop")
    bad = Problem("bad.pdf", "not a PDF file", 3)
    assert problem_lines([link, bad], touched=set(), shown=set()) == [
        "skipped loop: symlink loop",
        "skipped bad.pdf (page 3): not a PDF file",
    ]
    assert problem_lines([link, bad], touched={"bad.pdf"}, shown={link, bad}) == [
        "skipped bad.pdf (page 3): not a PDF file"
    ]
    assert problem_lines([link, bad], touched={"a.md"}, shown={link, bad}) == []
