"""Client input quoted back in an error message, cut short.

Errors name what was wrong ("unknown field 'x'"), but a client can send a 900,000-character name;
quoting it whole makes a megabyte answer (and log line) out of one request. Every echo of client
input in an error message or a `fields` list goes through `clip`.
"""

from __future__ import annotations

from typing import Any, Iterable

MAX_ECHO = 64
MAX_FIELDS = 20
ELLIPSIS = "…"


def clip(value: Any, limit: int = MAX_ECHO) -> str:
    """`value` as text, at most `limit` characters; a cut one ends with "…"."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def clip_all(values: Iterable[Any], limit: int = MAX_FIELDS) -> list[str]:
    """At most `limit` clipped names (a `fields` list); the rest are left out."""
    out = []
    for value in values:
        if len(out) == limit:
            break
        out.append(clip(value))
    return out
