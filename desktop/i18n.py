"""The window's strings in English, French, Spanish and Russian, from `strings.json`.

The wordings shared with the web pages (metric names, statuses, findings) are the ones of
web/static/i18n.js; tests/test_desktop_view.py checks they stay the same. The desktop keeps its own
file because the core and this host must not import the web host.
"""

from __future__ import annotations

import json
import locale
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

LANGUAGES = ("en", "fr", "es", "ru")
NAMES = {"en": "English", "fr": "Français", "es": "Español", "ru": "Русский"}
DEFAULT = "en"


@lru_cache(maxsize=1)
def tables() -> dict[str, dict[str, str]]:
    with open(Path(__file__).with_name("strings.json"), encoding="utf-8") as fh:
        return json.load(fh)


def system_language(env: dict[str, str] | None = None) -> str:
    """The user's language if the window speaks it (LC_ALL, LC_MESSAGES, LANG, then the locale
    module's guess), else English."""
    env = os.environ if env is None else env
    candidates = [env.get(var) for var in ("LC_ALL", "LC_MESSAGES", "LANG")]
    if env is os.environ:
        try:
            candidates.append(locale.getlocale()[0])
        except ValueError:
            pass
    for value in candidates:
        code = (value or "").split(".")[0].split("_")[0].lower()
        if code in LANGUAGES:
            return code
    return DEFAULT


class Translator:
    """`t(key, **values)` in one language; a key missing there falls back to English."""

    def __init__(self, language: str = DEFAULT) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
        self.language = language
        self._table = tables()[language]
        self._fallback = tables()[DEFAULT]

    def __call__(self, key: str, **values: Any) -> str:
        text = self._table.get(key) or self._fallback[key]
        return text.format(**values) if values else text
