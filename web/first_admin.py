"""The first start of a server with no users: log, once per data folder, the one-time setup link
that creates the first server admin (`dashfleet_core.accounts.setup`)."""

from __future__ import annotations

import logging

from dashfleet_core.accounts.setup import base_url

log = logging.getLogger("dashfleet.setup")


def announce(fleet, port: int | None = None) -> str | None:
    """Log the setup link if this process is the one to announce it; returns the link or None."""
    try:
        made = fleet.accounts.setup_links.announce_once()
    except Exception:  # storage trouble must not stop the server; the CLI can make a link
        log.exception("could not make the first-start setup link; run: dashfleet user setup-link")
        return None
    if made is None:
        return None
    token, expires = made
    link = f"{base_url(fleet.settings, port)}/setup/{token}"
    log.warning("\n%s\nNo user exists yet. Create the first server admin within 60 minutes (until %s UTC),\n"
                "once, at:\n\n    %s\n\n(or from the shell: dashfleet user add NAME --org default --role admin "
                "--server-admin)\n%s", "=" * 78, expires.strftime("%H:%M"), link, "=" * 78)
    return link
