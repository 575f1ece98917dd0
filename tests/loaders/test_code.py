"""Code files: decoded like text, one Document unless huge, tagged with their language."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_text_splitters import Language

from loaders.code import LANGUAGES, CodeFileLoader
from loaders.errors import LoadError

PYTHON = 'def greet(name: str) -> str:\n    """打招呼。"""\n    return f"你好, {name}"\n'


def test_python_file_is_one_document_with_its_language(tmp_path: Path) -> None:
    path = tmp_path / "greet.py"
    path.write_text(PYTHON, encoding="utf-8")
    docs = list(CodeFileLoader(path, LANGUAGES[".py"]).lazy_load())
    assert [(d.page_content, d.metadata) for d in docs] == [(PYTHON, {"start_index": 0, "language": "python"})]


@pytest.mark.parametrize(
    ("suffix", "language"),
    [(".tsx", "ts"), (".mjs", "js"), (".h", "c"), (".hpp", "cpp"), (".cs", "csharp"), (".kt", "kotlin"),
     (".rs", "rust"), (".go", "go"), (".rb", "ruby"), (".php", "php"), (".swift", "swift"), (".pl", "perl")],
)  # fmt: skip
def test_extensions_map_to_splitter_languages(suffix: str, language: str) -> None:
    assert LANGUAGES[suffix] == Language(language)


def test_shell_has_no_language_entry_so_none_is_set(tmp_path: Path) -> None:
    path = tmp_path / "run.sh"
    path.write_text("#!/bin/sh\necho 'hi'\n", encoding="utf-8")
    (doc,) = CodeFileLoader(path, LANGUAGES[".sh"]).lazy_load()
    assert doc.metadata == {"start_index": 0}


def test_gb18030_comments_decode(tmp_path: Path) -> None:
    path = tmp_path / "legacy.c"
    path.write_bytes("/* 旧代码的中文注释 */\nint main(void) { return 0; }\n".encode("gb18030"))
    (doc,) = CodeFileLoader(path, LANGUAGES[".c"]).lazy_load()
    assert doc.page_content.startswith("/* 旧代码的中文注释 */")


def test_a_huge_file_is_streamed_and_every_block_has_the_language(tmp_path: Path) -> None:
    source = "".join(f"x_{i} = {i}  # 第{i}行\n" for i in range(2000))
    path = tmp_path / "big.py"
    path.write_text(source, encoding="utf-8")
    docs = list(CodeFileLoader(path, Language.PYTHON, block_size=4096).lazy_load())
    assert len(docs) > 5
    assert {d.metadata["language"] for d in docs} == {"python"}
    assert "".join(d.page_content for d in docs) == source


def test_binary_data_with_a_code_extension_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "module.py"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    with pytest.raises(LoadError, match=r"^binary file with a text extension$"):
        list(CodeFileLoader(path, Language.PYTHON).lazy_load())
