"""read(): format dispatch and the metadata every Document carries, over walk() of a mixed folder."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from langchain_core.documents import Document

from loaders.errors import LoadError
from loaders.registry import SUPPORTED_EXTENSIONS, read
from loaders.source import SourceFile
from loaders.walk import walk
from testbed.shared import sample_pdfs

SAMPLES = sample_pdfs()
FILES: dict[str, bytes] = {
    "notes.txt": "Plain notes. 纯文本笔记。\n".encode(),
    "guide/README.md": "# Guide\n\nMarkdown 文档。\n".encode(),
    "guide/api.rst": b"API\n===\n\nReference.\n",
    "guide/windows.txt": "用 GB18030 保存的中文。\n".encode("gb18030"),
    "site/index.HTML": b"<html><head><title>Home</title></head><body><p>Welcome</p></body></html>",
    "src/app.py": b"print('hi')\n",
    "src/run.sh": b"#!/bin/sh\necho hi\n",
    "papers/two-column.pdf": (SAMPLES / "en_latex_multicolumn.pdf").read_bytes(),
}
FILE_TYPES = {
    "notes.txt": "text",
    "guide/README.md": "markdown",
    "guide/api.rst": "rst",
    "guide/windows.txt": "text",
    "site/index.HTML": "html",
    "src/app.py": "code",
    "src/run.sh": "code",
    "papers/two-column.pdf": "pdf",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for name, data in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return tmp_path


def read_all(root: Path) -> dict[str, list[Document]]:
    files = [item for item in walk([root]) if isinstance(item, SourceFile)]
    return {file.source: list(read(file)) for file in files}


def test_supported_extensions_cover_every_format() -> None:
    assert {".pdf", ".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".py", ".ts", ".go", ".sh"} <= (
        SUPPORTED_EXTENSIONS
    )
    assert all(ext.startswith(".") and ext == ext.lower() for ext in SUPPORTED_EXTENSIONS)


def test_every_document_carries_the_common_metadata(corpus: Path) -> None:
    docs = read_all(corpus)
    assert set(docs) == set(FILES)
    for source, file_docs in docs.items():
        digest = hashlib.sha256(FILES[source]).hexdigest()
        assert file_docs, source
        for doc in file_docs:
            meta = doc.metadata
            assert meta["source"] == source
            assert meta["file_type"] == FILE_TYPES[source]
            assert meta["file_hash"] == digest
            assert isinstance(meta["start_index"], int)
            assert all(type(value) in (str, int, float, bool) for value in meta.values()), meta  # Chroma
    assert [d.metadata["page"] for d in docs["papers/two-column.pdf"]] == [1, 2, 3]
    assert docs["src/app.py"][0].metadata["language"] == "python"
    assert "language" not in docs["src/run.sh"][0].metadata
    assert docs["guide/windows.txt"][0].page_content == "用 GB18030 保存的中文。\n"
    assert docs["site/index.HTML"][0].page_content == "Home\nWelcome"


def test_pdf_password_is_passed_on(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    shutil.copy(SAMPLES / "edge_encrypted_libreoffice-writer-password.pdf", path)
    file = SourceFile(tmp_path, path)
    with pytest.raises(LoadError, match="encrypted"):
        list(read(file))
    (page,) = read(file, pdf_password="openpassword")
    assert page.metadata["source"] == "locked.pdf" and "Lorem ipsum" in page.page_content


def test_unsupported_extension_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "table.xyz"
    path.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(LoadError, match=r"^unsupported file type \.xyz$"):
        list(read(SourceFile(path, path)))


def test_file_system_errors_become_load_errors(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = SourceFile(corpus, corpus / "notes.txt")

    # Tests run as root, which chmod cannot lock out: make opening the file fail instead.
    def denied(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(LoadError, match=r"^permission denied$"):
        list(read(file))


def test_a_file_deleted_after_the_walk(corpus: Path) -> None:
    file = SourceFile(corpus, corpus / "notes.txt")
    (corpus / "notes.txt").unlink()
    with pytest.raises(LoadError, match=r"^no such file or folder$"):
        list(read(file))


def test_load_errors_name_the_cause_in_one_line(corpus: Path) -> None:
    (corpus / "empty.md").write_bytes(b"")
    with pytest.raises(LoadError) as caught:
        list(read(SourceFile(corpus, corpus / "empty.md")))
    assert str(caught.value) == "empty file" and caught.value.page is None
