"""Files' content hashes, computed again only for files whose stat changed since this machine last hashed them.

Why: an ingest decides what changed from each file's sha256 (:mod:`pipelines.ingestion.plan`), and hashing every
file of a large folder to find the one that changed reads all of it (113 MB, 1.6 s for 4,000 files on the dev box,
more on a cold disk). As git's index and rsync do, a file whose stat is what it was when it was hashed keeps that
hash; any other is hashed.

What "the same stat" means, and why it is enough: size, mtime, ctime and inode, all in nanoseconds. A tool that
writes new content with the old size and puts the old mtime back (``cp -p``, ``rsync -t``, ``touch -d``) still moves
the ctime, which no user call can set, and a file replaced by a rename has a new inode. Git's "racy" case is covered
the same way git covers it: a file whose mtime or ctime is within :data:`RACY_NS` of the moment it was hashed may
change again within the same clock tick, so its hash is not kept and it is hashed next time. What is left is a file
system that does not keep ctime (some network mounts), where an edit that also restores size and mtime would go
unseen until the file changes again; ``qwen-rag ingest --full`` re-reads everything.

The hashes live beside the store's other derived data (:meth:`pipelines.store.chroma.Store.derived_dir`), written
atomically after each run; a missing or damaged file means hashing everything once. Entries of files under other
roots are kept; those of this run's roots are replaced by what this run saw, so a deleted file's entry goes. A run
restricted to some files (``only``: a watch's sync) replaces the entries of those files alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Collection
from pathlib import Path

from loaders import SourceFile
from pipelines.cache import write_json

_FORMAT = 1
#: A stat this close to the moment of hashing may hide a change made within the same tick: hash again next time.
RACY_NS = 2_000_000_000

_Entry = tuple[int, int, int, int, str]  # size, mtime_ns, ctime_ns, inode, sha256


class Digests:
    """The hashes of one collection's files as last computed on this machine; :meth:`digest` is the plan's hasher."""

    def __init__(self, path: Path, roots: list[Path], only: Collection[tuple[str, str]] | None = None) -> None:
        self.path = path
        self.roots = {str(root) for root in roots}
        self.only = None if only is None else {_key(root, source) for root, source in only}
        self._known = self._load()
        self._seen: dict[str, _Entry] = {}
        self.hashed = 0  # files read and hashed this run (the others kept their hash)

    def digest(self, item: SourceFile) -> str:
        """``item``'s sha256: the kept one if its stat is unchanged, else computed now (raises OSError)."""
        key = _key(str(item.root), item.source)
        info = os.stat(item.path)  # before reading: a change during the read shows as a new stat next time
        stat = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        known = self._known.get(key)
        if known is not None and known[:4] == stat:
            self._seen[key] = known
            return known[4]
        digest = item.sha256()
        self.hashed += 1
        if max(info.st_mtime_ns, info.st_ctime_ns) < time.time_ns() - RACY_NS:
            self._seen[key] = (*stat, digest)
        return digest

    def save(self) -> None:
        """Keep this run's hashes (and other roots' entries) for the next run."""
        kept = {key: entry for key, entry in self._known.items() if not self._covers(key)}
        kept.update(self._seen)
        with contextlib.suppress(OSError):  # a cache that cannot be written costs the next run its hashing
            write_json(self.path, {"format": _FORMAT, "files": kept})

    def _covers(self, key: str) -> bool:
        """Whether this run saw all there is of ``key``'s file (its entry is then replaced or dropped)."""
        return key in self.only if self.only is not None else key.split("\x1f", 1)[0] in self.roots

    def _load(self) -> dict[str, _Entry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("format") != _FORMAT:
                return {}
            return {
                str(key): (int(size), int(mtime), int(ctime), int(inode), str(digest))
                for key, (size, mtime, ctime, inode, digest) in raw["files"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}


def _key(root: str, source: str) -> str:
    return f"{root}\x1f{source}"
