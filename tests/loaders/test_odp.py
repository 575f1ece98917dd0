"""OpenDocument presentations built with odfpy (tests/loaders/odf_files.py): slides, titles, tables, notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from loaders.errors import LoadError
from loaders.odp import OdpFileLoader
from loaders.registry import read
from loaders.slides import NOTES_PREFIX
from loaders.source import SourceFile
from tests.loaders.odf_files import ODP_TABLE, SLIDES, build_odp, build_odt


def test_slides_with_titles_tables_and_notes(tmp_path: Path) -> None:
    path = tmp_path / "汇报.odp"
    build_odp(path)
    docs = list(read(SourceFile(root=tmp_path, path=path)))
    assert [(doc.metadata["page"], doc.metadata["title"]) for doc in docs] == [
        (1, "开场"),
        (2, "年度人物"),
        (3, "数据"),
        (3, "数据"),
    ]
    # Title first though written last; the page-number field left out; the notes close the slide.
    title, body, notes = SLIDES[1]
    assert docs[1].page_content.splitlines() == [title, *body, NOTES_PREFIX + str(notes)]
    assert docs[3].page_content.splitlines()[2:] == [f"| {' | '.join(row)} |" for row in ODP_TABLE[1:]]
    assert [doc.metadata["start_index"] for doc in docs] == [0, 0, 0, len("数据") + 2]
    assert {doc.metadata["file_type"] for doc in docs} == {"odp"}


def test_a_text_document_named_odp(tmp_path: Path) -> None:
    path = tmp_path / "规章.odp"
    build_odt(path)
    with pytest.raises(LoadError, match=r"^not an OpenDocument presentation file: it holds a text document"):
        list(OdpFileLoader(path).lazy_load())
