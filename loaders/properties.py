"""A document's own properties as metadata: ``title``, ``author``, ``created``, ``modified`` (ISO 8601 strings).

The formats keep them in different places (Office core properties, an EPUB's OPF); each loader reads its own and
hands the values here, so every format spells them the same way: whitespace collapsed, empty values left out,
dates as ISO 8601 (Office stores UTC: a date without a zone is given one).

>>> import datetime
>>> properties(title="  Annual\\nreport ", author="", created=datetime.datetime(2024, 3, 1, 9, 30), modified=None)
{'title': 'Annual report', 'created': '2024-03-01T09:30:00+00:00'}
"""

from __future__ import annotations

import datetime

Value = str | datetime.date | datetime.datetime | None


def properties(*, title: Value, author: Value, created: Value, modified: Value) -> dict[str, str]:
    given = {"title": title, "author": author, "created": created, "modified": modified}
    return {name: text for name, value in given.items() if (text := _text(value))}


def _text(value: Value) -> str:
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=datetime.UTC)).isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return " ".join(str(value or "").split())
