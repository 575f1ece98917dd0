"""PowerPoint: slides in order with titles, shapes in reading order (groups too), tables, speaker notes, one bad
slide reported while the others are read, on decks python-pptx writes into tmp_path; and refused files."""

from __future__ import annotations

import datetime
import io
import logging
import re
import zipfile
from pathlib import Path

import pytest
from langchain_core.documents import Document
from pptx import Presentation
from pptx.presentation import Presentation as PresentationObject
from pptx.shapes.shapetree import GroupShapes, SlideShapes
from pptx.util import Inches

from loaders.errors import LoadError
from loaders.options import ReadOptions
from loaders.pptx import PptxFileLoader
from loaders.registry import read
from loaders.slides import NOTES_PREFIX, SEPARATOR
from loaders.source import SourceFile
from loaders.tables import TABLE_HEADER
from tests.loaders.office_files import CFB, ENCRYPTED, assert_bomb_refused, docx_bytes, replace_member, zip_of

TITLE_LAYOUT, TITLE_ONLY_LAYOUT, BLANK_LAYOUT = 0, 5, 6


def load(path: Path, options: ReadOptions | None = None) -> list[Document]:
    return list(PptxFileLoader(path, options or ReadOptions()).lazy_load())


def _text_box(shapes: SlideShapes | GroupShapes, left: float, top: float, text: str) -> None:
    shapes.add_textbox(Inches(left), Inches(top), Inches(2), Inches(0.5)).text_frame.text = text


def build_deck() -> PresentationObject:
    deck = Presentation()
    opening = deck.slides.add_slide(deck.slide_layouts[TITLE_LAYOUT])
    opening.shapes.title.text = "2024 年度报告"
    opening.placeholders[1].text = "内部资料\n仅供参考"
    opening.notes_slide.notes_text_frame.text = "开场：欢迎各位。"

    sales = deck.slides.add_slide(deck.slide_layouts[TITLE_ONLY_LAYOUT])
    sales.shapes.title.text = "销售数据"
    _text_box(sales.shapes, 1, 6, "数据来源：财务部")  # added first, read last: it is lowest on the slide
    _text_box(sales.shapes, 1, 1.6, "各区域销售额如下")
    table = sales.shapes.add_table(4, 3, Inches(1), Inches(2.5), Inches(6), Inches(2)).table
    rows = [["区域", "季度", "销售额"], ["华东", "Q1", "120"], ["", "Q2", "135"], ["华南", "Q1", "98"]]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(1, 0).merge(table.cell(2, 0))  # 华东 covers two rows
    sales.notes_slide.notes_text_frame.text = "强调华东增长。\n第二段备注"

    grouped = deck.slides.add_slide(deck.slide_layouts[BLANK_LAYOUT])
    _text_box(grouped.shapes, 5, 0.5, "右上角")
    group = grouped.shapes.add_group_shape()
    _text_box(group.shapes, 1, 3, "组内第二")
    _text_box(group.shapes, 1, 2, "组内第一")
    inner = group.shapes.add_group_shape()
    _text_box(inner.shapes, 1, 4, "嵌套组")
    _text_box(grouped.shapes, 0.5, 0.5, "左上角")
    return deck


def save(deck: PresentationObject, path: Path) -> Path:
    deck.save(str(path))
    return path


@pytest.fixture(scope="module")
def deck_docs(tmp_path_factory: pytest.TempPathFactory) -> list[Document]:
    return load(save(build_deck(), tmp_path_factory.mktemp("pptx") / "报告.pptx"))


def test_slides_pages_titles_and_reading_order(deck_docs: list[Document]) -> None:
    shape = [(doc.metadata["page"], doc.metadata.get("title"), TABLE_HEADER in doc.metadata) for doc in deck_docs]
    assert shape == [
        (1, "2024 年度报告", False),
        (2, "销售数据", False),
        (2, "销售数据", True),
        (2, "销售数据", False),
        (3, None, False),
    ]
    texts = [doc.page_content for doc in deck_docs if TABLE_HEADER not in doc.metadata]
    assert texts == [
        f"2024 年度报告\n内部资料\n仅供参考\n{NOTES_PREFIX}开场：欢迎各位。",
        "销售数据\n各区域销售额如下",
        f"数据来源：财务部\n{NOTES_PREFIX}强调华东增长。\n第二段备注",
        "左上角\n右上角\n组内第一\n组内第二\n嵌套组",
    ]


def test_table_with_a_merged_cell(deck_docs: list[Document]) -> None:
    (table,) = [doc for doc in deck_docs if TABLE_HEADER in doc.metadata]
    assert table.page_content.split("\n") == [
        "| 区域 | 季度 | 销售额 |",
        "| --- | --- | --- |",
        "| 华东 | Q1 | 120 |",
        "| 华东 | Q2 | 135 |",
        "| 华南 | Q1 | 98 |",
    ]


def test_start_index_is_the_offset_in_the_slide_text(deck_docs: list[Document]) -> None:
    for page in {doc.metadata["page"] for doc in deck_docs}:
        docs = [doc for doc in deck_docs if doc.metadata["page"] == page]
        rendered = SEPARATOR.join(doc.page_content for doc in docs)
        for doc in docs:
            start = doc.metadata["start_index"]
            assert rendered[start : start + len(doc.page_content)] == doc.page_content


def test_read_adds_the_common_metadata_and_every_value_is_a_scalar(tmp_path: Path) -> None:
    path = save(build_deck(), tmp_path / "报告.pptx")
    docs = list(read(SourceFile(tmp_path, path)))
    assert {doc.metadata["file_type"] for doc in docs} == {"pptx"}
    for doc in docs:
        assert all(isinstance(value, str | int | float | bool) for value in doc.metadata.values())


def _break_slides(data: bytes, numbers: set[int]) -> bytes:
    """The deck with shape ids python-pptx cannot read on each slide in `numbers` (it parses attributes lazily)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if any(info.filename == f"ppt/slides/slide{n}.xml" for n in numbers):
                content = re.sub(rb'<p:cNvPr id="\d+"', b'<p:cNvPr id="abc"', content)
            target.writestr(info, content)
    return out.getvalue()


def _deck_bytes(deck: PresentationObject) -> bytes:
    stream = io.BytesIO()
    deck.save(stream)
    return stream.getvalue()


def test_a_broken_slide_is_reported_and_the_others_are_read(tmp_path: Path) -> None:
    path = tmp_path / "broken.pptx"
    path.write_bytes(_break_slides(_deck_bytes(build_deck()), {2}))
    reported: list[LoadError] = []
    docs = load(path, ReadOptions(on_page_error=reported.append))
    assert sorted({doc.metadata["page"] for doc in docs}) == [1, 3]
    (error,) = reported
    assert error.page == 2
    assert error.cause == "unreadable slide: invalid literal for int() with base 10: 'abc'"


def test_a_broken_slide_is_logged_by_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "broken.pptx"
    path.write_bytes(_break_slides(_deck_bytes(build_deck()), {3}))
    with caplog.at_level(logging.WARNING, logger="loaders.pptx"):
        docs = load(path)
    assert {doc.metadata["page"] for doc in docs} == {1, 2}
    assert [record.getMessage() for record in caplog.records] == [
        f"{path}: slide 3 skipped: unreadable slide: invalid literal for int() with base 10: 'abc'"
    ]


def test_every_slide_broken(tmp_path: Path) -> None:
    path = tmp_path / "broken.pptx"
    path.write_bytes(_break_slides(_deck_bytes(build_deck()), {1, 2, 3}))
    with pytest.raises(LoadError) as info:
        load(path, ReadOptions(on_page_error=lambda error: None))
    assert str(info.value) == (
        "no slide could be read (unreadable slide: invalid literal for int() with base 10: 'abc' on slide 3)"
    )


@pytest.mark.parametrize("slides", [0, 2])
def test_no_text_is_refused(tmp_path: Path, slides: int) -> None:
    deck = Presentation()
    for _ in range(slides):
        deck.slides.add_slide(deck.slide_layouts[TITLE_LAYOUT])  # empty placeholders hold no text
    with pytest.raises(LoadError, match=r"^no text in the PowerPoint file$"):
        load(save(deck, tmp_path / "empty.pptx"))


# ----- files that must be refused, each with one line ------------------------------------------------------


REFUSED = {
    "encrypted": (
        ENCRYPTED,
        r"encrypted PowerPoint file: remove the password \(save a copy without one\)",
    ),
    "legacy": (CFB + bytes(1024), r"legacy binary PowerPoint format inside a new-format name: save it again in .*"),
    "truncated": (_deck_bytes(Presentation())[:4000], r"corrupt PowerPoint file: not a zip archive"),
    "not office": (zip_of("a.txt", b"text"), r"not a PowerPoint file: a zip archive without a presentation in it"),
    "document": (docx_bytes(), r"not a PowerPoint file: it holds a Word document"),
    "bad xml": (
        replace_member(_deck_bytes(Presentation()), "ppt/presentation.xml", b"<p:presentation"),
        r"corrupt PowerPoint file: .+",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_one_line(tmp_path: Path, case: str) -> None:
    data, pattern = REFUSED[case]
    path = tmp_path / f"{case}.pptx"
    path.write_bytes(data)
    with pytest.raises(LoadError) as info:
        list(read(SourceFile(tmp_path, path)))
    assert "\n" not in str(info.value)
    assert re.fullmatch(pattern, str(info.value)), str(info.value)


@pytest.mark.slow
def test_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    assert_bomb_refused(tmp_path / "bomb.pptx", "ppt/slides/slide1.xml", load)


def test_core_properties_keep_the_slide_title_as_title(tmp_path: Path) -> None:
    deck = build_deck()
    core = deck.core_properties
    core.title, core.author, core.created = "年度报告", "财务部", datetime.datetime(2024, 12, 31, 18, 0)
    docs = load(save(deck, tmp_path / "deck.pptx"))
    assert {doc.metadata["document_title"] for doc in docs} == {"年度报告"}
    assert {doc.metadata["author"] for doc in docs} == {"财务部"}
    assert {doc.metadata["created"] for doc in docs} == {"2024-12-31T18:00:00+00:00"}
    assert docs[0].metadata["title"] == "2024 年度报告"  # the slide's own
