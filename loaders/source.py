"""A file to read: where the user named it from, where it is, and its content hash.

A value type of its own module, so that both the walk that finds files and the registry that reads them can name
it without importing each other.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

#: What a loader takes as its file, as every LangChain document loader does.
AnyPath = str | os.PathLike[str]


@dataclass(frozen=True)
class SourceFile:
    """A file found under a root the user named.

    Usage::

        file = SourceFile(root=Path("/data/docs"), path=Path("/data/docs/guide/intro.md"))
        file.source  # "guide/intro.md"
        file.sha256()  # hex digest, read once, then cached
    """

    root: Path  # the root the user named (a directory, or the file itself)
    path: Path  # absolute path of the file
    _sha256: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def source(self) -> str:
        """The posix path relative to the root; for a root that is a file: its name."""
        if self.path == self.root:
            return self.path.name
        return self.path.relative_to(self.root).as_posix()

    def sha256(self) -> str:
        """Hex digest of the file's bytes, streamed in blocks and computed once; raises OSError."""
        if self._sha256 is None:
            with self.path.open("rb") as stream:
                digest = hashlib.file_digest(stream, "sha256").hexdigest()
            object.__setattr__(self, "_sha256", digest)  # frozen: the cache is the one field set later
            return digest
        return self._sha256
