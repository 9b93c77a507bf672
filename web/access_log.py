"""The access log of `dashfleet web` (waitress writes none): one INFO line per request on the
`dashfleet_web.access` logger, shown with `dashfleet -v web`.

What a client sends is escaped before it reaches the log: control characters (a newline would forge
a second line, an escape sequence would drive the terminal) become `\\xNN`, long paths are cut, and
query strings are left out, since they may carry secrets."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

log = logging.getLogger("dashfleet_web.access")
MAX_PATH = 200


def printable(text: str, limit: int = MAX_PATH) -> str:
    """`text` cut to `limit` characters, with every non-printable character and `"` as `\\xNN`."""
    cut = text[:limit]
    out = "".join(c if c.isprintable() and c not in '"\\' else f"\\x{ord(c):02x}" for c in cut)
    return out + ("..." if len(text) > limit else "")


class AccessLog:
    """WSGI middleware: logs `ADDRESS "METHOD PATH PROTOCOL" STATUS` when the app starts its answer."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not log.isEnabledFor(logging.INFO):
            return self.app(environ, start_response)

        def logged(status: str, headers: list, exc_info=None):
            log.info('%s "%s %s %s" %s', environ.get("REMOTE_ADDR", "-"),
                     printable(environ.get("REQUEST_METHOD", ""), 16), printable(environ.get("PATH_INFO", "")),
                     printable(environ.get("SERVER_PROTOCOL", ""), 16), status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        return self.app(environ, logged)
