"""The qwen-rag command, run as a user runs it (click's runner in-process, and one real subprocess)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.retrieve import segment
from testbed.embedders import HashEmbedder, embedded_default
from testbed.sglang import SGLangServer
from tests.conftest import SAMPLES
from tests.pipelines.ingestion.test_known_state import pending


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_ingest_and_query_json(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    code, out, _ = invoke("ingest", str(SAMPLES), "--store", store, "--json")
    assert code == 0
    summary = json.loads(out)
    assert {"files", "added", "updated", "unchanged", "deleted", "chunks_written", "embedding_requests"} <= set(summary)
    assert summary["added"] == 9 and summary["problems"] == []
    code, out, _ = invoke("query", "什么是人工智能？", "-k", "2", "--mode", "dense", "--store", store, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [set(r) >= {"text", "source", "page", "score"} for r in rows] == [True, True]
    assert {r["source"] for r in rows} == {"ml.txt", "dl.txt"}
    assert all(r["page"] is None for r in rows)
    code, out, _ = invoke("ingest", str(SAMPLES), "--store", store, "--json")
    assert json.loads(out)["chunks_written"] == 0


def test_flags_come_from_the_environment(tmp_path: Path) -> None:
    store = str(tmp_path / "env-store")
    code, _, _ = invoke(
        "ingest", str(SAMPLES / "ml.txt"), env={"QWEN_RAG_STORE": store, "QWEN_RAG_COLLECTION": "fromenv"}
    )
    assert code == 0
    code, out, _ = invoke("stats", "--json", env={"QWEN_RAG_STORE": store})
    stats = json.loads(out)
    assert stats["collections"] == [
        {
            "collection": "fromenv",
            "chunks": 1,
            "model": "intfloat/multilingual-e5-small",
            "dimension": 384,
            "task": None,
        }
    ]


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    code, out, err = invoke("query", "anything", "--store", str(tmp_path / "nothing"))
    assert code == 1
    assert err.startswith("error: no collection 'default'") and err.count("\n") == 1
    assert "Traceback" not in err + out


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])  # no folder; a folder with no dataset
def test_eval_of_a_missing_dataset_is_one_line(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    code, out, err = invoke("eval", str(make(tmp_path)), "--store", str(tmp_path / "store"))
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err + out
    assert str(make(tmp_path)) in err


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("something inside broke")

    monkeypatch.setattr("pipelines.retrieve.search.open_search", broken)
    result = CliRunner().invoke(main, ["query", "x", "--store", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == "error: unexpected TypeError: something inside broke (run with --debug for the traceback)\n"
    debug = CliRunner().invoke(main, ["--debug", "query", "x", "--store", str(tmp_path)])
    assert isinstance(debug.exception, TypeError)


def test_doctor_against_the_sglang_stand_in() -> None:
    with SGLangServer(embedder=embedded_default(), served_model_name="Qwen/Qwen3-Embedding-0.6B") as srv:
        code, out, _ = invoke("doctor", "--embeddings-url", srv.url + "/v1", "--json")
    report = json.loads(out)
    assert report["model"] == "Qwen/Qwen3-Embedding-0.6B"
    assert report["dimension"] == 384 and report["context_length"] == 32768
    assert report["ranking_ok"] is True
    # The stand-in computes e5 vectors, not Qwen3's: the model-card check must notice.
    assert report["card_ok"] is False and code == 1


def test_a_bm25_query_answers_while_the_embedding_server_is_down(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea is brewed at 80 degrees Celsius.", encoding="utf-8")
    (corpus / "ml.txt").write_text("机器学习是一种让计算机自动学习的方法。", encoding="utf-8")
    store = str(tmp_path / "store")
    with SGLangServer(embedder=HashEmbedder(dim=64), served_model_name="Qwen/Qwen3-Embedding-0.6B") as srv:
        url = srv.url + "/v1"
        assert invoke("ingest", str(corpus), "--store", store, "--embeddings-url", url)[0] == 0
    flags = ("--store", store, "--embeddings-url", url, "--json")  # nothing listens there any more
    code, out, _ = invoke("query", "green tea brewing", "--mode", "bm25", *flags)
    rows = json.loads(out)
    assert code == 0 and rows[0]["source"] == "tea.md" and "80 degrees" in rows[0]["text"]
    assert (rows[0]["file_type"], rows[0]["start_index"], rows[0]["score"]) == ("markdown", 0, 1.0)
    code, _, err = invoke_quietly("query", "green tea brewing", "--mode", "hybrid", *flags)
    assert code == 1 and len(err.splitlines()) == 1 and url in err


def invoke_quietly(*args: str) -> tuple[int, str, str]:
    """:func:`invoke` where the command is expected to fail: its error as a user sees it."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.slow
def test_the_installed_command_runs(tmp_path: Path) -> None:
    binary = Path(sys.executable).with_name("qwen-rag")
    env = {**os.environ, "QWEN_RAG_STORE": str(tmp_path / "s")}
    done = subprocess.run([str(binary), "query", "x"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("error: no collection")


@pytest.mark.slow
def test_the_installed_command_leaves_its_work_whole_without_the_interpreters_teardown(tmp_path: Path) -> None:
    """``qwen-rag`` ends with ``os._exit`` (pipelines.cli.run): its output is all there, its exit code is the
    command's, and its writes are saved, Chroma's vector index included, for the next process."""
    binary = str(Path(sys.executable).with_name("qwen-rag"))
    env = {**os.environ, "QWEN_RAG_STORE": str(tmp_path / "s")}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tea.md").write_text("Green tea is steeped at eighty degrees Celsius for two minutes.", encoding="utf-8")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7 not really")

    done = subprocess.run(
        [binary, "ingest", str(corpus), "--json", "--strict"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 2  # --strict, and a file could not be read
    summary = json.loads(done.stdout)
    assert summary["added"] == 1 and [p["source"] for p in summary["problems"]] == ["broken.pdf"]
    assert pending(tmp_path / "s") == 0

    done = subprocess.run(
        [binary, "query", "steeped tea", "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0
    [row] = [r for r in json.loads(done.stdout) if r["source"] == "tea.md"]
    assert row["text"].startswith("Green tea")


@pytest.mark.slow
def test_query_loads_neither_langchains_retriever_machinery_nor_the_whole_jieba_dictionary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWEN_RAG_CACHE_DIR", str(tmp_path / "cache"))  # the ingest writes the query dictionary there
    segment._dictionary_path.cache_clear()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ml.txt").write_text("机器学习是一种让计算机自动学习的方法。", encoding="utf-8")
    (corpus / "tea.txt").write_text("Green tea is brewed at 80 degrees Celsius.", encoding="utf-8")
    store = str(tmp_path / "store")
    assert invoke("ingest", str(corpus), "--store", store)[0] == 0
    assert invoke("query", "tea", "--store", store)[0] == 0  # the BM25 index exists once a query has run
    probe = (
        "import json, sys\n"
        "from pipelines.cli import main\n"
        f"main(['query', '什么是机器学习？', '-k', '1', '--store', {store!r}], standalone_mode=False)\n"
        "from pipelines.retrieve import segment\n"
        "heavy = [m for m in ('langchain_core.retrievers', 'langchain_core.vectorstores') if m in sys.modules]\n"
        "print(json.dumps([heavy, segment._full_tokenizer.cache_info().currsize]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    segment._dictionary_path.cache_clear()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "ml.txt" in lines[0]  # it answered, in the default mode (hybrid: BM25 and the query dictionary ran)
    assert json.loads(lines[-1]) == [[], 0]


@pytest.mark.parametrize("name", sorted(main.commands))
def test_help_shows_runnable_examples(name: str) -> None:
    """Two or three examples in each command's --help, kept as written (click's \\b), each a valid command line."""
    command = main.commands[name]
    shown = CliRunner().invoke(main, [name, "--help"]).output
    examples = [line.strip() for line in (command.help or "").splitlines() if line.strip().startswith("qwen-rag ")]
    assert 2 <= len(examples) <= 3
    for example in examples:
        assert f"    {example}\n" in shown  # not rewrapped into one paragraph
        args = shlex.split(example)[1:]
        at = args.index(name)
        main.make_context("qwen-rag", [*args[:at], name])  # group options (--debug)
        command.make_context(name, args[at + 1 :])  # raises UsageError on an unknown option or a missing argument
