"""A folder of broken files: every bad file reported once with its cause, every good file indexed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfWriter

from pipelines.cli import main
from tests.conftest import SAMPLES


@pytest.fixture
def messy(tmp_path: Path, pdfs: Path) -> Path:
    root = tmp_path / "messy"
    shutil.copytree(SAMPLES, root)
    real = (pdfs / "en_paper_naacl2018-N18-3011.pdf").read_bytes()
    (root / "truncated.pdf").write_bytes(real[: len(real) // 3])
    (root / "random.pdf").write_bytes(os.urandom(4096))
    shutil.copy(pdfs / "edge_encrypted_libreoffice-writer-password.pdf", root / "locked.pdf")
    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    with open(root / "scanned.pdf", "wb") as out:
        blank.write(out)
    (root / "empty.txt").write_text("")
    (root / "blank.md").write_text("   \n\n  \t\n")
    (root / "binary.txt").write_bytes(b"\x00\x01\x02" * 1000)
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e ".encode("latin-1") * 50 + b"\xff\xfe\x81\x8d")
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "outside.txt").symlink_to(pdfs / "zh_elegantpaper-cn.pdf")
    shutil.copy(pdfs / "zh_elegantpaper-cn.pdf", root / "chinese.pdf")
    return root


def ingest_json(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["ingest", *args, "--json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.slow
def test_every_bad_file_is_reported_and_every_good_file_indexed(messy: Path, tmp_path: Path) -> None:
    code, summary = ingest_json(str(messy), "--store", str(tmp_path / "store"))
    assert code == 0  # warnings, not failure
    causes = {p["source"]: p["cause"] for p in summary["problems"]}
    assert len(causes) == len(summary["problems"]), "each bad file is reported once"
    assert "encrypted" in causes["locked.pdf"]
    assert causes["scanned.pdf"] == "no text found, not even by OCR"  # its one page is blank
    assert "empty" in causes["empty.txt"] and "empty" in causes["blank.md"]
    assert "binary" in causes["binary.txt"]
    assert "UTF-8" in causes["latin1.txt"]
    assert causes["truncated.pdf"] and causes["random.pdf"]
    assert any("symlink" in cause for cause in causes.values())
    assert all("\n" not in cause and "Traceback" not in cause for cause in causes.values())
    # The nine samples and the real Chinese PDF are all in.
    assert summary["added"] == 10
    assert summary["failed"] >= 7


@pytest.mark.slow
def test_strict_turns_warnings_into_a_failure_exit(messy: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ingest", str(messy), "--store", str(tmp_path / "s"), "--strict"])
    assert result.exit_code == 2


def test_the_password_opens_the_encrypted_pdf(pdfs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    shutil.copy(pdfs / "edge_encrypted_libreoffice-writer-password.pdf", folder / "locked.pdf")
    code, summary = ingest_json(str(folder), "--store", str(tmp_path / "s"), "--pdf-password", "openpassword")
    assert (code, summary["added"], summary["problems"]) == (0, 1, [])


def test_without_ocr_a_scanned_pdf_says_how_to_read_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    with open(folder / "scanned.pdf", "wb") as out:
        blank.write(out)
    (folder / "notes.txt").write_text("Something to index.")
    monkeypatch.setenv("QWEN_RAG_OCR", "never")
    code, summary = ingest_json(str(folder), "--store", str(tmp_path / "s"))
    assert code == 0 and summary["added"] == 1
    assert summary["problems"] == [
        {"source": "scanned.pdf", "cause": "no extractable text (scanned PDF? use --ocr auto)", "page": None}
    ]


def test_nothing_indexable_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.txt").write_text("")
    result = CliRunner().invoke(main, ["ingest", str(folder), "--store", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert "nothing could be indexed" in result.stderr
    assert "empty.txt" in result.stderr


@pytest.mark.slow
def test_pages_carry_their_numbers(pdfs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "paper"
    folder.mkdir()
    shutil.copy(pdfs / "en_paper_acl2020-main-207.pdf", folder / "paper.pdf")
    code, _ = ingest_json(str(folder), "--store", str(tmp_path / "s"))
    assert code == 0
    result = CliRunner().invoke(
        main, ["query", "evaluation results table", "-k", "5", "--store", str(tmp_path / "s"), "--json"]
    )
    rows = json.loads(result.stdout)
    assert all(isinstance(r["page"], int) and 1 <= r["page"] <= 13 for r in rows)
    assert all(r["source"] == "paper.pdf" for r in rows)
