"""The service's keys and what each may read: ``serve --keys FILE`` maps each key to its collections, or ``*``.

The file is TOML (or YAML, by its suffix): a table ``keys`` whose entries are a key and the collections it may read.

    [keys]
    "hr-2f9c1d0e7b" = ["hr-policies"]
    "eng-8a41c6d2f3" = ["engineering", "hr-policies"]
    "admin-5e0b97a1c4" = "*"

``serve --api-key KEY`` is the one-key case: that key reads every collection. A key is found by comparing the
presented token with every key in constant time (:func:`hmac.compare_digest`), all of them every time, so neither
the time taken nor which key matched first tells anything about the keys.

>>> keys = Keys({"k1": ["hr"], "k2": "*"})
>>> keys.find(b"k1").may_read("hr"), keys.find(b"k1").may_read("eng"), keys.find(b"k2").may_read("eng")
(True, False, True)
>>> keys.find(b"nope") is None
True
"""

from __future__ import annotations

import hmac
import tomllib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import ConfigError

EVERY = "*"


@dataclass(frozen=True)
class Access:
    """What one request may read: the collections of its key (None: every one)."""

    collections: frozenset[str] | None = None

    def may_read(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def readable(self, names: Iterable[str]) -> list[str]:
        """Of ``names``, those this request may read, in order."""
        return [name for name in names if self.may_read(name)]


#: Every collection: a service without keys, or a key given ``*``.
ALL = Access()
#: The access of the request being served (set by :class:`pipelines.service.auth.BearerAuth`); the MCP tools read
#: it, as the SDK calls them without the HTTP request. Without keys (stdio, an open service): every collection.
CURRENT: ContextVar[Access] = ContextVar("qwen_rag_access", default=ALL)


class Keys:
    """Keys and their access; ``find`` compares in constant time over all keys."""

    def __init__(self, grants: Mapping[str, Iterable[str] | str]) -> None:
        if not grants:
            raise ConfigError("no keys given: at least one key is needed")
        self._keys: list[tuple[bytes, Access]] = []
        for key, allowed in grants.items():
            if not isinstance(key, str) or not key.strip() or key != key.strip():
                raise ConfigError("a key is blank or has spaces around it")
            self._keys.append((key.encode(), _access(key, allowed)))

    @classmethod
    def single(cls, key: str) -> Keys:
        """``--api-key``: one key that reads everything."""
        return cls({key: EVERY})

    @classmethod
    def from_file(cls, path: Path) -> Keys:
        """The keys of a TOML (``.toml``) or YAML (``.yaml``, ``.yml``) file; a ``ConfigError`` naming the file and
        what is wrong with it otherwise (never the keys themselves)."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot read the keys file ({error.__class__.__name__})") from None
        data = _parse(path, text)
        grants = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(grants, dict):
            raise ConfigError(f"{path}: expected a table 'keys' mapping each key to its collections or \"*\"")
        try:
            return cls(grants)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None

    def find(self, token: bytes) -> Access | None:
        """The access of ``token``, or None when it is no key."""
        found: Access | None = None
        for key, access in self._keys:
            # Every key is compared, even after a match: the time taken does not depend on which one matched.
            if hmac.compare_digest(token, key):
                found = access
        return found


def _access(key: str, allowed: Iterable[str] | str) -> Access:
    hint = f"key ending '…{key[-4:]}'" if len(key) >= 12 else "a key"  # enough to find it, too little to use it
    if allowed == EVERY:
        return ALL
    if isinstance(allowed, str) or not isinstance(allowed, list):
        raise ConfigError(f'{hint}: expected a list of collections or "*", not {allowed!r:.40}')
    if not all(isinstance(name, str) and name for name in allowed):
        raise ConfigError(f"{hint}: every collection must be a non-empty name")
    if EVERY in allowed:
        return ALL
    return Access(frozenset(allowed))


def _parse(path: Path, text: str) -> object:
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # PyYAML: a dependency of langchain-core, so always installed

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}: not valid YAML{where}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
