"""`POST /api/action` runs an action from the catalogue on the server's machine, `GET /api/actions`
lists the catalogue and `GET /api/audit` shows the organisation's audit rows. Running an action on
the server's machine needs the server operator (ACTION_TOKEN or a server admin's login); the
catalogue and the audit need scope `operate`.

All checks and the audit row are `dashfleet_core.actions.ActionService`'s: the token check runs
inside it, first, so refused calls, bad tokens included, are audited like the rest; wrong tokens
are throttled per client address (`..auth`), and only authorised calls count against `[actions]
rate_limit_per_minute`. The caller is `api:<client address>` (`..client_address`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from dashfleet_core.actions import ActionRefused, ActionService
from dashfleet_core.echo import clip_all

from ..access import OPERATE, SELF, SERVER, current_org, require, requires
from ..auth import ApiError
from ..client_address import client_address
from ..errors import HINTS
from ..jsonbody import parse_json

bp = Blueprint("actions", __name__)

BODY_FIELDS = {"action", "params", "token"}
SERVICE_KEY = "dashfleet.actions"


def _fleet():
    return current_app.extensions["dashfleet"]


@bp.record_once
def _build_service(state) -> None:
    """Build the service with the app: actions read their `[plugins.<name>]` tables when they are
    registered, so a bad table stops the server at start-up (ConfigError, exit 2) instead of
    failing the first `POST /api/action`."""
    fleet = state.app.extensions["dashfleet"]
    state.app.extensions[SERVICE_KEY] = ActionService(fleet.settings, fleet.pm, fleet.storage)


def _service() -> ActionService:
    """One service per app, built with it from the fleet's settings, plugins and storage (again
    if the fleet's storage was replaced)."""
    fleet = _fleet()
    service = current_app.extensions.get(SERVICE_KEY)
    if service is None or service.storage is not fleet.storage:
        service = ActionService(fleet.settings, fleet.pm, fleet.storage)
        current_app.extensions[SERVICE_KEY] = service
    return service


def _parse_body() -> tuple[Any, ApiError | None]:
    """The body, or the problem with it; the problem is answered after the token check and
    audited with the attempt."""
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        return None, ApiError(413, HINTS[413])
    if not raw:
        return None, ApiError(400, 'the body is empty: send {"action": NAME, "params": {...}} as JSON')
    try:
        return parse_json(raw, 'send {"action": NAME, "params": {...}}'), None
    except ApiError as exc:
        return None, exc


@bp.post("/api/action")
@requires(SELF)
def post_action():
    service = _service()
    body, problem = _parse_body()
    def authorize() -> None:
        try:
            require(SERVER, body)
        except ApiError as exc:
            raise ActionRefused(exc.status, exc.message, **exc.extra) from None
        if problem:
            raise ActionRefused(problem.status, problem.message)
        if not isinstance(body, dict):
            raise ActionRefused(400, 'the body must be a JSON object: {"action": NAME, "params": {...}}')
        unknown = sorted(str(k) for k in body if k not in BODY_FIELDS)
        if unknown:
            hint = "; parameters such as dry_run go inside \"params\"" if "dry_run" in unknown else ""
            fields = clip_all(unknown)
            raise ActionRefused(422, f"unknown field(s) in the body: {', '.join(fields)}; it takes "
                                     f"action, params and token{hint}", fields=fields)
        if "action" not in body:
            raise ActionRefused(400, "missing field 'action': name the action to run; "
                                     "available actions: " + ", ".join(sorted(service.actions)),
                                available=sorted(service.actions))

    name = body.get("action") if isinstance(body, dict) else None
    params = body.get("params") if isinstance(body, dict) else None
    try:
        result = service.run(name, params, actor=f"api:{client_address()}", authorize=authorize)
    except ActionRefused as refused:
        response = jsonify(refused.to_json())
        response.status_code = refused.status
        if refused.status == 429 and "retry_after" in refused.extra:
            response.headers["Retry-After"] = str(refused.extra["retry_after"])
        return response
    return jsonify(result.model_dump(mode="json"))


@bp.get("/api/actions")
@requires(OPERATE)
def get_actions():
    """The catalogue: name, description, platforms, parameters, allowed, supported."""
    return jsonify([entry.to_dict() for entry in _service().catalogue()])


@bp.get("/api/audit")
@requires(OPERATE)
def get_audit():
    raw = request.args.get("limit", "100")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise ApiError(400, f"limit must be a whole number from 1 to 1000, got {raw[:20]!r}")
    rows = _fleet().storage.audit(org=current_org(), limit=limit)
    return jsonify([row.model_dump(mode="json") for row in rows])
