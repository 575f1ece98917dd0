"""Finding the files to ingest: roots, glob filters, hidden files and a safe symlink policy.

Why not langchain-community's ``DirectoryLoader``: it lists files with ``Path.rglob``, which never descends
through a symlinked folder and silently skips unreadable ones, and it reads each file as it lists it (an error
raises, or with ``silent_errors`` is only logged). Here walking only finds files, and every skipped entry a user
may care about becomes a `Problem`.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from loaders.errors import Problem, os_cause
from loaders.registry import SUPPORTED_EXTENSIONS
from loaders.source import SourceFile

#: The user's fields for one file (``report.pdf.meta.json`` beside ``report.pdf``) and for a folder's files: read
#: by the ingest (:mod:`pipelines.ingestion.sidecars`), never indexed as documents themselves.
SIDECAR_SUFFIX = ".meta.json"
FOLDER_SIDECAR = "qwen-rag.meta.yaml"


def is_sidecar(name: str) -> bool:
    return name.endswith(SIDECAR_SUFFIX) or name == FOLDER_SIDECAR


def walk(
    roots: Sequence[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Iterator[SourceFile | Problem]:
    """The files under `roots` that a loader supports, and the problems met on the way; never raises.

    Order is deterministic: per folder, its files by name, then its subfolders by name; files reached through
    symlinks come after the rest of their root. Hidden entries (name starting with ".") and Office's lock files
    ("~$report.docx") are skipped.

    `include` / `exclude` are globs matched against each file's ``source`` (posix, relative to the root):
    ``*`` and ``?`` stay within one folder, ``**`` spans folders ("docs/**", "**/*.md"), a pattern without "/"
    matches at any depth ("*.md", "node_modules"), and a pattern that matches a folder matches all files under
    it. With no `include`, every file with a supported extension is taken; files with other extensions are
    ignored silently, unless named as a root.

    Symlinks are followed when their target lies inside the root, each real folder and file once: a link back
    to an ancestor, or to a folder already walked, is reported as "symlink loop", a link to a file already taken
    as "symlink to a file already taken as <source>"; a link leading out of the root is never followed
    ("symlink outside the root"); a dangling link is a "broken symlink". Unreadable folders and files are
    reported ("permission denied"), as is a root that does not exist. Roots are walked independently, in order.

    Usage::

        for item in walk([Path("docs")], exclude=["drafts/**"]):
            print(item.source if isinstance(item, SourceFile) else f"skipped {item.source}: {item.cause}")
    """
    filters = _Filters(tuple(map(glob_regex, include)), tuple(map(glob_regex, exclude)))
    for root in roots:
        yield from _RootWalk(Path(root), filters).run()


def walk_sources(
    root: Path, sources: Iterable[str], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[SourceFile | Problem] | None:
    """What :func:`walk` of the folder ``root`` (an absolute, resolved path) yields for the files ``sources``
    (posix, relative to it) alone, without listing anything else: a source that is hidden (a part starting with
    "." or "~$"), excluded, of another type, missing or not a regular file gives nothing; one that cannot be read,
    its problem. Sources are taken by name, in sorted order.

    None when a source is reached through a symlink: which name such a file is taken under (or whether it is a
    loop, or leads out of the root) only the walk of the whole root tells.

    Usage (a watch that saw two files change)::

        found = walk_sources(Path("/data/docs"), ["a.md", "guide/b.md"]) or list(walk([Path("/data/docs")]))
    """
    filters = _Filters(tuple(map(glob_regex, include)), tuple(map(glob_regex, exclude)))
    taker = _RootWalk(root, filters)
    found: list[SourceFile | Problem] = []
    for source in sorted(set(sources)):
        parts = source.split("/")
        if any(part.startswith((".", "~$")) for part in parts):
            continue
        path = root.joinpath(*parts)
        try:
            folders = [root.joinpath(*parts[:end]) for end in range(1, len(parts))]
            if any(folder.is_symlink() for folder in folders) or path.is_symlink():
                return None
            # A folder the walk would not enter, or could not list: nothing under it is taken.
            if any(filters.prunes(_relative(root, folder)) for folder in folders) or not filters.accepts(source):
                continue
            unlisted = next((f for f in [root, *folders] if not os.access(f, os.R_OK | os.X_OK)), None)
            if unlisted is not None:
                problem = Problem(_relative(root, unlisted), "permission denied")
                if unlisted.is_dir() and problem not in found:  # said once, as the walk says it
                    found.append(problem)
                continue
            if not path.is_file():
                continue
        except OSError as err:
            found.append(Problem(source, os_cause(err)))
            continue
        found.extend(taker._file(path, path))
    return found


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."


@dataclass(frozen=True)
class _Filters:
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]

    def prunes(self, folder: str) -> bool:
        """Whether nothing under `folder` can be taken, so the walk need not enter it."""
        return _matches(self.exclude, folder)

    def accepts(self, source: str) -> bool:
        if posixpath.splitext(source)[1].lower() not in SUPPORTED_EXTENSIONS or is_sidecar(posixpath.basename(source)):
            return False
        if self.include and not _matches(self.include, source):
            return False
        return not _matches(self.exclude, source)


def _matches(patterns: tuple[re.Pattern[str], ...], source: str) -> bool:
    """Whether a pattern matches `source` or one of its folders ("docs" and "docs/a" for "docs/a/b.md")."""
    if not patterns:
        return False
    parts = source.split("/")
    prefixes = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return any(pattern.fullmatch(prefix) for pattern in patterns for prefix in prefixes)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob into a regex over posix paths (see `walk` for the rules; the folder sidecars use the same)."""
    pattern = pattern.strip().rstrip("/").removeprefix("./")
    anchored = "/" in pattern  # a leading "/" anchors at the root too
    pattern = pattern.lstrip("/")
    out = [] if anchored else ["(?:.*/)?"]
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("(?!/)[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


class _RootWalk:
    """The walk of one root, and what keeps its symlinks safe: the real folders entered, the real files taken.

    Real (non-link) entries are walked first; links found on the way wait in a queue and are followed after,
    so a file is taken under its own name rather than under a link's when both exist.
    """

    def __init__(self, given: Path, filters: _Filters) -> None:
        self.given = given
        self.root = Path(os.path.abspath(given))
        self.real_root = Path(os.path.realpath(self.root))
        self.filters = filters
        self.entered: set[Path] = set()
        self.taken: dict[Path, str] = {}  # real path -> source
        self.links: deque[Path] = deque()

    def run(self) -> Iterator[SourceFile | Problem]:
        try:
            is_folder = self.root.is_dir()
            is_file = not is_folder and self.root.is_file()
            exists = is_folder or is_file or self.root.exists()
        except OSError as err:
            yield Problem(self.given.as_posix(), os_cause(err))
            return
        if is_folder:
            yield from self._walk_folder(self.root, self.real_root)
            yield from self._follow_links()
        elif is_file:
            suffix = self.root.suffix.lower()
            if suffix not in SUPPORTED_EXTENSIONS:  # named explicitly, so say why nothing comes of it
                yield Problem(self.root.name, f"unsupported file type {suffix or '(no extension)'}")
            else:
                yield from self._file(self.root, self.real_root)
        elif exists:
            yield Problem(self.given.as_posix(), "not a regular file or folder")
        else:
            yield Problem(self.given.as_posix(), "no such file or folder")

    def _source(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()  # "." for the root folder itself

    def _walk_folder(self, folder: Path, real: Path) -> Iterator[SourceFile | Problem]:
        """Walk `folder` (real path `real`) without following symlinks; queue the links met."""
        self.entered.add(real)
        stack = [(folder, real)]
        while stack:
            here, here_real = stack.pop()
            try:
                with os.scandir(here) as scan:
                    entries = sorted(scan, key=lambda entry: entry.name)
            except OSError as err:
                yield Problem(self._source(here), os_cause(err))
                continue
            subfolders: list[tuple[Path, Path]] = []
            for entry in entries:
                # Hidden entries, and the "~$name.docx" lock files Office keeps beside an open document.
                if entry.name.startswith((".", "~$")):
                    continue
                path, path_real = here / entry.name, here_real / entry.name
                try:
                    if entry.is_symlink():
                        self.links.append(path)
                    elif entry.is_dir(follow_symlinks=False):
                        if path_real not in self.entered and not self.filters.prunes(self._source(path)):
                            self.entered.add(path_real)
                            subfolders.append((path, path_real))
                    elif entry.is_file(follow_symlinks=False):
                        yield from self._file(path, path_real)
                    # anything else (fifo, socket, device) is not a document; opening a fifo would block
                except OSError as err:
                    yield Problem(self._source(path), os_cause(err))
            stack.extend(reversed(subfolders))

    def _follow_links(self) -> Iterator[SourceFile | Problem]:
        while self.links:
            link = self.links.popleft()
            source = self._source(link)
            try:
                target = Path(os.path.realpath(link, strict=True))
                is_folder = target.is_dir()
                is_file = not is_folder and target.is_file()
            except FileNotFoundError:
                if self.filters.accepts(source):
                    yield Problem(source, "broken symlink")
                continue
            except OSError as err:  # ELOOP: links that point at each other
                yield Problem(source, os_cause(err))
                continue
            if (is_folder and self.filters.prunes(source)) or (is_file and not self.filters.accepts(source)):
                continue
            if not target.is_relative_to(self.real_root):
                yield Problem(source, "symlink outside the root")
            elif is_folder:
                if target in self.entered:
                    yield Problem(source, "symlink loop")
                else:
                    yield from self._walk_folder(link, target)
            elif is_file:
                yield from self._file(link, target)

    def _file(self, path: Path, real: Path) -> Iterator[SourceFile | Problem]:
        file = SourceFile(self.root, path)
        source = file.source
        if not self.filters.accepts(source):
            return
        if (first := self.taken.get(real)) is not None:
            yield Problem(source, f"symlink to a file already taken as {first}")
            return
        try:
            # Readable now? Reading comes later, but an unreadable file is reported here, in walk order.
            with path.open("rb"):
                pass
        except OSError as err:
            yield Problem(source, os_cause(err))
            return
        self.taken[real] = source
        yield file
