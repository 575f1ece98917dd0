"""What an ingest reports: `IngestReport` (``qwen-rag ingest --json`` prints it) and `IngestAborted`, which carries
the report of a run the embedding server cut short.

>>> report = IngestReport(collection="docs", files=2, added=1, failed=1)
>>> report.problems.append(Problem("scan.pdf", "no extractable text", 1))
>>> report.to_json()["problems"]
[{'source': 'scan.pdf', 'cause': 'no extractable text', 'page': 1}]
>>> IngestAborted("the embedding server gave up", report).http_status
503
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from loaders import Problem
from pipelines.errors import QwenRagError


@dataclass
class IngestReport:
    """What one ingest did; ``to_json()`` is what ``qwen-rag ingest --json`` prints."""

    collection: str
    files: int = 0  # files found under the roots
    added: int = 0  # new files indexed
    updated: int = 0  # changed (or unfinished) files re-indexed
    unchanged: int = 0
    retagged: int = 0  # files whose own fields alone changed: their chunks' metadata re-written, nothing embedded
    deleted: int = 0  # files gone from the roots whose chunks were removed
    failed: int = 0  # files that could not be (fully) indexed: see problems
    chunks_written: int = 0
    chunks_deleted: int = 0
    chunks_reused: int = 0  # vectors taken from the store instead of re-embedded
    embedding_requests: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [asdict(p) for p in self.problems]
        return data


class IngestAborted(QwenRagError):
    """The run stopped early (the embedding server gave up); what was written stays, the next run resumes."""

    http_status: ClassVar[int] = 503

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report
