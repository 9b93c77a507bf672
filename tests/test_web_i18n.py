"""No untranslated string: the four language tables of web/static/i18n.js have the same keys, no
empty text, and every key the templates and scripts use exists (static check; the browser tests
also fail on a missing key, which i18n.js reports on the console)."""

from __future__ import annotations

import re
import typing

from dashfleet_core.models import EventKind

from conftest import REPO

WEB = REPO / "web"
LANGS = ("en", "fr", "es", "ru")
PAGES = ("live", "history", "fleet", "machine", "settings")


def tables() -> dict[str, dict[str, str]]:
    text = (WEB / "static" / "i18n.js").read_text(encoding="utf-8")
    found = {}
    for lang in LANGS:
        block = re.search(rf"^  {lang}: \{{\n(.*?)^  \}},", text, re.S | re.M)
        assert block, f"no table for {lang}"
        found[lang] = dict(re.findall(r'"([a-z0-9_.]+)": "((?:[^"\\]|\\.)*)"', block.group(1)))
    return found


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in (WEB / "templates").glob("*.html"):
        html = path.read_text(encoding="utf-8")
        for key in re.findall(r'data-i18n(?:-placeholder|-title|-aria-label|-alt)?="([^"]+)"', html):
            if "{{ page }}" in key:
                keys.update(key.replace("{{ page }}", page) for page in PAGES)
            else:
                keys.add(key)
    for path in (WEB / "static").glob("*.js"):
        js = path.read_text(encoding="utf-8")
        keys.update(re.findall(r'\bt\("([a-z0-9_.]+)"', js))
        keys.update(re.findall(r'i18n: "([a-z0-9_.]+)"', js))
        keys.update(re.findall(r'"(metric\.[a-z]+)"', js))
    # the settings page passes its keys to helpers (say, button, confirmThen): every literal that
    # looks like one of its keys is one
    keys.update(re.findall(r'"(settings\.[a-z0-9_.]+)"', (WEB / "static" / "settings.js").read_text(encoding="utf-8")))
    keys.update(f"settings.role.{r}" for r in ("viewer", "operator", "admin"))
    # keys built at run time from data: status.<status>, severity.<severity>, event.<kind>
    keys.update(f"status.{s}" for s in ("ok", "warn", "critical", "expired"))
    keys.update(f"severity.{s}" for s in ("warn", "critical"))
    keys.update(f"event.{k}" for k in typing.get_args(EventKind))
    return {k for k in keys if not k.endswith(".")}


def test_every_language_has_the_same_keys_and_no_empty_text():
    found = tables()
    english = set(found["en"])
    assert len(english) > 60
    for lang in LANGS:
        assert set(found[lang]) == english, (lang, set(found[lang]) ^ english)
        assert all(text.strip() for text in found[lang].values()), lang


def test_every_key_used_by_the_pages_is_translated():
    missing = used_keys() - set(tables()["en"])
    assert not missing, sorted(missing)


def test_placeholders_match_across_languages():
    found = tables()
    for key, text in found["en"].items():
        wanted = set(re.findall(r"\{(\w+)\}", text))
        for lang in LANGS:
            assert set(re.findall(r"\{(\w+)\}", found[lang][key])) == wanted, (lang, key)
