"""The one cache-directory rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cache import cache_root
from tests.pipelines.embeddings.support import imported_by


def test_cache_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("QWEN_RAG_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "qwen-rag"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "qwen-rag"
    monkeypatch.setenv("QWEN_RAG_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache_root() == tmp_path / "explicit"


def test_finding_it_imports_nothing_heavy() -> None:
    assert imported_by("from pipelines.cache import cache_root; cache_root()", ("numpy", "tokenizers")) == set()
