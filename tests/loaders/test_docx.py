"""Word: headings to breadcrumbs, lists, a 200-row table with merged cells, headers and footers once, notes,
text boxes and tracked changes, on files python-docx writes into tmp_path; and the files that must be refused."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import docx
import pytest
from docx.document import Document as WordDocument
from docx.enum.section import WD_SECTION
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.constants import CONTENT_TYPE as CT
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from docx.table import Table
from langchain_core.documents import Document

from loaders.docx import ENDNOTES, FOOTNOTES, HEADERS_AND_FOOTERS, SEPARATOR, DocxFileLoader
from loaders.errors import LoadError
from loaders.options import ReadOptions
from loaders.registry import read
from loaders.source import SourceFile
from loaders.tables import TABLE_HEADER
from tests.loaders.office_files import (
    CFB,
    ENCRYPTED,
    assert_bomb_refused,
    docx_bytes,
    pptx_bytes,
    replace_member,
    zip_of,
)

CHAPTER_1 = "第一章 总则"
ARTICLE_3 = f"{CHAPTER_1} > 第三条"
SCOPE = f"{ARTICLE_3} > 一、适用范围"
ARTICLE_4 = f"{CHAPTER_1} > 第四条"
CHAPTER_2 = "第二章 附则"
HEADER, FOOTER_1, FOOTER_2 = "某某公司内部文件", "第 1 页", "附则 第 2 页"
ROWS = 200
MERGED_ROWS = range(5, 8)  # the "部门" cell of data rows 5..7 is one vertically merged cell
W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def load(path: Path) -> list[Document]:
    return list(DocxFileLoader(path, ReadOptions()).lazy_load())


def _merge(table: Table, first: tuple[int, int], last: tuple[int, int], text: str) -> None:
    merged = table.cell(*first).merge(table.cell(*last))
    merged.text = text  # merge() concatenates the cells' paragraphs; one value is what a reader sees


def _staff_table(document: WordDocument) -> None:
    table = document.add_table(rows=ROWS + 1, cols=3)
    values = [["序号", "姓名", "部门"]] + [[str(row), f"员工{row}", f"部门{row % 4}"] for row in range(1, ROWS + 1)]
    for row, texts in zip(table.rows, values, strict=True):  # table.cell() rebuilds the whole grid per call
        for cell, text in zip(row.cells, texts, strict=True):
            cell.text = text
    _merge(table, (MERGED_ROWS[0], 2), (MERGED_ROWS[-1], 2), "研发部")
    _merge(table, (10, 1), (10, 2), "空缺")


def _outline_style(document: WordDocument) -> str:
    """A custom style whose only sign of being a heading is its outline level (2: heading level 3)."""
    style = document.styles.add_style("条款标题", WD_STYLE_TYPE.PARAGRAPH)
    style.element.get_or_add_pPr().append(parse_xml(f'<w:outlineLvl {W_NS} w:val="2"/>'))
    return style.name


def build_rules(path: Path) -> Path:
    document = docx.Document()
    document.add_paragraph("本规定适用于全体员工。")
    document.add_heading(CHAPTER_1, 1)
    document.add_paragraph("第一条 为了规范管理，制定本规定。")
    document.add_paragraph("")  # empty paragraphs leave no trace
    document.add_heading("第三条", 2)
    document.add_paragraph("员工应当遵守以下要求：")
    document.add_paragraph("按时上班", style="List Bullet")
    document.add_paragraph("保守秘密", style="List Number")
    _staff_table(document)
    document.add_paragraph("表后说明。")
    document.add_paragraph("一、适用范围", style=_outline_style(document))
    document.add_paragraph("适用于正式员工。")
    article = document.add_paragraph("第四条")  # a heading by its own outline level (1: level 2), style Normal
    article._p.get_or_add_pPr().append(parse_xml(f'<w:outlineLvl {W_NS} w:val="1"/>'))
    document.add_paragraph("第四条的内容。")
    first = document.sections[0]
    first.header.paragraphs[0].text = HEADER
    first.footer.paragraphs[0].text = FOOTER_1
    second = document.add_section(WD_SECTION.NEW_PAGE)
    second.header.is_linked_to_previous = False
    second.header.paragraphs[0].text = HEADER  # the same header again: must come out once
    second.footer.is_linked_to_previous = False
    second.footer.paragraphs[0].text = FOOTER_2
    document.add_heading(CHAPTER_2, 1)
    document.add_paragraph("本规定自发布之日起施行。")
    document.save(str(path))
    return path


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[Document]:
    return load(build_rules(tmp_path_factory.mktemp("docx") / "规章.docx"))


def test_documents_follow_the_body_with_section_breadcrumbs(rules: list[Document]) -> None:
    shape = [(doc.metadata.get("section"), TABLE_HEADER in doc.metadata) for doc in rules]
    assert shape == [
        (None, False),
        (CHAPTER_1, False),
        (ARTICLE_3, False),
        (ARTICLE_3, True),
        (ARTICLE_3, False),
        (SCOPE, False),
        (ARTICLE_4, False),
        (CHAPTER_2, False),
        (HEADERS_AND_FOOTERS, False),
    ]
    texts = [doc.page_content for i, doc in enumerate(rules) if i != 3]
    assert texts == [
        "本规定适用于全体员工。",
        "第一章 总则\n第一条 为了规范管理，制定本规定。",
        "第三条\n员工应当遵守以下要求：\n- 按时上班\n- 保守秘密",
        "表后说明。",
        "一、适用范围\n适用于正式员工。",
        "第四条\n第四条的内容。",
        "第二章 附则\n本规定自发布之日起施行。",
        f"{HEADER}\n{FOOTER_1}\n{FOOTER_2}",
    ]


def test_headers_and_footers_come_out_exactly_once(rules: list[Document]) -> None:
    text = SEPARATOR.join(doc.page_content for doc in rules)
    for line in (HEADER, FOOTER_1, FOOTER_2):
        assert text.count(line) == 1


def test_the_200_row_table_is_one_document_with_merged_values_filled(rules: list[Document]) -> None:
    table = rules[3]
    lines = table.page_content.split("\n")
    assert table.metadata[TABLE_HEADER] == "| 序号 | 姓名 | 部门 |\n| --- | --- | --- |"
    assert lines[:2] == table.metadata[TABLE_HEADER].split("\n")
    assert len(lines) == 2 + ROWS
    assert lines[2] == "| 1 | 员工1 | 部门1 |"
    assert lines[-1] == f"| {ROWS} | 员工{ROWS} | 部门0 |"
    for row in MERGED_ROWS:
        assert lines[1 + row] == f"| {row} | 员工{row} | 研发部 |"
    assert lines[1 + 10] == "| 10 | 空缺 | 空缺 |"


def test_start_index_is_the_offset_in_the_rendered_document(rules: list[Document]) -> None:
    rendered = SEPARATOR.join(doc.page_content for doc in rules)
    for doc in rules:
        start = doc.metadata["start_index"]
        assert rendered[start : start + len(doc.page_content)] == doc.page_content
    assert [doc.metadata["start_index"] for doc in rules] == sorted(doc.metadata["start_index"] for doc in rules)


def test_read_adds_the_common_metadata_and_every_value_is_a_scalar(tmp_path: Path) -> None:
    path = build_rules(tmp_path / "规章.docx")
    docs = list(read(SourceFile(tmp_path, path)))
    assert {doc.metadata["source"] for doc in docs} == {"规章.docx"}
    assert {doc.metadata["file_type"] for doc in docs} == {"docx"}
    for doc in docs:
        assert all(isinstance(value, str | int | float | bool) for value in doc.metadata.values())


def test_title_and_localized_heading_names(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("员工手册", 0)  # Title: level 0, above every heading
    chinese = document.styles.add_style("标题 1", WD_STYLE_TYPE.PARAGRAPH)  # as WPS names Heading 1
    document.add_paragraph("第一章 入职", style=chinese)
    document.add_paragraph("报到流程。")
    document.save(str(tmp_path / "手册.docx"))
    docs = load(tmp_path / "手册.docx")
    assert [(doc.metadata["section"], doc.page_content) for doc in docs] == [
        ("员工手册", "员工手册"),
        ("员工手册 > 第一章 入职", "第一章 入职\n报到流程。"),
    ]


def test_text_boxes_tracked_changes_and_content_controls(tmp_path: Path) -> None:
    document = docx.Document()
    ns = nsdecls("w") + ' xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    box = "<w:txbxContent><w:p><w:r><w:t>文本框里的话</w:t></w:r></w:p></w:txbxContent>"
    body = document.element.body
    for xml in (
        # Word writes a text box twice: DrawingML in mc:Choice, a VML copy in mc:Fallback.
        f"<w:p {ns}><w:r><w:t>锚点段落</w:t></w:r><w:r><mc:AlternateContent><mc:Choice><w:drawing>{box}"
        f"</w:drawing></mc:Choice><mc:Fallback><w:pict>{box}</w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>",
        f"<w:p {ns}><w:r><w:t xml:space='preserve'>保留 </w:t></w:r><w:del><w:r><w:delText>删掉</w:delText></w:r>"
        "</w:del><w:ins><w:r><w:t>插入</w:t></w:r></w:ins><w:r><w:tab/><w:t>后</w:t><w:br/><w:t>换行</w:t></w:r></w:p>",
        f"<w:sdt {ns}><w:sdtContent><w:p><w:r><w:t>内容控件里的段落</w:t></w:r></w:p></w:sdtContent></w:sdt>",
    ):
        body.sectPr.addprevious(parse_xml(xml))
    document.save(str(tmp_path / "features.docx"))
    (doc,) = load(tmp_path / "features.docx")
    assert doc.page_content == "锚点段落\n文本框里的话\n保留 插入 后\n换行\n内容控件里的段落"


def _add_notes(document: WordDocument, name: str, content_type: str, reltype: str) -> None:
    """python-docx cannot write notes: the part is added as Word writes it, separators included."""
    tag = name[:-1]
    xml = (
        f"<w:{name} {nsdecls('w')}>"
        f'<w:{tag} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{tag}>'
        f'<w:{tag} w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/></w:r></w:p></w:{tag}>'
        f'<w:{tag} w:id="1"><w:p><w:r><w:t>参见《劳动法》</w:t></w:r></w:p><w:p><w:r><w:t>第三条。</w:t></w:r></w:p>'
        f'</w:{tag}><w:{tag} w:id="2"><w:p><w:r><w:t>{name} two</w:t></w:r></w:p></w:{tag}>'
        f"</w:{name}>"
    )
    part = Part(PackURI(f"/word/{name}.xml"), content_type, xml.encode(), document.part.package)
    document.part.relate_to(part, reltype)


def test_footnotes_and_endnotes(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("正文。")
    _add_notes(document, "footnotes", CT.WML_FOOTNOTES, RT.FOOTNOTES)
    _add_notes(document, "endnotes", CT.WML_ENDNOTES, RT.ENDNOTES)
    document.save(str(tmp_path / "notes.docx"))
    docs = load(tmp_path / "notes.docx")
    assert [(doc.metadata.get("section"), doc.page_content) for doc in docs] == [
        (None, "正文。"),
        (FOOTNOTES, "[1] 参见《劳动法》 第三条。\n[2] footnotes two"),
        (ENDNOTES, "[1] 参见《劳动法》 第三条。\n[2] endnotes two"),
    ]


def test_no_text_is_refused(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("   ")
    document.add_table(rows=2, cols=2)  # an empty table is no text either
    document.save(str(tmp_path / "empty.docx"))
    with pytest.raises(LoadError, match=r"^no text in the Word document$"):
        load(tmp_path / "empty.docx")


# ----- files that must be refused, each with one line ------------------------------------------------------


REFUSED = {
    "encrypted": (
        ENCRYPTED,
        r"encrypted Word file: remove the password \(save a copy without one\)",
    ),
    "legacy": (CFB + bytes(1024), r"legacy binary Word format inside a new-format name: save it again in the new .*"),
    "truncated": (docx_bytes()[:2000], r"corrupt Word file: not a zip archive"),
    "not office": (zip_of("notes.txt", b"just text"), r"not a Word file: a zip archive without a Word document in it"),
    "presentation": (pptx_bytes(), r"not a Word file: it holds a PowerPoint presentation"),
    "bad xml": (replace_member(docx_bytes(), "word/document.xml", b"<w:document"), r"corrupt Word file: .+"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_one_line(tmp_path: Path, case: str) -> None:
    data, pattern = REFUSED[case]
    path = tmp_path / f"{case}.docx"
    path.write_bytes(data)
    with pytest.raises(LoadError) as info:
        list(read(SourceFile(tmp_path, path)))
    assert "\n" not in str(info.value)
    assert info.value.cause == str(info.value)
    assert re.fullmatch(pattern, str(info.value)), str(info.value)


@pytest.mark.slow
def test_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    assert_bomb_refused(tmp_path / "bomb.docx", "word/document.xml", load)


def test_core_properties_on_every_document(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("正文")
    core = document.core_properties
    core.title, core.author = "员工手册", "人事部"
    core.created, core.modified = datetime.datetime(2024, 3, 1, 9, 30), datetime.datetime(2025, 1, 2)
    document.save(str(tmp_path / "手册.docx"))
    (doc,) = load(tmp_path / "手册.docx")
    assert {k: doc.metadata[k] for k in ("title", "author", "created", "modified")} == {
        "title": "员工手册",
        "author": "人事部",
        "created": "2024-03-01T09:30:00+00:00",
        "modified": "2025-01-02T00:00:00+00:00",
    }
