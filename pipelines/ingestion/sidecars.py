"""The user's own fields for each file of an ingest: ``--meta`` for the whole run, folder sidecars, file sidecars.

- ``--meta KEY=VALUE`` (``Settings.meta``): every file of the run;
- ``qwen-rag.meta.yaml`` in a folder: a mapping of globs to fields, for the files under that folder (globs are
  relative to it, with the walk's rules: ``*.pdf`` at any depth, ``policies/**``, ...); entries further down the
  file win over earlier ones, and a folder nearer the file wins over one further up (up to the root);
- ``NAME.meta.json`` beside the file ``NAME`` (``report.pdf.meta.json``): a JSON object of that file's fields.

Per field, the file's own sidecar wins over the folder files, which win over ``--meta``. Values are strings,
numbers or true/false (Chroma's rule; a YAML date becomes its ISO string); names of qwen-rag's own metadata are
refused (:mod:`pipelines.fields`). A bad sidecar is the file's problem: one line naming the sidecar, and the
file keeps what the store holds of it until the sidecar is fixed (indexing it without its fields could expose a
file the fields were meant to fence off).

Why PyYAML: the folder file is written by hand, and YAML is what such files are written in (``safe_load`` only:
no Python objects). The glob rules are the walk's own (:func:`loaders.walk.glob_regex`).

>>> from pathlib import Path
>>> Sidecars({"department": "hr"}).fields(SourceFile(Path("/nowhere"), Path("/nowhere/a.md")))
{'department': 'hr'}
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import yaml

from loaders import SourceFile
from loaders.errors import one_line, os_cause
from loaders.walk import FOLDER_SIDECAR, SIDECAR_SUFFIX, glob_regex
from pipelines.errors import ConfigError
from pipelines.fields import Fields, check

_Rules = list[tuple[re.Pattern[str], Fields]]


class Sidecars:
    """The fields of the files of one run; each folder file is read once (see the module docstring)."""

    def __init__(self, run_fields: Fields) -> None:
        self.run_fields = dict(run_fields)
        self._folders: dict[Path, _Rules | ConfigError] = {}

    def fields(self, file: SourceFile) -> Fields:
        """``file``'s fields; raises ``ConfigError`` naming the sidecar at fault."""
        fields = dict(self.run_fields)
        for folder in _folders(file):
            relative = file.path.relative_to(folder).as_posix()
            for pattern, values in self._rules(folder):
                if pattern.fullmatch(relative):
                    fields.update(values)
        own = file.path.with_name(file.path.name + SIDECAR_SUFFIX)
        if own.is_file():
            fields.update(_own(own))
        return fields

    def _rules(self, folder: Path) -> _Rules:
        if folder not in self._folders:
            try:
                self._folders[folder] = _folder_rules(folder / FOLDER_SIDECAR)
            except ConfigError as error:
                self._folders[folder] = error
        found = self._folders[folder]
        if isinstance(found, ConfigError):
            raise found
        return found


def _folders(file: SourceFile) -> list[Path]:
    """The folders whose sidecar applies to ``file``: from the root (or the file's folder, for a file root) down."""
    top = file.root if file.root != file.path else file.path.parent
    chain = [file.path.parent]
    while chain[-1] != top and chain[-1].is_relative_to(top) and chain[-1] != chain[-1].parent:
        chain.append(chain[-1].parent)
    return chain[::-1]


def _folder_rules(path: Path) -> _Rules:
    if not path.is_file():
        return []
    data = _parse(path, yaml.safe_load, "YAML", yaml.YAMLError)
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of globs to fields")
    rules: _Rules = []
    for pattern, values in data.items():
        if not isinstance(pattern, str) or not isinstance(values, dict):
            raise ConfigError(f"{path}: {pattern!r} should map a glob to its fields (glob: {{field: value}})")
        rules.append((glob_regex(pattern), check(_plain(values), f"{path} ({pattern})")))
    return rules


def _own(path: Path) -> Fields:
    data = _parse(path, json.loads, "JSON", ValueError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of fields")
    return check(data, str(path))


def _parse(path: Path, load: Any, kind: str, error: type[Exception]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as failure:
        raise ConfigError(f"{path}: {os_cause(failure)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        return load(text)
    except error as failure:
        raise ConfigError(f"{path}: not valid {kind}: {one_line(str(failure))}") from None


def _plain(values: dict[Any, Any]) -> dict[Any, Any]:
    """YAML's dates and times as ISO 8601 strings, like the document properties."""
    return {k: v.isoformat() if isinstance(v, datetime.date) else v for k, v in values.items()}
