"""Where the shared material is (eval sets, sample PDFs), for tests and benchmarks alike: ``QWEN_RAG_SHARED``, else
the ``shared/`` folder beside the checkout. It is read in place, never copied into the project."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The shared folder: ``QWEN_RAG_SHARED``, else ``shared/`` beside the checkout."""
    return Path(os.environ.get("QWEN_RAG_SHARED", REPO.parent / "shared"))


def sample_pdfs() -> Path:
    """The folder of real sample PDFs (papers, scans, an encrypted one)."""
    return shared_dir() / "samples" / "pdfs"
