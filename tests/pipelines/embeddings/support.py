"""Helpers of the provider tests: what a server received, and what a fresh process imported."""

from __future__ import annotations

import json
import subprocess
import sys

from testbed.sglang import SGLangServer

QWEN = "Qwen/Qwen3-Embedding-0.6B"
#: The libraries each path must not load: the OpenAI client (server only) and the embedded model's runtime.
SERVER_ONLY = ("openai", "langchain_openai")
LOCAL_ONLY = ("onnxruntime",)


def embedding_inputs(srv: SGLangServer, since: int) -> list[list[str]]:
    """The ``input`` of every embedding request the server received since request number ``since``."""
    return [r.json["input"] for r in srv.requests[since:] if r.path == "/v1/embeddings"]


def imported_by(code: str, watched: tuple[str, ...] = SERVER_ONLY + LOCAL_ONLY) -> set[str]:
    """Which of the ``watched`` top-level packages a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(watched)!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))
