"""OpenDocument text built with odfpy (tests/loaders/odf_files.py): headings, notes, lists, merged tables, damage."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from langchain_core.documents import Document

from loaders.errors import LoadError
from loaders.odt import OdtFileLoader
from loaders.registry import read
from loaders.source import SourceFile
from tests.loaders.odf_files import ARTICLE, CHAPTER, NOTE_TEXT, ODT_FACT, build_odp, build_odt

CALAMINE_DATA = Path(__file__).parent / "legacy_data"


@pytest.fixture
def odt(tmp_path: Path) -> Path:
    path = tmp_path / "规章.odt"
    build_odt(path)
    return path


def load(path: Path) -> list[Document]:
    return list(OdtFileLoader(path).lazy_load())


def test_text_grouped_under_heading_breadcrumbs(odt: Path) -> None:
    docs = list(read(SourceFile(root=odt.parent, path=odt)))
    sections = [doc.metadata.get("section") for doc in docs]
    assert sections == [CHAPTER, f"{CHAPTER} > {ARTICLE}", f"{CHAPTER} > {ARTICLE}", "footnotes"]
    article = docs[1].page_content.splitlines()
    assert article[:2] == [ARTICLE, ODT_FACT]  # the note is out of the sentence
    assert article[2:] == ["两个 空格", "- 不得复制钥匙。", "- 离开时锁门。"]
    assert docs[3].page_content == f"[1] {NOTE_TEXT}"
    assert {doc.metadata["file_type"] for doc in docs} == {"odt"}


def test_table_with_a_merged_cell(odt: Path) -> None:
    table = load(odt)[2]
    assert table.page_content.splitlines() == [
        "| 姓名 | 部门 | 工号 |",
        "| --- | --- | --- |",
        "| 司马光 | 质检部 | G-7301 |",
        "| 合并的值 | 合并的值 | G-7302 |",
    ]


def test_start_index_counts_in_the_rendered_text(odt: Path) -> None:
    docs = load(odt)
    rendered = "\n\n".join(doc.page_content for doc in docs)
    for doc in docs:
        start = doc.metadata["start_index"]
        assert rendered[start : start + len(doc.page_content)] == doc.page_content


def test_encrypted(tmp_path: Path) -> None:
    # python-calamine's password-protected spreadsheet: the manifest marks content.xml as encrypted.
    path = tmp_path / "加密.odt"
    with zipfile.ZipFile(path, "w") as out, zipfile.ZipFile(CALAMINE_DATA / "password.ods") as source:
        for info in source.infolist():
            data = source.read(info.filename)
            out.writestr(info, data.replace(b"spreadsheet", b"text") if info.filename == "mimetype" else data)
    with pytest.raises(LoadError, match=r"^encrypted OpenDocument text file: remove the password"):
        load(path)


def test_other_kinds_and_damage(tmp_path: Path, odt: Path) -> None:
    slides = tmp_path / "幻灯片.odt"
    build_odp(slides)
    with pytest.raises(LoadError, match=r"^not an OpenDocument text file: it holds a presentation \(\.odp\)$"):
        load(slides)
    empty = tmp_path / "空.odt"
    empty.touch()
    with pytest.raises(LoadError, match=r"^empty file$"):
        load(empty)
    truncated = tmp_path / "截断.odt"
    truncated.write_bytes(odt.read_bytes()[:300])
    with pytest.raises(LoadError, match=r"^corrupt OpenDocument text file: "):
        load(truncated)
    bad_xml = tmp_path / "坏.odt"
    shutil.copy(odt, bad_xml)
    with zipfile.ZipFile(odt) as source, zipfile.ZipFile(bad_xml, "w") as out:
        for info in source.infolist():
            data = source.read(info.filename)
            out.writestr(info, data[:-40] if info.filename == "content.xml" else data)
    with pytest.raises(LoadError, match=r"^corrupt OpenDocument text file: "):
        load(bad_xml)
