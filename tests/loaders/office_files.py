"""Office files the Word and PowerPoint tests refuse: in-memory builders, and a decompression bomb on disk."""

from __future__ import annotations

import io
import resource
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from pptx import Presentation

from loaders.errors import LoadError

#: The magic of an OLE compound file: a legacy .doc/.ppt, or an Office file saved with a password.
CFB = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: A compound file holding an encrypted package, as Office writes one for a password.
ENCRYPTED = CFB + bytes(504) + "EncryptionInfo".encode("utf-16-le") + bytes(64)


def docx_bytes(text: str = "x") -> bytes:
    stream = io.BytesIO()
    document = docx.Document()
    document.add_paragraph(text)
    document.save(stream)
    return stream.getvalue()


def pptx_bytes() -> bytes:
    stream = io.BytesIO()
    Presentation().save(stream)
    return stream.getvalue()


def replace_member(data: bytes, name: str, content: bytes) -> bytes:
    """The zip ``data`` with member ``name`` replaced by ``content``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, content if info.filename == name else source.read(info))
    return out.getvalue()


def zip_of(name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, content)
    return out.getvalue()


def assert_bomb_refused(path: Path, member: str, load: Callable[[Path], object]) -> None:
    """Write a zip whose ``member`` inflates to 300 MiB of zeros (about 300 KB on disk, never in memory at once),
    and check that ``load`` refuses it in under 2 s without inflating it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(member, "w", force_zip64=True) as stream:
            zeros = bytes(1 << 20)
            for _ in range(300):
                stream.write(zeros)
    assert path.stat().st_size < 1 << 20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.monotonic()
    with pytest.raises(LoadError) as info:
        load(path)
    assert str(info.value).startswith(f"refused: {member} is compressed ")
    assert str(info.value).endswith(":1 (a decompression bomb?)")
    assert time.monotonic() - started < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100 * 1024
