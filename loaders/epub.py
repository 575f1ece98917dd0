"""EPUB (2 and 3): the text of each chapter, in reading order, read with zipfile, ElementTree and the HTML rules.

Why not langchain-community's ``UnstructuredEPubLoader``: it needs the unstructured + pandoc stack and flattens
the book, losing which chapter a passage came from. EbookLib is AGPL. The format itself is small: a zip whose
``META-INF/container.xml`` names the package (OPF), whose spine lists the chapters (XHTML) in reading order.
"""

from __future__ import annotations

import logging
import posixpath
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from bs4 import BeautifulSoup
from bs4.dammit import EncodingDetector
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.archive import open_zip
from loaders.errors import LoadError, nothing_read, reason
from loaders.html import visible_text
from loaders.options import ReadOptions
from loaders.properties import properties
from loaders.source import AnyPath
from loaders.text import decode_bytes

logger = logging.getLogger("loaders.epub")

#: The largest member read. The zip guard bounds the whole archive (1 GiB); one XHTML file that large would cost
#: BeautifulSoup many times that in memory. Real chapters weigh kilobytes; a whole novel in one file, a few MiB.
MAX_MEMBER = 32 << 20
_CONTAINER = "META-INF/container.xml"
_ENCRYPTION = "META-INF/encryption.xml"
_DC = "{http://purl.org/dc/elements/1.1/}"
_OPF_EVENT = "{http://www.idpf.org/2007/opf}event"
_XHTML = frozenset({"application/xhtml+xml", "text/html"})
_NCX = "application/x-dtbncx+xml"
# Font obfuscation (IDPF, Adobe) scrambles embedded fonts only; any other algorithm on a chapter is DRM.
_FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_PRESCAN = 4096  # where an XML declaration or <meta charset> names the encoding
# What a damaged member raises when read: bad CRC, bad deflate data, a truncated archive, an unsupported
# compression method, or (RuntimeError) a member encrypted with a zip password.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class _Item:
    """A manifest entry: its zip member name (resolved, URL-decoded), media type and fallback item id."""

    path: str
    media_type: str
    fallback: str | None
    properties: frozenset[str]


@dataclass(frozen=True)
class _Package:
    title: str | None
    own: dict[str, str]  # the book's properties: title, author, created, modified (`loaders.properties`)
    manifest: dict[str, _Item]  # item id -> item
    spine: list[str]  # item ids in reading order
    ncx: str | None  # the spine's ``toc`` attribute: the EPUB 2 table of contents


class EpubFileLoader(BaseLoader):
    """An EPUB as one Document per chapter with text, in spine (reading) order.

    Metadata: ``page`` (the chapter's 1-based position in the spine), ``start_index`` 0 (a Document is a whole
    chapter), the book's properties where the package has them (``title``: ``dc:title``, ``author``: ``dc:creator``,
    ``created``: ``dc:date``, ``modified``: ``dcterms:modified``, or EPUB 2's dated events) and ``section`` (the
    chapter's name: its table-of-contents label, else its first heading, else its ``<title>``; absent when it has
    none).

    Spine items marked ``linear="no"`` (notes, answer keys) are read in their spine position: they are the book's
    text, and keeping the position keeps ``page`` equal to the spine index EPUB tools show. Spine items that
    are not XHTML (a cover image) and chapters without visible text (a title page that is a picture) yield
    nothing but keep their number. A chapter's ``<title>`` is left out of its text (it is often the book title,
    repeated in every chapter); its name is in ``section``.

    Raises `LoadError` for a corrupt file (no container, package or spine), for DRM and when no chapter has
    text. A chapter that cannot be read (missing from the archive, undecodable, damaged) is skipped and handed to
    ``options.on_page_error`` as a `LoadError` with its ``page`` (default: logged as a warning on "loaders.epub").

    Usage (a LangChain document loader: any str or path-like)::

        docs = EpubFileLoader("book.epub").load()
        for chapter in EpubFileLoader("book.epub").lazy_load():
            print(chapter.metadata["page"], chapter.metadata.get("section"), len(chapter.page_content))
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)
        self.on_page_error = (options.on_page_error if options else None) or self._log_page_error

    def lazy_load(self) -> Iterator[Document]:
        with open_zip(self.path, "EPUB") as archive:
            package = _package(archive)
            items = [_chapter_item(package, idref) for idref in package.spine]
            _refuse_drm(archive, {item.path for item in items if item is not None})
            toc = _toc(archive, package)
            failed: LoadError | None = None
            extracted = False
            for page, (idref, item) in enumerate(zip(package.spine, items, strict=True), 1):
                if idref not in package.manifest:
                    failed = LoadError(f"spine item {idref!r} is not in the manifest", page=page)
                    self.on_page_error(failed)
                    continue
                if item is None:
                    continue  # an image or other non-XHTML spine item: no text
                try:
                    text, heading, head_title = _read_chapter(archive, item.path)
                except LoadError as err:
                    failed = LoadError(err.cause, page=page)
                    self.on_page_error(failed)
                    continue
                if not text:
                    continue
                extracted = True
                metadata: dict[str, str | int] = {"page": page, "start_index": 0, **package.own}
                # A <title> that only repeats the book's title does not name the chapter.
                name = toc.get(item.path) or heading or (head_title if head_title != package.title else None)
                if name:
                    metadata["section"] = name
                yield Document(page_content=text, metadata=metadata)
            if not extracted:
                raise nothing_read(failed, "chapter", "no text in the EPUB (images only?)")

    def _log_page_error(self, error: LoadError) -> None:
        logger.warning("%s: chapter %s skipped: %s", self.path, error.page, error)


def _package(archive: zipfile.ZipFile) -> _Package:
    """The package document named by the container: title, manifest and spine; raises LoadError if corrupt."""
    container = _xml(archive, _CONTAINER)
    rootfiles = [node.get("full-path", "") for node in container.iterfind(".//{*}rootfile")]
    opf_path = next((_resolve("", path) for path in rootfiles if path), None)
    if opf_path is None:
        raise LoadError(f"corrupt EPUB: {_CONTAINER} names no package document")
    opf = _xml(archive, opf_path)
    base = posixpath.dirname(opf_path)
    manifest = {
        node.get("id", ""): _Item(
            path=_resolve(base, node.get("href", "")),
            media_type=node.get("media-type", "").lower(),
            fallback=node.get("fallback"),
            properties=frozenset(node.get("properties", "").split()),
        )
        for node in opf.iterfind("{*}manifest/{*}item")
    }
    spine = opf.find("{*}spine")
    if spine is None:
        raise LoadError(f"corrupt EPUB: no spine in {opf_path}")
    idrefs = [node.get("idref", "") for node in spine.iterfind("{*}itemref")]
    if not idrefs:
        raise LoadError(f"corrupt EPUB: empty spine in {opf_path}")
    title = _first(opf.iter(f"{_DC}title"))
    own = properties(title=title, author=_first(opf.iter(f"{_DC}creator")), created=None, modified=None)
    # EPUB 3 dates the last change in <meta property="dcterms:modified">, EPUB 2 tells its dates apart by opf:event.
    dates = {node.get(_OPF_EVENT, "date"): _first([node]) for node in opf.iter(f"{_DC}date")}
    created = dates.get("creation") or dates.get("date") or dates.get("publication")
    modified = _first(n for n in opf.iterfind(".//{*}meta") if n.get("property") == "dcterms:modified") or dates.get(
        "modification"
    )
    own |= properties(title=None, author=None, created=created, modified=modified)
    return _Package(title=title, own=own, manifest=manifest, spine=idrefs, ncx=spine.get("toc"))


def _first(nodes: Iterable[ET.Element]) -> str | None:
    """The first non-empty text among ``nodes``, whitespace collapsed."""
    texts = (" ".join("".join(node.itertext()).split()) for node in nodes)
    return next((text for text in texts if text), None)


def _chapter_item(package: _Package, idref: str) -> _Item | None:
    """The XHTML item a spine entry shows: itself, or the first XHTML item down its fallback chain."""
    seen: set[str] = set()
    while idref in package.manifest and idref not in seen:  # `seen`: a fallback cycle must end
        seen.add(idref)
        item = package.manifest[idref]
        if item.media_type in _XHTML:
            return item
        idref = item.fallback or ""
    return None


def _refuse_drm(archive: zipfile.ZipFile, chapters: set[str]) -> None:
    """Raise if ``META-INF/encryption.xml`` lists a chapter under an algorithm other than font obfuscation."""
    if _ENCRYPTION not in archive.namelist():
        return
    for encrypted in _xml(archive, _ENCRYPTION).iterfind(".//{*}EncryptedData"):
        method = encrypted.find("{*}EncryptionMethod")
        reference = encrypted.find("{*}CipherData/{*}CipherReference")
        if method is None or reference is None or method.get("Algorithm") in _FONT_OBFUSCATION:
            continue
        # Paths in encryption.xml are relative to the root of the archive, not to the package document.
        if _resolve("", reference.get("URI", "")) in chapters:
            raise LoadError("encrypted EPUB (DRM): cannot be read")


def _toc(archive: zipfile.ZipFile, package: _Package) -> dict[str, str]:
    """Chapter member name -> its label in the table of contents (EPUB 3 nav, else EPUB 2 NCX), first entry.

    Only names sections, so a missing or broken table of contents gives {} (headings then name them).
    """
    nav = next((item for item in package.manifest.values() if "nav" in item.properties), None)
    ncx = package.manifest.get(package.ncx or "") or next(
        (item for item in package.manifest.values() if item.media_type == _NCX), None
    )
    labels: dict[str, str] = {}
    try:
        if nav is not None:
            soup = BeautifulSoup(_decode(_read(archive, nav.path)), "html.parser")
            navs = soup.find_all("nav")
            toc = next((node for node in navs if "toc" in str(node.get("epub:type", "")).split()), None)
            for link in (toc or soup).find_all("a", href=True):
                _label(labels, _resolve(posixpath.dirname(nav.path), str(link["href"])), link.get_text())
        if not labels and ncx is not None:
            for point in _xml(archive, ncx.path).iterfind(
                ".//{*}navPoint"
            ):  # document order: a chapter before its parts
                text, content = point.find("{*}navLabel/{*}text"), point.find("{*}content")
                if text is not None and content is not None:
                    _label(labels, _resolve(posixpath.dirname(ncx.path), content.get("src", "")), text.text or "")
    except LoadError as err:
        logger.debug("table of contents not used: %s", err)
        return {}
    return labels


def _label(labels: dict[str, str], path: str, text: str) -> None:
    if label := " ".join(text.split()):
        labels.setdefault(path, label)


def _read_chapter(archive: zipfile.ZipFile, path: str) -> tuple[str, str | None, str | None]:
    """A chapter's visible text (without its <title>), first heading and <title>."""
    soup = BeautifulSoup(_decode(_read(archive, path)), "html.parser")
    head_title = None
    if soup.title is not None:
        head_title = " ".join(soup.title.get_text().split()) or None
        soup.title.decompose()
    headings = (" ".join(node.get_text().split()) for node in soup.find_all(_HEADINGS))
    return visible_text(soup), next((heading for heading in headings if heading), None), head_title


def _read(archive: zipfile.ZipFile, path: str) -> bytes:
    """The bytes of member `path`; raises LoadError (naming it) if it is missing, too large or damaged."""
    try:
        info = archive.getinfo(path)
    except KeyError:
        raise LoadError(f"{path} is missing from the archive") from None
    if info.file_size > MAX_MEMBER:
        raise LoadError(f"{path} is {info.file_size >> 20} MiB (over the {MAX_MEMBER >> 20} MiB limit)")
    try:
        return archive.read(info)
    except _ZIP_ERRORS as err:
        raise LoadError(f"{path} is damaged: {reason(err)}") from err


def _decode(data: bytes) -> str:
    """XHTML bytes as text: BOM, else the declared encoding (XML declaration or meta charset), else UTF-8/GB18030."""
    declared = EncodingDetector.find_declared_encoding(data[:_PRESCAN], is_html=True)
    # UTF-16 needs a BOM (XML 1.0 §4.3.3); a UTF-16 label on BOM-less bytes is a mislabelled UTF-8 file.
    if declared and declared.lower().startswith("utf-16"):
        declared = None
    return decode_bytes(data, declared=declared)


def _xml(archive: zipfile.ZipFile, path: str) -> ET.Element:
    """Member `path` parsed as XML; raises ``LoadError("corrupt EPUB: ...")``.

    ElementTree never fetches external entities, and expat (>= 2.4) refuses entity-expansion bombs.
    """
    try:
        return ET.fromstring(_read(archive, path))
    except LoadError as err:
        raise LoadError(f"corrupt EPUB: {err.cause}") from err
    except ET.ParseError as err:
        raise LoadError(f"corrupt EPUB: {path} is not valid XML (line {err.position[0]})") from err


def _resolve(base: str, href: str) -> str:
    """The zip member name `href` (a URL-encoded relative reference, maybe with a #fragment) points at."""
    return posixpath.normpath(posixpath.join(base, unquote(href.partition("#")[0])))
