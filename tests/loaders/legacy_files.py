"""Legacy binary Office files built by the tests: an OLE compound file (CFB) writer, and the PowerPoint 97 records
``catppt`` reads (no library writes .ppt). The Word 97 format is far larger: the .doc tests use a public file
(tests/loaders/data/README.md).

The CFB is the smallest valid one (MS-CFB, version 3): 512-byte sectors, one FAT sector, one directory sector,
and every stream padded to at least 4096 bytes, so that none goes to the mini stream, which this writer omits.
"""

from __future__ import annotations

import struct

_SECTOR = 512
_FREE, _END, _FAT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
_MINI_CUTOFF = 4096


def cfb(streams: dict[str, bytes]) -> bytes:
    """An OLE compound file holding `streams` (at most three, names under 32 characters) in its root storage."""
    assert 1 <= len(streams) <= 3
    datas = [data.ljust(_MINI_CUTOFF, b"\0") for data in streams.values()]
    fat: list[int] = [_FAT, _END]  # sector 0: the FAT itself; sector 1: the directory
    starts = []
    for data in datas:
        count = -(-len(data) // _SECTOR)
        first = len(fat)
        starts.append(first)
        fat += [*range(first + 1, first + count), _END]
    assert len(fat) <= _SECTOR // 4, "one FAT sector only"
    fat += [_FREE] * (_SECTOR // 4 - len(fat))
    # Root, then the streams; in the red-black tree (all black) the root's child is the first, the others are
    # its right siblings in order: names must be sorted by length, then upper case, as the format compares them.
    names = list(streams)
    assert names == sorted(names, key=lambda n: (len(n), n.upper()))
    entries = [_entry("Root Entry", 5, child=1 if names else _FREE, start=_END, size=0)]
    for i, (name, data) in enumerate(zip(names, datas, strict=True)):
        sibling = i + 2 if i + 1 < len(names) else _FREE
        entries.append(_entry(name, 2, right=sibling, start=starts[i], size=len(data)))
    directory = b"".join(entries).ljust(_SECTOR, b"\0")
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\0" * 16,
        0x3E,  # minor version
        3,  # major version: 512-byte sectors
        0xFFFE,  # byte order
        9,  # sector shift
        6,  # mini sector shift
        b"\0" * 6,
        0,  # directory sectors (0 in version 3)
        1,  # FAT sectors
        1,  # first directory sector
        0,  # transaction signature
        _MINI_CUTOFF,
        _END,  # first mini FAT sector
        0,
        _END,  # first DIFAT sector
        0,
    )
    difat = struct.pack("<I", 0) + struct.pack("<I", _FREE) * 108
    body = b"".join(data.ljust(-(-len(data) // _SECTOR) * _SECTOR, b"\0") for data in datas)
    return header + difat + struct.pack(f"<{_SECTOR // 4}I", *fat) + directory + body


def _entry(name: str, kind: int, *, child: int = _FREE, right: int = _FREE, start: int, size: int) -> bytes:
    encoded = (name + "\0").encode("utf-16-le")
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        encoded,
        len(encoded),
        kind,
        1,  # black
        _FREE,  # left sibling
        right,
        child,
        b"\0" * 16,  # CLSID
        0,  # state bits
        0,  # created
        0,  # modified
        start,
        size,
    )


# -- PowerPoint 97 -------------------------------------------------------------------------------------------

_DOCUMENT, _DOCUMENT_ATOM, _END_DOCUMENT = 1000, 1001, 1002
_SLIDE_LIST_WITH_TEXT, _SLIDE_PERSIST_ATOM = 4080, 1011
_TEXT_HEADER_ATOM, _TEXT_CHARS_ATOM = 3999, 4000
_TITLE, _BODY = 0, 1


def _record(kind: int, payload: bytes, *, container: bool = False) -> bytes:
    return struct.pack("<HHI", 0xF if container else 0, kind, len(payload)) + payload


def ppt(slides: list[tuple[str, list[str]]], *, encrypted: bool = False) -> bytes:
    """A .ppt of `slides` (title, body paragraphs) as PowerPoint keeps their text: in the document's slide list,
    one text header and UTF-16 text atom per placeholder. `encrypted` adds the stream that marks a file saved
    with a password (the slide text is then still readable here, as it is not really encrypted)."""
    texts = b""
    for number, (title, body) in enumerate(slides, 1):
        texts += _record(_SLIDE_PERSIST_ATOM, struct.pack("<IIiII", 0, 0, 0, 256 + number, 0))
        for kind, text in ((_TITLE, title), (_BODY, "\r".join(body))):
            texts += _record(_TEXT_HEADER_ATOM, struct.pack("<I", kind))
            texts += _record(_TEXT_CHARS_ATOM, text.encode("utf-16-le"))
    document = _record(
        _DOCUMENT,
        _record(_DOCUMENT_ATOM, b"\0" * 40)
        + _record(_SLIDE_LIST_WITH_TEXT, texts, container=True)
        + _record(_END_DOCUMENT, b""),
        container=True,
    )
    streams = {"PowerPoint Document": document}
    if encrypted:
        streams["EncryptedSummary"] = b"\0" * 16
    return cfb(dict(sorted(streams.items(), key=lambda item: (len(item[0]), item[0].upper()))))
