"""The notebooks in notebooks/: stored clean, and run top to bottom in a kernel of this interpreter.

Each notebook checks its own claims with ``assert`` cells, so a run that completes is a pass; the tests add what
only the outside can see (which embedding or chat server was used, what the page displays). Notebooks run with
cwd = notebooks/, as in Jupyter, and never write into the checkout (their stores are temporary directories).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbformat import NotebookNode

from pipelines.embeddings.profiles import DEFAULT_TASK
from testbed.embedders import embedded_default
from testbed.sglang import SGLangServer
from tests.conftest import REPO
from tests.scenarios.test_chatbot import ChatServer

pytestmark = pytest.mark.slow  # each test runs a notebook in a Jupyter kernel: tens of seconds

NOTEBOOKS = REPO / "notebooks"
NAMES = ["quickstart.ipynb", "evaluate.ipynb", "chatbot.ipynb"]
CELL_TIMEOUT = 300  # seconds; the slowest cell (the evaluation's ingest) takes well under a minute here
QWEN = "Qwen/Qwen3-Embedding-0.6B"
#: Variables the notebooks read; a developer's shell must not change what the tests run.
NOTEBOOK_ENV = (
    "QWEN_RAG_EMBEDDINGS_URL",
    "QWEN_RAG_STORE",
    "QWEN_RAG_EVAL_LIMIT",
    "QWEN_RAG_CHAT_URL",
    "QWEN_RAG_CHAT_MODEL",
    "QWEN_RAG_CHAT_API_KEY",
)


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """Only a ``python3`` kernel that is this interpreter, whatever kernels the machine has installed."""
    spec = tmp_path_factory.mktemp("kernels") / "python3"
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "qwen-rag", "language": "python"}))
    return KernelSpecManager(kernel_dirs=[str(spec.parent)], ensure_native_kernel=False)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in NOTEBOOK_ENV:
        monkeypatch.delenv(name, raising=False)
    # The notebooks' temporary stores land in this test's directory, which pytest cleans up.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return monkeypatch


def run(name: str, kernels: KernelSpecManager) -> NotebookNode:
    """Execute a copy of the notebook (the kernel inherits os.environ); raises on the first failing cell."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # First, prove the kernel is the interpreter running the tests (the project's venv).
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"import sys\nassert sys.executable == {sys.executable!r}"))
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=kernels)
    NotebookClient(nb, km=manager, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def text_of(nb: NotebookNode) -> str:
    """Everything the notebook printed or displayed as text."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(output.get("data", {}).get(kind, "") for kind in ("text/markdown", "text/plain"))
    return "\n".join(parts)


def displayed(nb: NotebookNode, mime: str) -> list[str]:
    return [o["data"][mime] for c in nb.cells for o in c.get("outputs", []) if mime in o.get("data", {})]


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebooks_are_clean(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_quickstart_runs_offline(kernels: KernelSpecManager, clean_env: pytest.MonkeyPatch) -> None:
    out = text_of(run("quickstart.ipynb", kernels))
    assert "no QWEN_RAG_EMBEDDINGS_URL: embedded intfloat/multilingual-e5-small" in out
    assert "Embedding dimension: 384" in out


@pytest.fixture
def sglang() -> Iterator[SGLangServer]:
    with SGLangServer(embedder=embedded_default(), served_model_name=QWEN) as srv:
        yield srv


def test_quickstart_runs_against_sglang(
    kernels: KernelSpecManager, clean_env: pytest.MonkeyPatch, sglang: SGLangServer
) -> None:
    clean_env.setenv("QWEN_RAG_EMBEDDINGS_URL", sglang.url + "/v1")
    out = text_of(run("quickstart.ipynb", kernels))
    assert f"embedding server: {sglang.url}/v1, model {QWEN}" in out
    sent = [text for r in sglang.requests if r.path == "/v1/embeddings" for text in r.json["input"]]
    assert "How are you today?" in sent  # documents as they are
    assert f"Instruct: {DEFAULT_TASK}\nQuery:什么是人工智能？" in sent  # queries with Qwen3's instruction


def test_evaluate_runs_on_a_limited_corpus(
    kernels: KernelSpecManager, clean_env: pytest.MonkeyPatch, shared: Path, tmp_path: Path
) -> None:
    clean_env.setenv("QWEN_RAG_SHARED", str(shared))
    clean_env.setenv("QWEN_RAG_EVAL_LIMIT", "40")
    clean_env.setenv("QWEN_RAG_STORE", str(tmp_path / "store"))
    nb = run("evaluate.ipynb", kernels)
    out = text_of(nb)
    assert "cmrc2018-limit40: 40 documents" in out
    [table] = [t for t in displayed(nb, "text/markdown") if t.startswith("# cmrc2018-limit40 (test)")]
    assert [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:] == [
        "dense",
        "bm25",
        "hybrid",
    ]
    [svg] = displayed(nb, "image/svg+xml")
    assert svg.startswith("<svg") and svg.count("<rect") >= 3 * 4  # a bar per mode and metric
    # The corpus went through the store the notebook was told to use.
    assert (tmp_path / "store" / "eval-corpus" / "cmrc2018-limit40").is_dir()


def test_chatbot_runs_offline_and_says_so(kernels: KernelSpecManager, clean_env: pytest.MonkeyPatch) -> None:
    out = text_of(run("chatbot.ipynb", kernels))
    assert "No QWEN_RAG_CHAT_URL: LangChain's fake ParrotFakeChatModel" in out
    assert "[ml.txt] 机器学习是一种让计算机自动学习的方法。" in out  # the echoed prompt holds the passages


def test_chatbot_uses_the_chat_server(kernels: KernelSpecManager, clean_env: pytest.MonkeyPatch) -> None:
    with ChatServer(answer="机器学习让计算机自动学习 [ml.txt]") as chat:
        clean_env.setenv("QWEN_RAG_CHAT_URL", chat.url)  # without /v1: the notebook adds it
        out = text_of(run("chatbot.ipynb", kernels))
        sent = chat.chat_messages()
        assert f"chat model: {chat.model} at {chat.url}/v1" in out
    assert "--- answer ---\n机器学习让计算机自动学习 [ml.txt]" in out
    [[message]] = sent
    assert "[dl.txt] 深度学习是机器学习的一个分支，使用神经网络。" in message["content"]
