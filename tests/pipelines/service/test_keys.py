"""Keys scoped to collections: the keys file (TOML or YAML) and its mistakes, each one line naming the file and never
a key; finding a key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.errors import ConfigError
from pipelines.service.keys import ALL, Access, Keys

SECRET = "s3cret-key-9f8e7d6c"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_toml_file_gives_each_key_its_collections(tmp_path: Path) -> None:
    keys = Keys.from_file(write(tmp_path, "keys.toml", f'[keys]\n"{SECRET}" = ["hr", "eng"]\n"admin-0001" = "*"\n'))
    assert keys.find(SECRET.encode()) == Access(frozenset({"hr", "eng"}))
    assert keys.find(b"admin-0001") is ALL
    assert keys.find(b"s3cret") is None and keys.find(b"") is None


def test_a_yaml_file_says_the_same(tmp_path: Path) -> None:
    keys = Keys.from_file(write(tmp_path, "keys.yaml", f"keys:\n  {SECRET}: [hr]\n  other-key-1: ['*']\n"))
    assert keys.find(SECRET.encode()) == Access(frozenset({"hr"}))
    assert keys.find(b"other-key-1") is ALL


def test_access_reads_only_its_collections() -> None:
    access = Access(frozenset({"hr"}))
    assert access.may_read("hr") and not access.may_read("eng")
    assert access.readable(["eng", "hr", "x"]) == ["hr"]
    assert ALL.readable(["eng", "hr"]) == ["eng", "hr"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("keys.toml", "[keys\n", "not valid TOML"),
        ("keys.yaml", "keys: [unclosed\n", "not valid YAML at line 2"),
        ("keys.toml", "[other]\n", "expected a table 'keys'"),
        ("keys.toml", "[keys]\n", "no keys given"),
        ("keys.toml", f'[keys]\n"{SECRET}" = "hr"\n', "key ending '…7d6c'"),
        ("keys.toml", f'[keys]\n"{SECRET}" = [""]\n', "every collection must be a non-empty name"),
        ("keys.toml", '[keys]\n" padded " = "*"\n', "a key is blank or has spaces around it"),
    ],
)
def test_a_bad_keys_file_is_one_line_naming_it_and_not_the_key(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as raised:
        Keys.from_file(path)
    line = str(raised.value)
    assert line.startswith(f"{path}: ") and message in line and "\n" not in line
    assert SECRET not in line


def test_serve_refuses_api_key_and_keys_together(tmp_path: Path) -> None:
    path = write(tmp_path, "keys.toml", '[keys]\n"admin-0001" = "*"\n')
    result = CliRunner().invoke(main, ["serve", "--keys", str(path), "--api-key", "x", "--store", str(tmp_path)])
    assert result.exit_code == 2 and "give --api-key or --keys, not both" in result.output


def test_serve_names_a_bad_keys_file_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "keys.toml", "[keys]\n")
    result = CliRunner().invoke(main, ["serve", "--keys", str(path), "--store", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == f"error: {path}: no keys given: at least one key is needed\n"
