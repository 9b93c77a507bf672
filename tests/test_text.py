"""dashfleet_core.text: the stand-ins, the cuts and the escapes every notifier, command and export
relies on (the real receivers, commands and pages are tested in the *_hostile_text modules)."""

from __future__ import annotations

import pytest

from dashfleet_core.text import ELLIPSIS, cap, clean, csv_cell, defuse_mentions, render, visible


def test_visible_uses_control_pictures_and_code_points():
    assert visible("\x00\x07\x1b\r\n\t\x7f") == "\u2400\u2407\u241b\u240d\u240a\u2409\u2421"
    assert visible("\x9b\u202e\u2066\u200f\u061c\u2028") == "<U+009B><U+202E><U+2066><U+200F><U+061C><U+2028>"
    assert visible("Zürich – 東京 ☃") == "Zürich – 東京 ☃", "printable text is left alone"


def test_clean_removes_controls_and_bidi_and_turns_breaks_into_spaces():
    assert clean("a\r\nb\tc\x1b[2J\u202ed\x85e\u2028f") == "a  b c[2Jd e f"
    assert clean(None) == "" and clean(42) == "42"


def test_cap_marks_a_cut():
    assert cap("abcdef", 4) == "abc" + ELLIPSIS and cap("abc", 4) == "abc" and cap("abc", None) == "abc"


@pytest.mark.parametrize("value, cell", [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
                                         ("\tx", "'\u2409x"), ("a\x1bb", "a\u241bb"), (-1.5, -1.5), (3, 3)])
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell


def test_mentions_are_broken_with_a_zero_width_space():
    assert defuse_mentions("@everyone @HERE @channel <@123> <@&9> mail@host") == \
        "@\u200beveryone @\u200bHERE @\u200bchannel <@\u200b123> <@\u200b&9> mail@host"


@pytest.mark.parametrize("fmt, unit", [("slack", "&amp;"), ("teams", "\\."), ("discord", "\\.")])
def test_a_cut_never_splits_an_escape(fmt, unit):
    text = ("&" if fmt == "slack" else ".") * 5000
    out = render(text, fmt, limit=1000)
    assert len(out) <= 1000 and out.endswith(ELLIPSIS)
    assert out[:-1] == unit * ((1000 - 1) // len(unit))


def test_kept_links_stay_as_written():
    link = "http://fleet.example/fleet/pc_01?a=1&b=2"
    assert render(f"see {link} [x](y)", "teams", keep=[link]) == f"see {link} \\[x\\]\\(y\\)"
    assert render(f"see {link}", "slack", keep=[link]) == "see http://fleet.example/fleet/pc_01?a=1&amp;b=2"
