"""The SGLang stand-in serving Qwen3-Embedding-0.6B's name with the embedded model's vectors, so that server and
local vectors can be compared."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.embedders import embedded_default
from testbed.sglang import SGLangServer
from tests.pipelines.embeddings.support import QWEN


@pytest.fixture(scope="module")
def server() -> Iterator[SGLangServer]:
    with SGLangServer(embedder=embedded_default(), served_model_name=QWEN) as srv:
        yield srv
