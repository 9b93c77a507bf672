"""The settings page, `/settings`: a person's own account (password, second factor) and, for the
admins of the current organisation, its API keys, users and agent links; server admins also manage
organisations.

The page holds no data and does nothing by itself: its script (static/settings.js) calls the same
JSON APIs a script with a key would (`/api/session/...`, `/api/orgs/...`, `/api/agent/link...`),
which check every request themselves. The sections are left out of the HTML for someone whose role
cannot use them, so a viewer is never shown a form that would only be refused.

It is a page for people: it needs a dashboard login (a session). Anyone else, including the
anonymous reader of `[server] public_read` and a script holding a key, is sent to `/login`.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, redirect, render_template, request

from dashfleet_core.accounts import Principal

from ..access import ADMIN, SELF, principal, requires
from ..app import get_fleet
from ..auth import ApiError

bp = Blueprint("settings", __name__)


def signed_in() -> Principal | None:
    """The request's principal when it is a logged-in person, else None (a wrong bearer credential
    beside the cookie is no person either)."""
    try:
        found = principal()
    except ApiError:
        return None
    return found if found is not None and found.user is not None else None


@bp.get("/settings")
@requires(SELF)
def settings_page():
    found = signed_in()
    if found is None:
        return redirect(f"/login?next={quote(request.path, safe='/')}", code=302)
    org = get_fleet().accounts.orgs.get(found.org)
    return render_template(
        "settings.html", page="settings", ttl_seconds=get_fleet().settings.server.ttl_seconds,
        username=found.user, org_id=found.org, org_name=org.name if org else found.org,
        org_admin=found.can(ADMIN), server_admin=found.server)
