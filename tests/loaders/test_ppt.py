"""PowerPoint 97-2003 files through catppt: decks built by tests/loaders/legacy_files.py, an encrypted public
sample (tests/loaders/legacy_data/README.md), and files named .ppt that are something else."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document

from loaders.errors import LoadError
from loaders.ppt import PptFileLoader
from loaders.registry import read
from loaders.source import SourceFile
from tests.loaders.legacy_files import cfb, ppt

DATA = Path(__file__).parent / "legacy_data"
SLIDES = [
    ("开场", ["欢迎各位。"]),
    ("年度人物", ["年度最佳销售：诸葛云飞，全年签约 386 单。", "奖金下周三发放。"]),
    ("Summary", ["Revenue grew 12%."]),
]


def load(path: Path) -> list[Document]:
    return list(PptFileLoader(path).lazy_load())


def test_one_document_per_slide_in_order(tmp_path: Path) -> None:
    path = tmp_path / "汇报.ppt"
    path.write_bytes(ppt(SLIDES))
    docs = list(read(SourceFile(root=tmp_path, path=path)))
    assert [doc.metadata["page"] for doc in docs] == [1, 2, 3]
    assert [doc.page_content.splitlines() for doc in docs] == [[title, *body] for title, body in SLIDES]
    assert {(doc.metadata["file_type"], doc.metadata["start_index"]) for doc in docs} == {("ppt", 0)}


@pytest.mark.parametrize("path", [DATA / "encrypted.ppt", None], ids=["powerpoint", "built"])
def test_encrypted(tmp_path: Path, path: Path | None) -> None:
    if path is None:
        path = tmp_path / "加密.ppt"
        path.write_bytes(ppt([("", [])], encrypted=True))
    with pytest.raises(
        LoadError, match=r"^encrypted PowerPoint file: remove the password \(save a copy without one\)$"
    ):
        load(path)


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"", r"^empty file$"),
        ("一段文字".encode(), r"^corrupt PowerPoint file: not an OLE compound file$"),
        (b"PK\x03\x04" + bytes(100), r"^not a PowerPoint 97-2003 file: it is a zip archive"),
        (cfb({"WordDocument": b"\0" * 64}), r"^not a PowerPoint file: no presentation inside the OLE file$"),
        (ppt([("", [])]), r"^no text in the PowerPoint file$"),
    ],
    ids=["empty", "text", "pptx", "doc", "no-text"],
)
def test_files_without_slides_to_read(tmp_path: Path, content: bytes, cause: str) -> None:
    path = tmp_path / "汇报.ppt"
    path.write_bytes(content)
    with pytest.raises(LoadError, match=cause):
        load(path)


def test_without_catppt_the_cause_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "汇报.ppt"
    path.write_bytes(ppt(SLIDES))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LoadError, match=r"^catppt is not installed: install the Debian package catdoc "):
        load(path)
