"""Text that came from agents, made safe for where it is shown.

Hostnames, OS names, facts and finding messages come from machines we do not control. Shown raw
they can ping a whole Slack or Discord channel, disguise a link, forge a line in a terminal or an
audit listing, reverse a name with a bidi override, or run as a spreadsheet formula. Each target
gets its own treatment, and every place that shows agent text uses these functions:

- notifications: `clean()` each agent piece as it enters a message (controls and bidi controls
  removed, length capped), then `render()` the whole message for its target (Slack, Teams,
  Discord, plain);
- terminals and CSV: `visible()` shows control and bidi characters as visible stand-ins;
- CSV: `csv_cell()` also defuses formulas.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Literal

Format = Literal["slack", "teams", "discord", "plain"]
FORMATS: tuple[str, ...] = ("slack", "teams", "discord", "plain")

# Bidi formatting characters: ALM, LRM, RLM, the embeddings/overrides and the isolates.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# C0, DEL and C1 controls (C1 0x9b is CSI in some terminals), and the Unicode line breaks.
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_HIDDEN = re.compile(f"[{_CONTROLS}{BIDI}]")
_BREAKS = "\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029"  # what would start a new line somewhere
ELLIPSIS = "\u2026"

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that start or end
# Markdown syntax in Teams and Discord (emphasis, links, images, code, headings, lists, quotes,
# tables, strike-through, spoilers, raw HTML and autolinks).
MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()#+-.!|~<>")
_MENTION = re.compile(r"@(?=(?:everyone|here|channel)\b|[&!]?\d)", re.IGNORECASE)
ZWSP = "\u200b"

# Most characters a receiver takes in one message (Discord refuses more than 2,000; Slack cuts
# at 40,000; Teams refuses a card much over 28 KB).
LIMITS: dict[str, int] = {"slack": 40000, "teams": 20000, "discord": 2000, "plain": 40000}


def clean(text: object, limit: int | None = None) -> str:
    """One line of agent text with no control or bidi characters, at most `limit` characters.

    Line breaks and tabs become spaces (so a value cannot start a forged line); every other
    control and bidi formatting character is removed. A cut is marked with an ellipsis.
    """
    value = "" if text is None else str(text)
    value = _HIDDEN.sub(lambda m: " " if m.group() in _BREAKS else "", value)
    return cap(value, limit)


def clean_block(text: str) -> str:
    """Several lines (a whole message): each line cleaned, the line breaks between them kept."""
    return "\n".join(clean(line) for line in text.split("\n"))


def cap(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters, the last one an ellipsis when something was cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def visible(text: object) -> str:
    """Control and bidi characters shown, not obeyed: for terminals, CSV and logs read by people.

    C0 controls and DEL become their Unicode control pictures (ESC -> U+241B, NUL -> U+2400,
    CR -> U+240D, LF -> U+240A); C1 controls, bidi formatting characters and the Unicode line
    separators become `<U+202E>`-style text. Everything else is left as it is.
    """
    value = "" if text is None else str(text)
    return _HIDDEN.sub(lambda m: _picture(m.group()), value)


def visible_lines(text: str) -> str:
    """Several lines, each made `visible()`, the line breaks between them kept: for output that
    was composed elsewhere (prefer `visible()` on each piece, which also shows a piece's own LF)."""
    return "\n".join(visible(line) for line in text.split("\n"))


def _picture(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"<U+{code:04X}>"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: controls made visible, formulas defused.

    A text cell starting with = + - @ (or a tab or line break) gets a leading apostrophe, which
    spreadsheets take as "this is text" (OWASP's advice on CSV injection). Numbers stay numbers.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return visible(value)


def escape_slack(text: str) -> str:
    """Slack's own escaping: `&`, `<` and `>` as `&amp;` `&lt;` `&gt;`, so `<!channel>`,
    `<@U123>` and `<https://x|label>` show as text (api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_markdown(text: str) -> str:
    """Markdown specials backslash-escaped (CommonMark), so `[x](https://evil)`, `**`, `<...>`
    and `# heading` show as typed in Teams and Discord."""
    return "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in text)


def defuse_mentions(text: str) -> str:
    """`@everyone`, `@here`, `@channel` and `@<digits>` with a zero-width space after the `@`, so no
    chat service reads them as a mention (what Discord's own bots do)."""
    return _MENTION.sub("@" + ZWSP, text)


def _escaper(fmt: str) -> Callable[[str], str]:
    if fmt == "slack":
        return escape_slack
    if fmt in ("teams", "discord"):
        return escape_markdown
    if fmt == "plain":
        return lambda s: s
    raise ValueError(f"unknown message format {fmt!r}; use one of {', '.join(FORMATS)}")


def render(text: str, fmt: str, keep: Iterable[str] = (), limit: int | None = None) -> str:
    """A whole message escaped for `fmt`, cut to the target's limit without splitting an escape.

    `keep` lists strings DashFleet wrote itself (the links to the dashboard): they stay as they
    are (Slack still gets its `&amp;`), so they remain clickable. Everything else is escaped.
    """
    escape = _escaper(fmt)
    limit = LIMITS[fmt] if limit is None else limit
    text = clean_block(text)
    units: list[str] = []
    for part, kept in _split(text, [k for k in keep if k]):
        if kept:
            units.append(escape_slack(part) if fmt == "slack" else part)
            continue
        if fmt == "discord":
            part = defuse_mentions(part)
        units.extend(escape(c) for c in part)
    out: list[str] = []
    size = 0
    budget = limit - len(ELLIPSIS)
    total = sum(len(u) for u in units)
    if total <= limit:
        return "".join(units)
    for unit in units:
        if size + len(unit) > budget:
            break
        out.append(unit)
        size += len(unit)
    return "".join(out) + ELLIPSIS


def _split(text: str, keep: list[str]) -> list[tuple[str, bool]]:
    """`text` in pieces, each marked True when it is one of the `keep` strings."""
    if not keep:
        return [(text, False)]
    rx = re.compile("|".join(re.escape(k) for k in sorted(set(keep), key=len, reverse=True)))
    pieces: list[tuple[str, bool]] = []
    at = 0
    for match in rx.finditer(text):
        if match.start() > at:
            pieces.append((text[at:match.start()], False))
        pieces.append((match.group(), True))
        at = match.end()
    if at < len(text):
        pieces.append((text[at:], False))
    return pieces
