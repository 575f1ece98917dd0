"""RTF files written by the tests: GBK bytes as \\'xx escapes and raw, \\uN code points, a table row."""

from __future__ import annotations

from pathlib import Path

import pytest

from loaders.errors import LoadError
from loaders.registry import read
from loaders.rtf import RtfFileLoader
from loaders.source import SourceFile

RTF_TEXT = "第三条 仓库钥匙由皇甫嵩保管，柜号 C-5531。\n第四条 离开时锁门。\n姓名|部门|"


def _escaped(text: str) -> str:
    return "".join(f"\\'{byte:02x}" for byte in text.encode("gbk"))


def rtf() -> bytes:
    """RTF_TEXT as WordPad and Word write Chinese: the GBK code page declared, characters as escaped GBK bytes or
    \\uN with an ANSI fallback, one line raw GBK (some writers do that), a table row; a picture, which has no text."""
    unicode = "\\uc1" + "".join(f"\\u{ord(c)}?" for c in "第三条")
    body = unicode + " " + _escaped("仓库钥匙由皇甫嵩保管，柜号 C-5531。") + "\\par\n"
    raw = "第四条 离开时锁门。".encode("gbk")
    table = "\\trowd\\cellx1000\\cellx2000 " + _escaped("姓名") + "\\cell " + _escaped("部门") + "\\cell\\row\n"
    picture = "{\\pict\\pngblip 89504e470d0a1a0a}"
    head = "{\\rtf1\\ansi\\ansicpg936\\deff0{\\fonttbl{\\f0\\fnil\\fcharset134 SimSun;}}\\f0\n"
    return head.encode() + body.encode() + raw + b"\\par\n" + picture.encode() + table.encode() + b"}"


def test_gbk_rtf_through_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "通知.rtf"
    path.write_bytes(rtf())
    (doc,) = read(SourceFile(root=tmp_path, path=path))
    assert doc.page_content == RTF_TEXT
    assert (doc.metadata["file_type"], doc.metadata["start_index"]) == ("rtf", 0)


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"  \n", r"^empty file$"),
        ("纯文本".encode(), r"^not an RTF file: it does not start with \{\\rtf$"),
        (b"{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\par}", r"^no text in the RTF file$"),
    ],
    ids=["empty", "not-rtf", "no-text"],
)
def test_bad_files(tmp_path: Path, content: bytes, cause: str) -> None:
    path = tmp_path / "坏.rtf"
    path.write_bytes(content)
    with pytest.raises(LoadError, match=cause):
        list(RtfFileLoader(path).lazy_load())
