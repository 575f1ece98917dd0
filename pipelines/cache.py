"""Where qwen-rag keeps what it derives and can rebuild: the converted embedded model, BM25 indexes of a Chroma
server's collections, benchmark caches.

One rule for every user of the cache, in one module that imports nothing heavy, so that finding the directory never
loads a model library: ``$QWEN_RAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/qwen-rag``, else ``~/.cache/qwen-rag``.

>>> from unittest import mock
>>> with mock.patch.dict(os.environ, {"QWEN_RAG_CACHE_DIR": "/srv/qwen-rag-cache"}):
...     cache_root()
PosixPath('/srv/qwen-rag-cache')
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$QWEN_RAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/qwen-rag``, else ``~/.cache/qwen-rag`` (not created here)."""
    if explicit := os.environ.get("QWEN_RAG_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qwen-rag"
