"""Dify's ``metadata_condition`` as a Chroma ``where``: every operator of Dify's list, exactly.

Chroma compares metadata by equality, set membership and, for numbers only, order. Dify's operators map as:

- ``is`` / ``=``, ``is not`` / ``≠``, ``in``, ``not in``: ``$eq``, ``$ne``, ``$in``, ``$nin`` (``=`` and ``≠``
  compare numbers: a numeric string is read as its number);
- ``>``, ``<``, ``≥``, ``≤``: ``$gt``, ``$lt``, ``$gte``, ``$lte`` on a number;
- what Chroma cannot express on a string (``contains``, ``not contains``, ``start with``, ``end with``, ``empty``,
  ``not empty``, and ``before``/``after``, whose dates may be stored as ISO strings): resolved against the distinct
  values the field holds in the collection, as ``$in`` (or ``$nin``) over those that match, the way source globs
  are (:mod:`pipelines.retrieve.filters`). That costs one scan of the collection's metadata per request that uses
  them, and is exact.

Negations (``is not``, ``≠``, ``not in``, ``not contains``, ``empty``) match chunks without the field, as Chroma's
``$ne`` and ``$nin`` do. Dates (``before``, ``after``) are ISO 8601 strings (a date, or a date and time; UTC when
no zone is given) or Unix timestamps, in the condition and in the metadata alike; a stored value that is neither
matches neither operator. An operator given a value it cannot use (``>`` with a word, ``in`` with nothing) is a
:class:`~pipelines.errors.ConfigError` (a 400), never a silent match-all.

>>> where_of("and", [Condition("department", "is", "hr"), Condition("year", ">", 2022)], lambda field: [])
{'$and': [{'department': {'$eq': 'hr'}}, {'year': {'$gt': 2022.0}}]}
>>> where_of("or", [Condition("title", "contains", "政策")], lambda field: ["人事政策", "工程手册"])
{'title': {'$in': ['人事政策']}}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipelines.errors import ConfigError

Operator = Literal[
    "contains",
    "not contains",
    "start with",
    "end with",
    "is",
    "is not",
    "in",
    "not in",
    "empty",
    "not empty",
    "=",
    "≠",
    ">",
    "<",
    "≥",
    "≤",
    "before",
    "after",
]
Scalar = str | int | float | bool
Value = Scalar | Sequence[Scalar] | None
#: Matches nothing in an ``$in`` (Chroma refuses an empty list).
_NOTHING = "\x00none"

_ORDER = {">": "$gt", "<": "$lt", "≥": "$gte", "≤": "$lte"}
_TEXT: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda held, wanted: wanted in held,
    "start with": lambda held, wanted: held.startswith(wanted),
    "end with": lambda held, wanted: held.endswith(wanted),
}
#: Operators resolved against the field's distinct values.
RESOLVED = frozenset({*_TEXT, "not contains", "empty", "not empty", "before", "after"})


@dataclass(frozen=True)
class Condition:
    """One Dify condition: a field (or several: any of them), an operator, a value."""

    name: str | Sequence[str]
    comparison_operator: Operator
    value: Value = None


def where_of(
    logical_operator: Literal["and", "or"] | None,
    conditions: Iterable[Condition],
    distinct: Callable[[str], list[Any]],
) -> dict[str, Any] | None:
    """The ``where`` for ``conditions`` joined by ``logical_operator`` (None: and); ``distinct(field)`` lists the
    values ``field`` holds in the collection, asked only for the operators that need it."""
    clauses = [_clause(condition, distinct) for condition in conditions]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {f"${logical_operator or 'and'}": clauses}


def _clause(condition: Condition, distinct: Callable[[str], list[Any]]) -> dict[str, Any]:
    names = [condition.name] if isinstance(condition.name, str) else list(condition.name)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ConfigError("metadata_condition: each condition needs a field name")
    # Old Dify documents allowed several names: the condition holds when it holds for any of them.
    clauses = [_one(name, condition.comparison_operator, condition.value, distinct) for name in names]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _one(name: str, op: str, value: Value, distinct: Callable[[str], list[Any]]) -> dict[str, Any]:
    if op in ("is", "is not"):
        chroma = "$eq" if op == "is" else "$ne"
        return {name: {chroma: _scalar(op, value)}}
    if op in ("=", "≠"):
        return {name: {"$eq" if op == "=" else "$ne": _number(op, value)}}
    if op in _ORDER:
        return {name: {_ORDER[op]: _number(op, value)}}
    if op in ("in", "not in"):
        return _membership(name, _values(op, value), negate=op == "not in")
    if op not in RESOLVED:
        raise ConfigError(f"metadata_condition: unknown comparison_operator {op!r}")
    held = [v for v in distinct(name) if isinstance(v, str | int | float) and not isinstance(v, bool)]
    if op in ("empty", "not empty"):
        filled = [v for v in held if v != ""]
        return _membership(name, filled, negate=op == "empty")
    if op in ("before", "after"):
        limit = _moment(value)
        if limit is None:
            raise ConfigError(f"metadata_condition: {op} needs a date (ISO 8601) or a Unix timestamp")
        moments = [(v, _moment(v)) for v in held]
        matching = [v for v, at in moments if at is not None and (at < limit if op == "before" else at > limit)]
        return _membership(name, matching, negate=False)
    wanted = _scalar(op, value)
    if not isinstance(wanted, str):
        raise ConfigError(f"metadata_condition: {op} needs a text value")
    test = _TEXT["contains" if op == "not contains" else op]
    matching = [v for v in held if isinstance(v, str) and test(v, wanted)]
    return _membership(name, matching, negate=op == "not contains")


def _membership(name: str, values: Sequence[Scalar], *, negate: bool) -> dict[str, Any]:
    """``$in`` (``$nin``) over ``values``, one clause per type: Chroma wants one type per list, and no empty one."""
    groups: dict[type, list[Scalar]] = {}
    for v in dict.fromkeys(values):
        kind: type = float if isinstance(v, int | float) and not isinstance(v, bool) else type(v)
        groups.setdefault(kind, []).append(float(v) if kind is float else v)
    if not groups:
        return {name: {"$nin" if negate else "$in": [_NOTHING]}}
    clauses = [{name: {"$nin" if negate else "$in": group}} for group in groups.values()]
    return clauses[0] if len(clauses) == 1 else {"$and" if negate else "$or": clauses}


def _scalar(op: str, value: Value) -> Scalar:
    if isinstance(value, str | int | float):
        return value
    raise ConfigError(f"metadata_condition: {op} needs one value, not {_shown(value)}")


def _number(op: str, value: Value) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"metadata_condition: {op} needs a number, not {_shown(value)}")


def _values(op: str, value: Value) -> list[Scalar]:
    """``in``'s values: a list, or one string of comma-separated values (as Dify's own filter takes them)."""
    if isinstance(value, str):
        values: list[Scalar] = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, int | float):
        values = [value]
    elif isinstance(value, Sequence):
        values = list(value)
    else:
        values = []
    if not values:
        raise ConfigError(f"metadata_condition: {op} needs a list of values")
    return values


def _moment(value: object) -> float | None:
    """A date as a Unix timestamp: from a number, or an ISO 8601 string (UTC when it names no zone)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def _shown(value: object) -> str:
    return "nothing" if value is None else f"{value!r:.40}"
