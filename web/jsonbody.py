"""JSON request bodies, read the same safe way by every endpoint.

Python's `json` (and anything that walks the result recursively) can exhaust the stack on a body
nested a few thousand levels deep: a RecursionError, a 500 and a traceback per request. So the
nesting depth is checked on the raw bytes first, cheaply and outside JSON strings, and a body
deeper than MAX_DEPTH is refused with a 400 before any parser sees it. Parse errors say where the
body is wrong, never Python's advice (`sys.set_int_max_str_digits()`).

`Request` makes `request.get_json()` (plugins' routes included) go through the same check.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from flask import Request as FlaskRequest
from werkzeug.exceptions import RequestEntityTooLarge

from .auth import ApiError

MAX_DEPTH = 64
# Enough passes of "remove the innermost pairs" to empty a normal report or request body.
_QUICK_PASSES = 8
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_AS_PARENS = bytes.maketrans(_BRACKETS, b"()()")
_OPEN = ord("(")


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """True if a JSON parser reading `raw` would nest deeper than `limit` before finishing or
    failing. Brackets inside strings do not count; an invalid body is left to the parser, which
    rejects it without recursing past where it breaks."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    parens = _outside_strings(raw).translate(_AS_PARENS, _NOT_BRACKETS)
    # Each pass deletes the innermost "()" pairs at C speed; a normal body is empty after a few.
    rest, passes = parens, 0
    while passes < _QUICK_PASSES:
        shorter = rest.replace(b"()", b"")
        if len(shorter) == len(rest):
            break
        rest, passes = shorter, passes + 1
    peak = _peak(rest, limit)
    if peak > limit:
        return True
    if peak + passes <= limit:  # a pass lowers the deepest point by at most one level
        return False
    return _peak(parens, limit) > limit


def _outside_strings(raw: bytes) -> bytes:
    """`raw` without its JSON strings: once escaped backslashes and quotes are gone, every other
    quote opens or closes a string (all at C speed; no regex backtracking on a large body)."""
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(unescaped.split(b'"')[::2])


def _peak(parens: bytes, limit: int) -> int:
    """Deepest nesting of a string of parentheses, scanned until it passes `limit` or goes below
    zero (where a parser stops with an error)."""
    depth = peak = 0
    for char in parens:
        if char == _OPEN:
            depth += 1
            if depth > peak:
                peak = depth
                if peak > limit:
                    break
        else:
            depth -= 1
            if depth < 0:
                break
    return peak


def parse_json(raw: bytes, hint: str) -> Any:
    """The body as Python values, or ApiError(400) saying what is wrong and then `hint` (what to
    send instead)."""
    if too_deep(raw):
        raise ApiError(400, f"the body nests arrays or objects more than {MAX_DEPTH} levels deep; "
                            f"{hint}")
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ApiError(400, f"{describe_json_error(exc)}; {hint}") from None


def describe_json_error(exc: ValueError) -> str:
    """What is wrong with a body `json.loads` refused, in words a client can act on."""
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not valid JSON: it is not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"the body is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
    # what is left: an integer longer than Python converts (sys.get_int_max_str_digits)
    return (f"the body is not valid JSON here: a number has more than {sys.get_int_max_str_digits()} "
            f"digits; send numbers of ordinary size (and long identifiers as strings)")


class Request(FlaskRequest):
    """Flask's request, with two guards every endpoint (plugins' routes too) gets:

    - `get_data()` answers 413 for a chunked body (no Content-Length) that reaches `[server]
      max_body_bytes`: Werkzeug stops reading there without an error, and the cut body would
      otherwise be reported as "not valid JSON";
    - `get_json()` refuses a body nested deeper than MAX_DEPTH with a 400 before parsing it, and
      says what is wrong with invalid JSON in the words `parse_json` uses (not Python's).
    """

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False) -> Any:
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        limit = self.max_content_length
        if self.content_length is None and limit is not None and len(data) >= limit:
            raise RequestEntityTooLarge()
        return data.decode(errors="replace") if as_text else data

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:  # not a JSON content type: Flask's 415
            return super().on_json_loading_failed(e)
        raise ApiError(400, f"{describe_json_error(e)}; send a valid JSON document")

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if (force or self.is_json) and too_deep(self.get_data(cache=True)):
            raise ApiError(400, f"the body nests arrays or objects more than {MAX_DEPTH} levels deep; "
                                "send a flatter JSON document")
        return super().get_json(force=force, silent=silent, cache=cache)
