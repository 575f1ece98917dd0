"""HTML: visible text, block structure and charsets, on pages written into tmp_path."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from loaders.errors import LoadError
from loaders.html import HtmlFileLoader

PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>  Qwen3   Embedding
     指南 </title>
  <style>body { color: red; }</style>
  <script>var secret = "script text";</script>
  <link rel="stylesheet" href="x.css">
</head>
<body>
  <noscript>Enable JavaScript</noscript>
  <template><p>template text</p></template>
  <h1>Getting   started</h1>
  <p>Embeddings map text
     to vectors.<!-- a comment --> Similar <b>meanings</b> land close.</p>
  <div>第一段<br>第二行</div>
  <p hidden>hidden paragraph</p>
  <p style="display: none">invisible paragraph</p>
  <ul><li>one</li><li>two</li></ul>
  <table>
    <tr><th>Model</th><th>Dim</th></tr>
    <tr><td>0.6B</td><td>1024</td></tr>
  </table>
  <pre>line one
line two</pre>
</body>
</html>
"""

EXPECTED = [
    "Qwen3 Embedding 指南",
    "Getting started",
    "Embeddings map text to vectors. Similar meanings land close.",
    "第一段",
    "第二行",
    "one",
    "two",
    "| Model | Dim |",
    "| --- | --- |",
    "| 0.6B | 1024 |",
    "line one",
    "line two",
]


def load(tmp_path: Path, data: bytes, name: str = "page.html") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    (doc,) = HtmlFileLoader(path).lazy_load()
    assert doc.metadata == {"start_index": 0}
    return doc.page_content


def test_visible_text_title_first_one_block_per_line(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(PAGE.encode())
    docs = list(HtmlFileLoader(path).lazy_load())  # text, the table, text
    assert "\n".join(doc.page_content for doc in docs).split("\n") == EXPECTED


def test_meta_charset_gb2312_is_read_as_gb18030(tmp_path: Path) -> None:
    page = '<html><head><meta charset="gb2312"><title>中文页面</title></head><body><p>检索增强生成</p></body></html>'
    assert load(tmp_path, page.encode("gb18030"), "zh.htm") == "中文页面\n检索增强生成"


def test_http_equiv_charset_is_honoured(tmp_path: Path) -> None:
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252"></head>'
        "<body><p>café au lait</p></body></html>"
    )
    assert load(tmp_path, page.encode("cp1252")) == "café au lait"


def test_undeclared_gb18030_falls_back_after_utf8(tmp_path: Path) -> None:
    page = "<html><body><p>没有声明字符集的页面</p></body></html>"
    assert load(tmp_path, page.encode("gb18030")) == "没有声明字符集的页面"


def test_a_wrong_declaration_falls_back(tmp_path: Path) -> None:
    page = '<html><head><meta charset="utf-8"></head><body><p>声明错了</p></body></html>'
    assert load(tmp_path, page.encode("gb18030")) == "声明错了"


def test_bom_wins_over_the_declaration(tmp_path: Path) -> None:
    page = '<html><head><meta charset="gbk"></head><body><p>带BOM的UTF-8</p></body></html>'
    assert load(tmp_path, codecs.BOM_UTF8 + page.encode()) == "带BOM的UTF-8"


def test_unclosed_head_still_yields_the_body(tmp_path: Path) -> None:
    page = "<html><head><title>T</title><body><p>Body text</p></body></html>"
    assert load(tmp_path, page.encode()) == "T\nBody text"


def test_deep_nesting_does_not_recurse(tmp_path: Path) -> None:
    page = "<div>" * 5000 + "deep text" + "</div>" * 5000
    assert load(tmp_path, page.encode()) == "deep text"


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (b"", "^empty file$"),
        (b"  \n\n ", "^empty file$"),
        (b"<html><head><script>x()</script></head><body> </body></html>", "^no visible text in the HTML$"),
        (b"<html>\x00\x01\x02</html>", "^binary file with a text extension$"),
    ],
)
def test_unusable_pages(tmp_path: Path, data: bytes, cause: str) -> None:
    path = tmp_path / "bad.html"
    path.write_bytes(data)
    with pytest.raises(LoadError, match=cause):
        list(HtmlFileLoader(path).lazy_load())
