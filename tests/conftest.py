"""Fixtures shared by the whole suite: where ../shared is, a fresh store directory per test, and the embedded model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.embeddings.local import LocalEmbeddings
from testbed.shared import REPO, sample_pdfs, shared_dir

SAMPLES = REPO / "data" / "samples"


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    assert path.is_dir(), f"the shared material is missing at {path}; set QWEN_RAG_SHARED"
    return path


@pytest.fixture(scope="session")
def pdfs(shared: Path) -> Path:
    return sample_pdfs()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(scope="session")
def local() -> LocalEmbeddings:
    """The embedded default model (it loads on its first embedding, once per process)."""
    return LocalEmbeddings()
