"""Reading around a position: the stored chunks stitched back into the file's own text, on a real Chroma store.

Small chunks (64 tokens, 16 of overlap) so that every read crosses several chunk boundaries.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from chromadb.api.models.Collection import Collection
from langchain_core.documents import Document

from pipelines.embeddings import make_embeddings
from pipelines.errors import ConfigError
from pipelines.ingestion.writer import ingest
from pipelines.retrieve.context import NotFound, count_tokens, read_around, with_windows
from pipelines.retrieve.passages import SPANS
from pipelines.settings import Settings
from pipelines.store.chroma import IndexSignature, open_store

PARAGRAPHS = [
    f"第{i}段：检索增强生成先从文档中找出相关的段落，再交给语言模型回答。Paragraph {i} explains how retrieval "
    f"augmented generation finds passages first and lets the model answer from them."
    for i in range(1, 25)
]
HEADER = "| 城市 | 人口 | 省份 |\n| --- | --- | --- |"
ROWS = [f"| 城市{i} | {1000 + i}万 | 省{i % 7} |" for i in range(1, 41)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, pdfs: Path) -> tuple[Path, Path]:
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    (first / "guide.txt").write_text("\n\n".join(PARAGRAPHS) + "\n", encoding="utf-8")
    lines = ["城市,人口,省份"] + [f"城市{i},{1000 + i}万,省{i % 7}" for i in range(1, 41)]
    (first / "cities.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(pdfs / "en_latex_multicolumn.pdf", first / "columns.pdf")
    (first / "same.txt").write_text("第一个文件夹里的同名文件。", encoding="utf-8")
    (second / "same.txt").write_text("第二个文件夹里的同名文件。", encoding="utf-8")
    return first, second


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, folders: tuple[Path, Path]) -> Collection:
    settings = Settings(store=tmp_path_factory.mktemp("context") / "store", chunk_tokens=64, chunk_overlap=16)
    report = ingest(list(folders), settings, embeddings=make_embeddings(settings), progress=False)
    assert report.failed == 0, report.problems
    found = open_store(settings).existing(settings.collection)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def guide(folders: tuple[Path, Path]) -> str:
    return (folders[0] / "guide.txt").read_text(encoding="utf-8").strip()


def chunk_count(collection: Collection, source: str) -> int:
    return len(collection.get(where={"source": source}, include=[])["ids"])


# -- prose: overlapping chunks -----------------------------------------------------------------------------------


def test_a_large_budget_gives_back_the_whole_file_exactly(collection: Collection, guide: str) -> None:
    assert chunk_count(collection, "guide.txt") > 10
    excerpt = read_around(collection, "guide.txt", tokens=100_000)
    assert excerpt.text == guide
    assert (excerpt.start_index, excerpt.end_index) == (0, len(guide))
    assert not excerpt.more_before and not excerpt.more_after
    assert excerpt.tokens == count_tokens(guide) and excerpt.page is None


def test_a_window_is_the_file_text_between_its_offsets_a_quarter_before(collection: Collection, guide: str) -> None:
    at = guide.index("第12段")
    excerpt = read_around(collection, "guide.txt", start_index=at, tokens=120)
    assert excerpt.text == guide[excerpt.start_index : excerpt.end_index]
    assert excerpt.start_index < at < excerpt.end_index
    assert excerpt.tokens == 120
    assert count_tokens(guide[excerpt.start_index : at]) == 30
    assert excerpt.more_before and excerpt.more_after


def test_the_start_of_the_file_gives_the_whole_budget_to_what_follows(collection: Collection, guide: str) -> None:
    excerpt = read_around(collection, "guide.txt", start_index=0, tokens=100)
    assert excerpt.start_index == 0 and excerpt.tokens == 100
    assert excerpt.text == guide[: excerpt.end_index]
    assert not excerpt.more_before and excerpt.more_after


def test_reading_on_from_end_index_walks_the_whole_file(collection: Collection, guide: str) -> None:
    at, covered = 0, ""
    for _ in range(50):
        excerpt = read_around(collection, "guide.txt", start_index=at, tokens=200)
        assert excerpt.start_index <= at  # the quarter before overlaps what was read
        covered = covered[: excerpt.start_index] + excerpt.text
        at = excerpt.end_index
        if not excerpt.more_after:
            break
    assert covered == guide


def test_an_offset_past_the_end_gives_the_end(collection: Collection, guide: str) -> None:
    excerpt = read_around(collection, "guide.txt", start_index=10 * len(guide), tokens=40)
    assert excerpt.end_index == len(guide) and excerpt.text == guide[excerpt.start_index :]
    assert not excerpt.more_after


# -- tables: pieces that repeat the header -----------------------------------------------------------------------


def test_table_pieces_lose_their_repeated_header(collection: Collection) -> None:
    table = HEADER + "\n" + "\n".join(ROWS)
    assert chunk_count(collection, "cities.csv") > 10  # one row per piece at 64 tokens
    at = table.index("| 城市20 ")
    excerpt = read_around(collection, "cities.csv", start_index=at, tokens=150)
    assert excerpt.text == table[excerpt.start_index : excerpt.end_index]
    assert HEADER not in excerpt.text and "城市20 |" in excerpt.text
    head = read_around(collection, "cities.csv", start_index=0, tokens=150)
    assert head.text == table[: head.end_index] and head.text.count(HEADER) == 1


# -- pages, folders, versions, errors ----------------------------------------------------------------------------


def test_a_pdf_is_read_page_by_page_the_first_by_default(collection: Collection) -> None:
    got = collection.get(where={"source": "columns.pdf"}, include=["metadatas", "documents"])
    by_page: dict[int, list[str]] = {}
    for meta, text in zip(got["metadatas"], got["documents"], strict=True):
        by_page.setdefault(int(meta["page"]), []).append(text)
    assert len(by_page) >= 2
    first = read_around(collection, "columns.pdf", tokens=100_000)
    assert first.page == min(by_page)
    second = read_around(collection, "columns.pdf", tokens=100_000, page=sorted(by_page)[1])
    for text in by_page[second.page]:
        assert text in second.text
    with pytest.raises(NotFound, match=r"'columns.pdf' has no page 99 \(pages 1-3\)"):
        read_around(collection, "columns.pdf", page=99)


def test_a_page_of_a_file_without_pages_is_not_found(collection: Collection) -> None:
    with pytest.raises(NotFound, match=r"'guide\.txt' has no page 2 \(no pages\)"):
        read_around(collection, "guide.txt", page=2)


def test_an_unknown_source_is_not_found_in_one_line(collection: Collection) -> None:
    with pytest.raises(NotFound) as caught:
        read_around(collection, "missing.md")
    assert caught.value.http_status == 404
    assert str(caught.value) == "no file 'missing.md' in collection 'default': use a source as search returns it"


def test_a_source_in_two_folders_needs_its_root(collection: Collection, folders: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match=r"'same\.txt' is in 2 ingested folders .*: pass root"):
        read_around(collection, "same.txt")
    second = read_around(collection, "same.txt", root=str(folders[1].resolve()))
    assert second.text == "第二个文件夹里的同名文件。" and second.root == str(folders[1].resolve())


def test_an_unfinished_new_version_of_a_file_is_not_mixed_in(collection: Collection, guide: str) -> None:
    """An ingest updating the file holds the old chunks until the new ones are all in: read the complete one."""
    meta = collection.get(where={"source": "guide.txt"}, include=["metadatas"], limit=1)["metadatas"][0]
    stray = {**meta, "file_hash": "new-version", "chunk": 3, "chunks": 0, "start_index": 40}
    signature = IndexSignature.from_metadata(collection.metadata)
    assert signature is not None
    vector = np.full((1, signature.dimension), 0.1, np.float32)
    collection.upsert(ids=["stray"], embeddings=vector, documents=["新版本的半截"], metadatas=[stray])
    try:
        assert read_around(collection, "guide.txt", tokens=100_000).text == guide
    finally:
        collection.delete(ids=["stray"])


def test_tokens_are_cjk_characters_words_and_symbols() -> None:
    assert count_tokens("") == 0
    assert count_tokens("检索 retrieval-augmented generation, 2024年") == 2 + 3 + 1 + 1 + 1 + 1
    assert count_tokens("かな カナ 한국어") == 2 + 2 + 3


# -- windows around search hits ----------------------------------------------------------------------------------


def hits(collection: Collection, source: str, *positions: int) -> list[Document]:
    """Chunks of ``source`` at ``positions``, as the retriever returns them (best first, in the order given)."""
    got = collection.get(where={"source": source}, include=["documents", "metadatas"])
    by_position = {
        int(meta["chunk"]): Document(page_content=text, metadata=dict(meta), id=cid)
        for cid, text, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
    }
    return [by_position[p] for p in positions]


def test_a_window_is_the_hit_and_its_neighbours_as_the_file_has_them(collection: Collection, guide: str) -> None:
    [hit] = hits(collection, "guide.txt", 6)
    [passage] = with_windows(collection, [hit], 2)
    before, _, after = hits(collection, "guide.txt", 4, 6, 8)
    # the file's own text (a gap between chunks is one newline, as read gives it), from chunk 4 to the end of 8
    start = int(before.metadata["start_index"])
    end = int(after.metadata["start_index"]) + len(after.page_content)
    assert passage.page_content == guide[start:end]
    [(a, b)] = passage.metadata[SPANS]
    assert passage.page_content[a:b] == hit.page_content
    assert passage.metadata["chunk"] == 6 and passage.id == hit.id  # the hit's citation


def test_neighbouring_hits_share_one_window_and_no_chunk_comes_twice(collection: Collection) -> None:
    first, second, far = hits(collection, "guide.txt", 8, 9, 14)
    passages = with_windows(collection, [first, far, second], 1)
    assert [p.id for p in passages] == [first.id, far.id]  # the merged one keeps the better hit's rank
    merged = passages[0]
    chunks = hits(collection, "guide.txt", 7, 8, 9, 10)
    assert all(merged.page_content.count(c.page_content) == 1 for c in chunks)
    assert [merged.page_content[a:b] for a, b in merged.metadata[SPANS]] == [first.page_content, second.page_content]


def test_the_first_chunk_has_no_chunk_before_it(collection: Collection, guide: str) -> None:
    [passage] = with_windows(collection, hits(collection, "guide.txt", 0), 1)
    assert guide.startswith(passage.page_content) and passage.metadata[SPANS][0][0] == 0


def test_a_pdf_window_runs_across_its_pages(collection: Collection) -> None:
    got = collection.get(where={"source": "columns.pdf"}, include=["metadatas"])
    pages = {int(meta["chunk"]): meta["page"] for meta in got["metadatas"] or []}
    edge = next(p for p in sorted(pages) if p + 1 in pages and pages[p + 1] != pages[p])  # last chunk of a page
    [hit] = hits(collection, "columns.pdf", edge)
    [passage] = with_windows(collection, [hit], 1)
    [nxt] = hits(collection, "columns.pdf", edge + 1)
    assert hit.page_content in passage.page_content and nxt.page_content in passage.page_content
    assert passage.page_content.index(hit.page_content) < passage.page_content.index(nxt.page_content)
