"""Word 97-2003 files through antiword: a public sample (tests/loaders/legacy_data/README.md), an encrypted one,
and files named .doc that are something else."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document

from loaders.doc import DocFileLoader
from loaders.errors import LoadError
from loaders.registry import read
from loaders.source import SourceFile
from tests.loaders.legacy_files import cfb
from tests.loaders.test_rtf import RTF_TEXT, rtf

DATA = Path(__file__).parent / "legacy_data"
SAMPLE_SENTENCE = "This is a harmless test document."


def load(path: Path) -> list[Document]:
    return list(DocFileLoader(path).lazy_load())


def test_text_under_its_heading() -> None:
    (doc,) = read(SourceFile(root=DATA, path=DATA / "harmless-clean.doc"))
    assert doc.metadata["section"] == "Test"  # the document's one heading
    assert (doc.metadata["file_type"], doc.metadata["start_index"]) == ("doc", 0)
    lines = doc.page_content.splitlines()
    assert lines[:2] == ["Test", SAMPLE_SENTENCE]
    assert "ünicöde-ßtringß" in doc.page_content  # decoded as UTF-8


def test_encrypted() -> None:
    with pytest.raises(LoadError, match=r"^encrypted Word file: remove the password \(save a copy without one\)$"):
        load(DATA / "encrypted.doc")


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"", r"^empty file$"),
        ("一段普通文字".encode(), r"^corrupt Word file: not an OLE compound file$"),
        (
            b"PK\x03\x04" + bytes(100),
            r"^not a Word 97-2003 file: it is a zip archive \(a \.docx\? rename it to \.docx\)$",
        ),
        ("<html><body>公文</body></html>".encode(), r"^not a Word 97-2003 file: it is a web page or XML"),
        (cfb({"Workbook": b"\0" * 64}), r"^not a Word file: it is an Excel workbook \(rename it to \.xls\)$"),
        (cfb({"Contents": b"\0" * 64}), r"^corrupt Word file: no Word document inside the OLE file$"),
    ],
    ids=["empty", "text", "docx", "html", "xls", "ole-without-word"],
)
def test_files_that_are_no_word_97_document(tmp_path: Path, content: bytes, cause: str) -> None:
    path = tmp_path / "公文.doc"
    path.write_bytes(content)
    with pytest.raises(LoadError, match=cause):
        load(path)


def test_rtf_named_doc_is_read_as_rtf(tmp_path: Path) -> None:
    path = tmp_path / "通知.doc"
    path.write_bytes(rtf())
    (doc,) = load(path)
    assert doc.page_content == RTF_TEXT


def test_without_antiword_the_cause_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH where no program is found
    with pytest.raises(LoadError, match=r"^antiword is not installed: install the Debian package antiword "):
        load(DATA / "harmless-clean.doc")
