"""Fixtures shared by the whole suite: where ../shared is, and a fresh store directory per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"


def shared_dir() -> Path:
    """The shared material (eval sets, PDFs) beside the checkout; QWEN_RAG_SHARED overrides."""
    return Path(os.environ.get("QWEN_RAG_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    assert path.is_dir(), f"the shared material is missing at {path}; set QWEN_RAG_SHARED"
    return path


@pytest.fixture(scope="session")
def pdfs(shared: Path) -> Path:
    return shared / "samples" / "pdfs"


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"
