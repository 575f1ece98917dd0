"""What one ingest has to do: the files found under the roots, weighed against what the store holds of them.

Pure but for hashing the files (or reading their kept hashes): from the walk's output and the store's records
(:mod:`pipelines.store.records`), a `Plan` lists the files to (re)index, the files whose content is indexed but
whose own fields (``--meta``, sidecars) changed, whose chunks the writer re-tags in place without reading or
embedding them, counts the unchanged ones, and names the records of files gone from the roots, whose chunks the
writer deletes. A file that merely cannot be read this time (the walk reports it, it cannot be hashed, or its
sidecar is broken) is not gone: it keeps its chunks, so a passing permission problem never empties an index.

>>> from pathlib import Path
>>> from loaders import walk
>>> roots = [Path("data/samples").resolve()]
>>> todo = plan(walk(roots), roots, records={}, chunker_id="e5:512:64")
>>> len(todo.jobs), len(todo.retag), todo.unchanged, todo.gone, todo.problems
(9, 0, 0, {}, [])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loaders import Problem, SourceFile
from loaders.errors import os_cause
from pipelines.errors import ConfigError
from pipelines.fields import DOCUMENT_PROPERTIES, Fields
from pipelines.ingestion.events import FileKey
from pipelines.store.records import FileRecord


@dataclass(frozen=True)
class Job:
    """One file to index (new, changed, cut by another chunker, or left unfinished by an earlier run) or to re-tag."""

    file: SourceFile
    digest: str  # sha256 of the file, as planned
    record: FileRecord | None  # what the store holds of it, if anything
    fields: Fields = field(default_factory=dict)  # the user's own fields for it

    @property
    def dropped(self) -> set[str]:
        """Names of user fields its chunks carry that it no longer has."""
        return (self.record.meta_keys if self.record else set()) - set(self.fields)

    @property
    def key(self) -> FileKey:
        return (str(self.file.root), self.file.source)

    def stored(self) -> dict[str, str]:
        """Chunk text hash -> id of a stored chunk with that text, whose vector an edited file can reuse."""
        return {text_hash: cid for cid, text_hash in (self.record.ids if self.record else {}).items()}


@dataclass
class Plan:
    """The work of one ingest; see the module docstring."""

    jobs: list[Job] = field(default_factory=list)
    retag: list[Job] = field(default_factory=list)  # content indexed, own fields changed: metadata only
    files: int = 0  # files found under the roots
    unchanged: int = 0
    unreadable: int = 0  # files found that could not be hashed, or whose sidecar is broken: they count as failed
    gone: dict[FileKey, FileRecord] = field(default_factory=dict)  # files no longer under the roots
    problems: list[Problem] = field(default_factory=list)  # the walk's, and the files that could not be hashed
    restricted: bool = False  # made for some files of the roots only (a watch's sync): the counts are theirs


def plan(
    found: Iterable[SourceFile | Problem],
    roots: Sequence[Path],
    records: dict[FileKey, FileRecord],
    chunker_id: str,
    fields: Callable[[SourceFile], Fields] = lambda _: {},
    digest: Callable[[SourceFile], str] = SourceFile.sha256,
) -> Plan:
    """The plan for the walk's output ``found`` under ``roots``, given the store's ``records`` of those roots,
    each file's ``fields`` (which raises ``ConfigError`` for a broken sidecar) and its ``digest`` (its sha256, or
    the one kept for its unchanged stat: :mod:`pipelines.ingestion.digests`)."""
    result = Plan()
    seen: set[FileKey] = set()
    for item in found:
        if isinstance(item, Problem):
            result.problems.append(item)
            continue
        key = (str(item.root), item.source)
        seen.add(key)
        result.files += 1
        try:
            own = fields(item)
            hashed = digest(item)
        except ConfigError as error:
            result.problems.append(Problem(item.source, str(error)))
            result.unreadable += 1
            continue
        except OSError as error:
            result.problems.append(Problem(item.source, f"cannot read: {os_cause(error)}"))
            result.unreadable += 1
            continue
        record = records.get(key)
        job = Job(item, hashed, record, own)
        if record is None or not record.is_current(hashed, chunker_id):
            result.jobs.append(job)
        elif record.has_fields(own):
            result.unchanged += 1
        elif job.dropped & DOCUMENT_PROPERTIES:
            # The user's value for a document property is gone: the file's own comes back only from reading it
            # (its vectors are reused, so nothing is embedded).
            result.jobs.append(job)
        else:
            result.retag.append(job)
    # A walk problem names its source but not its root: it protects that source under every root.
    unreadable = {(str(root), problem.source) for problem in result.problems for root in roots}
    result.gone = {key: record for key, record in records.items() if key not in seen and key not in unreadable}
    return result
