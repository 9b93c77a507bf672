"""One-time agent download links (the seed's feature, made safe).

- `POST /api/agent/link` (an organisation admin; the operator may name `"org"`) `{"ttl": 3600,
  "path": "fleet_agent.exe", "enroll"?: false}` -> 201 `{"link": "/download/agent/<token>", "url",
  "expires_at", "id", ...}`; the token is shown this once.
- `GET /api/agent/links` -> `{"links": [...]}`: the organisation's live links (never a token).
- `DELETE /api/agent/links/<id>` -> 204: the link answers 410 from then on.
- `GET /download/agent/<token>` (open): the first request gets the file (an enrolling link: a zip
  of the file and `dashfleet-agent.toml`, with a `report` key minted now); later requests, expired
  and revoked links 410; an unknown token 404. `HEAD` says which without using the link.

Creation, revocation and every download of a known link (refused ones too) leave an audit row in
the link's organisation, with the client's address.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any, Iterator

from flask import Blueprint, jsonify, request, send_file

from dashfleet_core.accounts import AccountError, Principal
from dashfleet_core.accounts.enrolment import enrolment_zip
from dashfleet_core.accounts.links import AgentLink, link_id_of
from dashfleet_core.accounts.orgs import valid_org_id
from dashfleet_core.echo import clip
from dashfleet_core.models import AuditEntry

from ..access import ADMIN, OPEN, SELF, check_csrf, current_org, principal, require, requires
from ..app import get_fleet
from ..audit import audited
from ..auth import ApiError
from ..client_address import client_address
from ..jsonbody import parse_json

log = logging.getLogger(__name__)

bp = Blueprint("links", __name__)

FIELDS = ("ttl", "path", "org", "enroll", "token")
DEFAULT_TTL = 3600
EXAMPLE = '{"ttl": 3600, "path": "fleet_agent.exe"}'


@contextmanager
def _answers() -> Iterator[None]:
    """An AccountError from the core becomes the API's JSON error."""
    try:
        yield
    except AccountError as exc:
        raise ApiError(exc.status, exc.message, **exc.extra) from None


@bp.post("/api/agent/link")
@requires(SELF)  # an admin of the organisation the body names: checked below, inside the audit
def create_link():
    links = get_fleet().accounts.links
    with audited("agent_link.create") as attempt:
        body = _body()
        attempt.params.update(_shown(body))
        who, org = _admin(body)
        attempt.actor, attempt.org = who.actor, org
        with _answers():
            token, link = links.create(org, body.get("path"), body.get("ttl", DEFAULT_TTL),
                                       enroll=body.get("enroll", False), by=who.actor)
        attempt.params["link"] = link.id
    return jsonify({"link": links.address(token), "url": links.url(token), "id": link.id, "org": link.org,
                    "path": link.path, "enroll": link.enroll, "expires_at": link.expires_at.isoformat()}), 201


@bp.get("/api/agent/links")
@requires(ADMIN)
def list_links():
    links = get_fleet().accounts.links.list(current_org())
    return jsonify({"links": [link.to_json() for link in links]})


@bp.delete("/api/agent/links/<link_id>")
@requires(SELF)
def revoke_link(link_id: str):
    with audited("agent_link.revoke") as attempt:
        attempt.params["link"] = clip(link_id, 64)
        who = require(ADMIN)
        attempt.actor, attempt.org = who.actor, who.org
        with _answers():
            get_fleet().accounts.links.revoke(who.org, link_id, by=who.actor)
    return "", 204


@bp.get("/download/agent/<token>")
@requires(OPEN)  # the token is the credential
def download(token: str):
    fleet = get_fleet()
    links = fleet.accounts.links
    try:
        if request.method == "HEAD":  # link previews must not use the link up
            links.peek(token)
            return "", 200
        link = links.peek(token)
        file, size = _open(link)
        try:
            links.claim(token)
        except AccountError:
            file.close()
            raise
    except AccountError as exc:
        if exc.status == 410 and request.method == "GET":  # a known link: its organisation hears of it
            known = links.get(link_id_of(token) or "")
            if known is not None:
                _audit_download(known, "refused", {"status": 410, "error": exc.message})
        raise ApiError(exc.status, exc.message) from None
    details: dict[str, Any] = {}
    try:
        if link.enroll:
            with file:
                file, size, key = enrolment_zip(link, file, fleet.accounts.keys, fleet.settings.server.public_url,
                                                by=f"link:{link.id}")
            details["key"] = key.id
            name, mimetype = f"{PurePosixPath(link.path).stem}-{link.org}.zip", "application/zip"
        else:
            name, mimetype = PurePosixPath(link.path).name, "application/octet-stream"
    except Exception:
        _audit_download(link, "error", {"error": "the enrolment zip could not be built"})
        raise
    _audit_download(link, "ok", details)
    response = send_file(file, mimetype=mimetype, as_attachment=True, download_name=name, conditional=False,
                         etag=False, max_age=None)
    response.content_length = size
    response.headers["Cache-Control"] = "no-store"
    return response


def _open(link: AgentLink):
    """The link's file, checked again now (it may have been removed or replaced by a symlink)."""
    try:
        return get_fleet().accounts.links.open_download(link)
    except AccountError as exc:
        log.warning("agent link %s: its file cannot be handed out: %s", link.id, exc.message)
        _audit_download(link, "refused", {"status": 404, "error": exc.message})
        raise AccountError(404, "the file of this download link is no longer available on the server; "
                                "ask for a new link") from None


def _audit_download(link: AgentLink, outcome: str, details: dict[str, Any]) -> None:
    try:
        get_fleet().storage.add_audit(AuditEntry(
            org=link.org, actor=f"link:{link.id}", action="agent_link.download", outcome=outcome,
            params={"link": link.id, "path": link.path, "enroll": link.enroll},
            details={"client": client_address(), **details}))
    except Exception:  # the answer stands; the log says the row is missing
        log.exception("could not write the audit row of a download of agent link %s", link.id)


def _admin(body: dict) -> tuple[Principal, str]:
    """The caller, if an admin of the organisation the body names (default: the request's)."""
    named = body.get("org")
    if named is None:
        who = require(ADMIN, body)
        return who, who.org
    if not isinstance(named, str) or not valid_org_id(named):
        raise ApiError(422, f"org {clip(str(named), 64)!r} is not an organisation id (lower-case letters, digits "
                            "and dashes); GET /api/orgs lists them", fields=["org"])
    found = principal(body)
    if found is None or found.actor == "public":
        require(ADMIN, body)  # raises the 401 that says which credential to send
    if not found.can(ADMIN, named):
        raise ApiError(403, f"this credential lacks the 'admin' scope in organisation {named!r}; use a key "
                            "or a login with it")
    check_csrf(found)
    with _answers():
        get_fleet().accounts.orgs.require(named)
    return found.in_org(named), named


def _body() -> dict:
    raw = request.get_data(cache=True)
    if not raw:
        raise ApiError(400, f"send a JSON body such as {EXAMPLE}")
    body = parse_json(raw, f"send {EXAMPLE}")
    if not isinstance(body, dict):
        raise ApiError(400, f"the body must be a JSON object, e.g. {EXAMPLE}")
    unknown = [name for name in body if name not in FIELDS]
    if unknown:
        raise ApiError(422, f"unknown field {clip(unknown[0], 40)!r}: the body takes {', '.join(FIELDS[:4])}",
                       fields=[clip(name, 40) for name in unknown[:10]])
    return body


def _shown(body: dict) -> dict:
    """The body as the audit row keeps it: known fields only, never the token, text clipped."""
    shown: dict[str, Any] = {}
    for name in ("path", "org"):
        if body.get(name) is not None:
            shown[name] = clip(body[name], 200)
    for name in ("ttl", "enroll"):
        value = body.get(name)
        if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 10**15):
            shown[name] = value
    return shown
