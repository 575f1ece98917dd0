from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.settings import Mode, OnMismatch, Settings


def test_defaults_are_the_documented_ones() -> None:
    s = Settings()
    assert (s.chunk_tokens, s.chunk_overlap, s.batch_size, s.concurrency) == (512, 64, 32, 4)
    assert s.task is None  # not given: the collection's task, else the model's default
    assert s.mode is Mode.HYBRID  # it beats dense on both shared datasets (docs/benchmarks.md)
    assert s.api_key.get_secret_value() == "EMPTY"
    assert s.embeddings_url == []


def test_every_field_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWEN_RAG_STORE", "/tmp/elsewhere")
    monkeypatch.setenv("QWEN_RAG_EMBEDDINGS_URL", "http://a:1/v1, http://b:2/v1")
    monkeypatch.setenv("QWEN_RAG_CHUNK_TOKENS", "256")
    monkeypatch.setenv("QWEN_RAG_ON_MISMATCH", "recreate")
    monkeypatch.setenv("QWEN_RAG_EXCLUDE", "**/*.log,tmp/**")
    s = Settings()
    assert s.store == Path("/tmp/elsewhere")
    assert s.embeddings_url == ["http://a:1/v1", "http://b:2/v1"]
    assert s.chunk_tokens == 256
    assert s.on_mismatch is OnMismatch.RECREATE
    assert s.exclude == ["**/*.log", "tmp/**"]


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWEN_RAG_K", "9")
    assert Settings(k=3).k == 3


def test_overlap_must_be_below_chunk_size() -> None:
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(chunk_tokens=64, chunk_overlap=64)


def test_api_key_is_never_printed() -> None:
    s = Settings(api_key="sk-secret-value")
    assert "sk-secret-value" not in repr(s)
    assert "sk-secret-value" not in str(s.model_dump())
