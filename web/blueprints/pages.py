"""The pages: `/` (this server's machine, live), `/history`, `/fleet`, `/fleet/<machine_id>`.

Templates hold structure and translatable labels only; the data is fetched from the API by the
page's script and put into the DOM with `textContent`, so nothing an agent sends is ever parsed
as HTML.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template

from dashfleet_core.models import DEFAULT_ORG

from ..access import OPEN, current_org, requires
from ..app import get_fleet

bp = Blueprint("pages", __name__)


def _common() -> dict:
    server = get_fleet().settings.server
    return {"ttl_seconds": server.ttl_seconds}


@bp.get("/")
def live():
    if current_org() != DEFAULT_ORG:  # the server's own machine belongs to `default`
        return redirect("/fleet", code=302)
    return render_template("live.html", page="live", **_common())


@bp.get("/history")
def history():
    if current_org() != DEFAULT_ORG:
        return redirect("/fleet", code=302)
    return render_template("history.html", page="history", **_common())


@bp.get("/fleet")
def fleet():
    return render_template("fleet.html", page="fleet", **_common())


@bp.get("/fleet/<machine_id>")
def machine(machine_id: str):
    if get_fleet().storage.machine(machine_id, org=current_org()) is None:
        abort(404)
    return render_template("machine.html", page="machine", machine_id=machine_id, **_common())


@bp.get("/favicon.ico")
@requires(OPEN)
def favicon():
    """Browsers ask for /favicon.ico whatever the page says; answer with the SVG icon."""
    return current_app.send_static_file("favicon.svg")
