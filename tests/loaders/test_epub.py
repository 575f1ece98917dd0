"""EPUB: chapters in spine order, section names, DRM and corrupt books, on EPUBs built with zipfile in tmp_path."""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

import pytest

from loaders.epub import EpubFileLoader
from loaders.errors import LoadError
from loaders.options import ReadOptions
from loaders.registry import read
from loaders.source import SourceFile

CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="{opf}" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
"""

# The manifest lists the chapters in another order than the spine; "chapter two" has a space in its name.
OPF = """<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:identifier id="id">urn:uuid:0</dc:identifier>
    <dc:title>三体</dc:title>
    <dc:language>zh</dc:language>
  </metadata>
  <manifest>
    <item id="c3" href="Text/ch3.xhtml" media-type="application/xhtml+xml"/>
    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
    <item id="c1" href="Text/ch1.xhtml" media-type="application/xhtml+xml"/>
    <item id="css" href="Styles/book.css" media-type="text/css"/>
    <item id="c2" href="Text/chapter%20two.xhtml" media-type="application/xhtml+xml"/>
  </manifest>
  <spine>
    <itemref idref="c1"/>
    <itemref idref="c2"/>
    <itemref idref="c3"/>
  </spine>
</package>
"""

NAV = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<head><title>目录</title></head>
<body>
  <nav epub:type="landmarks"><ol><li><a href="Text/ch3.xhtml">Landmark, not a chapter name</a></li></ol></nav>
  <nav epub:type="toc"><ol><li><a href="Text/ch1.xhtml#top">第一章　科学边界</a></li></ol></nav>
</body>
</html>
"""


def xhtml(title: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml">
<head><title>{title}</title><link rel="stylesheet" href="../Styles/book.css"/>
<style>p {{ color: red; }}</style><script>var hidden = "script text";</script></head>
<body>{body}</body>
</html>
"""


CHAPTERS = {
    # Named by the table of contents (its heading and its <title>, the book's title, are not used).
    "OEBPS/Text/ch1.xhtml": xhtml("三体", "<h1>第一章</h1><p>汪淼觉得，来找他的这四个人是一个奇怪的组合。</p>"),
    # Not in the table of contents: named by its first heading with text.
    "OEBPS/Text/chapter two.xhtml": xhtml(
        "三体", "<h2><img src='x.png'/></h2><h2>第二章 射手和农场主</h2><p>科学边界<br/>的会议。</p>"
    ),
    # No heading: named by its <title>.
    "OEBPS/Text/ch3.xhtml": xhtml("第三章 三体游戏", "<div><p>一个寒冷的早晨。</p><p hidden='hidden'>隐藏</p></div>"),
}


def make_epub(path: Path, members: dict[str, str | bytes]) -> Path:
    """An EPUB as readers expect it: "mimetype" first and stored, the rest deflated."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def book(replace: dict[str, str | bytes | None] | None = None) -> dict[str, str | bytes]:
    """The members of the test book, with `replace` applied: member name -> its new data, or None to remove it."""
    members: dict[str, str | bytes] = {
        "META-INF/container.xml": CONTAINER.format(opf="OEBPS/content.opf"),
        "OEBPS/content.opf": OPF,
        "OEBPS/nav.xhtml": NAV,
        "OEBPS/Styles/book.css": "p { margin: 0 }",
        **CHAPTERS,
    }
    for name, data in (replace or {}).items():
        if data is None:
            del members[name]
        else:
            members[name] = data
    return members


def load(path: Path, **options: object) -> list:
    return list(EpubFileLoader(path, ReadOptions(**options)).lazy_load())


def test_chapters_in_spine_order_with_their_names(tmp_path: Path) -> None:
    docs = load(make_epub(tmp_path / "三体.epub", book()))
    assert [doc.page_content for doc in docs] == [
        "第一章\n汪淼觉得，来找他的这四个人是一个奇怪的组合。",
        "第二章 射手和农场主\n科学边界\n的会议。",
        "一个寒冷的早晨。",
    ]
    assert [doc.metadata for doc in docs] == [
        {"page": 1, "start_index": 0, "title": "三体", "section": "第一章 科学边界"},
        {"page": 2, "start_index": 0, "title": "三体", "section": "第二章 射手和农场主"},
        {"page": 3, "start_index": 0, "title": "三体", "section": "第三章 三体游戏"},
    ]


def test_spine_edge_cases_keep_their_numbers(tmp_path: Path) -> None:
    opf = (
        OPF.replace(
            '<item id="c3"', '<item id="cover" href="Images/cover.jpg" media-type="image/jpeg"/>\n<item id="c3"'
        )
        .replace('<itemref idref="c3"/>', '<itemref idref="c3" linear="no"/>')
        .replace("<spine>", '<spine>\n<itemref idref="cover"/><itemref idref="gone"/>')
        .replace("<dc:title>三体</dc:title>", "")
    )
    errors: list[LoadError] = []
    path = make_epub(tmp_path / "book.epub", book({"OEBPS/content.opf": opf, "OEBPS/Text/ch1.xhtml": None}))
    docs = load(path, on_page_error=errors.append)
    # 1: an image, no text; 2: not in the manifest; 3: missing from the zip; 5: linear="no", read in place.
    assert [(doc.metadata["page"], doc.metadata["section"]) for doc in docs] == [
        (4, "第二章 射手和农场主"),
        (5, "第三章 三体游戏"),
    ]
    assert all("title" not in doc.metadata for doc in docs)  # the book has no dc:title
    assert [(err.page, str(err)) for err in errors] == [
        (2, "spine item 'gone' is not in the manifest"),
        (3, "OEBPS/Text/ch1.xhtml is missing from the archive"),
    ]


def test_an_unreadable_chapter_is_logged_by_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = make_epub(tmp_path / "book.epub", book({"OEBPS/Text/ch3.xhtml": b"\x00\x01binary"}))
    with caplog.at_level(logging.WARNING, logger="loaders.epub"):
        docs = load(path)
    assert [doc.metadata["page"] for doc in docs] == [1, 2]
    assert "chapter 3 skipped" in caplog.text


def test_epub2_with_an_ncx_and_the_package_at_the_root(tmp_path: Path) -> None:
    opf = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="2.0">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Flatland</dc:title></metadata>
  <manifest>
    <item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>
    <item id="p1" href="text/part1.html" media-type="application/xhtml+xml"/>
  </manifest>
  <spine toc="ncx"><itemref idref="p1"/></spine>
</package>"""
    ncx = """<?xml version="1.0" encoding="utf-8"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><navMap>
  <navPoint id="n1"><navLabel><text>Part I. This World</text></navLabel><content src="text/part1.html"/>
    <navPoint id="n2"><navLabel><text>Section 1</text></navLabel><content src="text/part1.html#s1"/></navPoint>
  </navPoint>
</navMap></ncx>"""
    # GB2312 declared, the bytes GBK (a superset): the decoder falls back to GB18030.
    chapter = xhtml("Flatland", "<h1>§1 Of the Nature of Flatland</h1><p>镕</p>").replace("utf-8", "gb2312")
    members = {
        "META-INF/container.xml": CONTAINER.format(opf="content.opf"),
        "content.opf": opf,
        "toc.ncx": ncx,
        "text/part1.html": chapter.encode("gbk"),
    }
    (doc,) = load(make_epub(tmp_path / "flatland.epub", members))
    assert doc.page_content == "§1 Of the Nature of Flatland\n镕"
    assert doc.metadata == {"page": 1, "start_index": 0, "title": "Flatland", "section": "Part I. This World"}


ENCRYPTION = """<?xml version="1.0" encoding="UTF-8"?>
<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
            xmlns:enc="http://www.w3.org/2001/04/xmlenc#">
  <enc:EncryptedData>
    <enc:EncryptionMethod Algorithm="{algorithm}"/>
    <enc:CipherData><enc:CipherReference URI="{uri}"/></enc:CipherData>
  </enc:EncryptedData>
</encryption>
"""


def test_a_drm_encrypted_epub(tmp_path: Path) -> None:
    encryption = ENCRYPTION.format(algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc", uri="OEBPS/Text/ch1.xhtml")
    path = make_epub(
        tmp_path / "drm.epub", book({"META-INF/encryption.xml": encryption, "OEBPS/Text/ch1.xhtml": b"\x8f"})
    )
    with pytest.raises(LoadError, match=r"^encrypted EPUB \(DRM\): cannot be read$"):
        load(path)


def test_obfuscated_fonts_are_not_drm(tmp_path: Path) -> None:
    encryption = ENCRYPTION.format(algorithm="http://www.idpf.org/2008/embedding", uri="OEBPS/Fonts/kai.otf")
    path = make_epub(tmp_path / "fonts.epub", book({"META-INF/encryption.xml": encryption}))
    assert len(load(path)) == 3


@pytest.mark.parametrize(
    ("members", "cause"),
    [
        (book({"OEBPS/content.opf": None}), "corrupt EPUB: OEBPS/content.opf is missing from the archive"),
        (book({"META-INF/container.xml": None}), "corrupt EPUB: META-INF/container.xml is missing from the archive"),
        (book({"META-INF/container.xml": "<container/>"}), "corrupt EPUB: META-INF/container.xml names no package"),
        (book({"OEBPS/content.opf": OPF[: OPF.index("<spine>")] + "</package>"}), "corrupt EPUB: no spine in"),
        (book({"OEBPS/content.opf": OPF[:-30]}), "corrupt EPUB: OEBPS/content.opf is not valid XML (line"),
    ],
    ids=["no-opf", "no-container", "no-rootfile", "no-spine", "truncated-opf"],
)
def test_a_corrupt_package_is_refused(tmp_path: Path, members: dict[str, str | bytes], cause: str) -> None:
    with pytest.raises(LoadError, match="^" + re.escape(cause)):
        load(make_epub(tmp_path / "bad.epub", members))


def test_a_corrupt_zip_is_refused(tmp_path: Path) -> None:
    data = make_epub(tmp_path / "good.epub", book()).read_bytes()
    path = tmp_path / "truncated.epub"
    path.write_bytes(data[: len(data) // 2])  # the central directory is at the end
    with pytest.raises(LoadError, match=r"^corrupt EPUB file: "):
        load(path)


def test_a_book_without_text(tmp_path: Path) -> None:
    members = book(dict.fromkeys(CHAPTERS, xhtml("三体", "<p><img src='page.jpg'/></p>")))
    with pytest.raises(LoadError, match=r"^no text in the EPUB"):
        load(make_epub(tmp_path / "comic.epub", members))


def test_read_through_the_registry(tmp_path: Path) -> None:
    path = make_epub(tmp_path / "三体.epub", book())
    docs = list(read(SourceFile(path, path)))
    assert [doc.metadata["page"] for doc in docs] == [1, 2, 3]
    meta = docs[0].metadata
    assert (meta["source"], meta["file_type"], meta["title"]) == ("三体.epub", "epub", "三体")
    assert len(meta["file_hash"]) == 64
    assert all(type(value) in (str, int, float, bool) for doc in docs for value in doc.metadata.values())


@pytest.mark.parametrize(
    ("dates", "created", "modified"),
    [
        # EPUB 3: dc:date is the publication, dcterms:modified the last change.
        (
            '<dc:date>2008-01-01</dc:date><meta property="dcterms:modified">2020-05-01T10:00:00Z</meta>',
            "2008-01-01",
            "2020-05-01T10:00:00Z",
        ),
        # EPUB 2: dates told apart by opf:event.
        (
            '<dc:date opf:event="modification">2011-02-03</dc:date><dc:date opf:event="creation">2006</dc:date>',
            "2006",
            "2011-02-03",
        ),
    ],
)
def test_book_properties_on_every_chapter(tmp_path: Path, dates: str, created: str, modified: str) -> None:
    opf = OPF.replace(
        "<dc:language>zh</dc:language>",
        f'<dc:language>zh</dc:language><dc:creator opf:role="aut"> 刘慈欣 </dc:creator>{dates}',
    ).replace(
        'xmlns:dc="http://purl.org/dc/elements/1.1/"',
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf"',
    )
    docs = load(make_epub(tmp_path / "b.epub", book({"OEBPS/content.opf": opf})))
    assert len(docs) == 3
    for doc in docs:
        assert (doc.metadata["title"], doc.metadata["author"]) == ("三体", "刘慈欣")
        assert (doc.metadata["created"], doc.metadata["modified"]) == (created, modified)
