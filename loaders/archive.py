"""Opening the zip inside Office files and EPUBs safely: what is not a zip says what it is, and a decompression
bomb is refused from the sizes the archive declares, before anything is inflated.

Python's ``zipfile`` stops reading a member at its declared size, so checking the declared sizes bounds what can
ever be inflated. An Office file saved with a password is not a zip at all but an OLE compound file (CFB) holding
the encrypted package; a legacy .doc/.xls/.ppt is a CFB too.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from loaders.errors import LoadError, one_line

#: The most a document may inflate to, all members together.
MAX_INFLATED = 1 << 30
#: The highest compression ratio tolerated for a member larger than ``_RATIO_FLOOR`` once inflated. Real Office
#: XML compresses 10-30x; a sheet of one repeated value can reach a few hundred; bombs reach thousands.
MAX_RATIO = 1000
_RATIO_FLOOR = 1 << 20
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")


def open_zip(path: Path, kind: str) -> zipfile.ZipFile:
    """The zip archive at ``path`` (a ``kind`` file: "Word", "PowerPoint", "Excel", "EPUB"), checked; raises
    ``LoadError`` for an encrypted Office file, a legacy binary file, a corrupt zip or a decompression bomb.

    >>> open_zip(Path("README.md"), "Word")
    Traceback (most recent call last):
    loaders.errors.LoadError: corrupt Word file: not a zip archive
    """
    with path.open("rb") as stream:
        head = stream.read(len(_CFB_MAGIC))
        if head == _CFB_MAGIC:
            stream.seek(0)
            if _ENCRYPTION_INFO in stream.read(1 << 20):
                raise LoadError(f"encrypted {kind} file: remove the password (save a copy without one)")
            raise LoadError(f"legacy binary {kind} format inside a new-format name: save it again in the new format")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise LoadError(f"corrupt {kind} file: {_zip_reason(err)}") from err
    try:
        check_bomb(archive)
    except LoadError:
        archive.close()
        raise
    return archive


def check_bomb(archive: zipfile.ZipFile) -> None:
    """Refuse an archive whose members declare more than ``MAX_INFLATED`` bytes in all, or a large member
    compressed more than ``MAX_RATIO`` times."""
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if total > MAX_INFLATED:
            raise LoadError(f"refused: would inflate to over {MAX_INFLATED >> 20} MiB (a decompression bomb?)")
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise LoadError(f"refused: {info.filename} is compressed {ratio}:1 (a decompression bomb?)")


def _zip_reason(err: zipfile.BadZipFile) -> str:
    text = str(err)
    return "not a zip archive" if "not a zip file" in text.lower() else one_line(text) or "bad zip archive"
