"""The users of an organisation, for its admins (and server admins, and the ACTION_TOKEN holder).

- `GET /api/orgs/<org>/users` -> `{"users": [{"username","role","server_admin","totp","created_at"}]}`
- `POST /api/orgs/<org>/users` `{"username","password","role"}` adds a new user;
  `{"username","role"}` gives an existing user a role in the organisation -> 201 `{"user": ...}`
- `PATCH /api/orgs/<org>/users/<username>` `{"role"}` -> `{"user": ...}`
- `DELETE /api/orgs/<org>/users/<username>` -> 204: out of the organisation; a user left in none
  (and not a server admin) is removed.

Every change raises the user's epoch, so their sessions end at once on every worker; the last
admin of an organisation cannot be demoted or removed (it would have nobody to manage it). An
organisation the caller has no part in answers 404, like another organisation's machine. Every
attempt is audited in the organisation of the path.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from dashfleet_core.accounts.orgs import valid_org_id
from dashfleet_core.accounts.users import check_role

from ..access import ADMIN, SELF, check_csrf, current_org, principal, require, requires
from ..account_audit import audited_in
from ..app import get_fleet
from ..auth import ApiError
from ..sessions_web import account_errors, json_object

bp = Blueprint("org_users", __name__)


def _admin_of(org: str, body=None):
    """The caller, if it is an admin of `org`: 401 without a credential, 404 for an organisation it
    has no part in, 403 without the admin scope there."""
    who = principal(body)
    if who is None or who.actor == "public":
        require(ADMIN, body)  # raises the 401 with its usual sentence
    accounts = get_fleet().accounts
    if not valid_org_id(org) or not accounts.orgs.exists(org) or not who.member_of(org):
        raise ApiError(404, f"no organisation {org[:64]!r} among yours; GET /api/session lists them")
    if not who.can(ADMIN, org):
        raise ApiError(403, f"this needs the admin role (or an admin key) in organisation {org!r}")
    check_csrf(who)
    return who


def _audit_org() -> str:
    """Where an attempt is recorded until the caller is known to be part of the path's organisation:
    the caller's own (never an organisation the caller may not see)."""
    try:
        principal()  # resolve who is asking (a wrong credential is refused inside the attempt)
    except ApiError:
        pass
    return current_org()


def _user_json(user, org: str) -> dict:
    return {"username": user.username, "role": user.roles.get(org), "server_admin": user.server_admin,
            "totp": get_fleet().accounts.second_factor.enabled(user),
            "created_at": user.created_at.isoformat() if user.created_at else None}


def _keep_an_admin(org: str, username: str) -> None:
    """409 if `username` is the organisation's only admin."""
    admins = [u.username for u in get_fleet().accounts.users.list(org) if u.roles.get(org) == "admin"]
    if admins == [username]:
        raise ApiError(409, f"{username!r} is the only admin of organisation {org!r}: make another user "
                            "admin first")


def _member(org: str, username: str):
    user = get_fleet().accounts.users.get(username)
    if user is None or org not in user.roles:
        raise ApiError(404, f"no user {username[:64]!r} in organisation {org!r}; GET /api/orgs/{org}/users "
                            "lists them")
    return user


@bp.get("/api/orgs/<org>/users")
@requires(SELF)
def users_list(org: str):
    _admin_of(org)
    users = get_fleet().accounts.users.list(org)
    return jsonify({"users": [_user_json(u, org) for u in users]})


@bp.post("/api/orgs/<org>/users")
@requires(SELF)
def users_add(org: str):
    with audited_in(_audit_org(), "user.add") as attempt:
        body = json_object('send {"username", "password", "role"} for a new user, or {"username", "role"} '
                           "to give an existing user a role here")
        attempt.params = {"username": str(body.get("username"))[:64], "role": str(body.get("role"))[:20]}
        who = _admin_of(org, body)
        attempt.actor, attempt.org = who.actor, org
        accounts = get_fleet().accounts
        with account_errors():
            role = check_role(body.get("role"))
            if "password" in body:
                attempt.action = "user.add"
                user = accounts.users.add(body.get("username"), body.get("password"), org=org, role=role)
            else:
                existing = accounts.users.get(str(body.get("username", "")))
                if existing is None:
                    raise ApiError(404, f"no user {str(body.get('username'))[:64]!r}: to add a new one, send "
                                        "a password too", fields=["username"])
                if org in existing.roles:
                    raise ApiError(409, f"{existing.username!r} is already in {org!r} as {existing.roles[org]}: "
                                        f"PATCH /api/orgs/{org}/users/{existing.username} changes the role")
                user = accounts.users.set_role(existing.username, org, role)
    return jsonify({"user": _user_json(user, org)}), 201


@bp.patch("/api/orgs/<org>/users/<username>")
@requires(SELF)
def users_patch(org: str, username: str):
    with audited_in(_audit_org(), "user.role") as attempt:
        attempt.params = {"username": username[:64]}
        body = json_object('send {"role": "viewer" | "operator" | "admin"}')
        who = _admin_of(org, body)
        attempt.actor, attempt.org = who.actor, org
        with account_errors():
            role = check_role(body.get("role"))
        attempt.params["role"] = role
        user = _member(org, username)
        if role != "admin":
            _keep_an_admin(org, user.username)
        with account_errors():
            user = get_fleet().accounts.users.set_role(user.username, org, role)
    return jsonify({"user": _user_json(user, org)})


@bp.delete("/api/orgs/<org>/users/<username>")
@requires(SELF)
def users_remove(org: str, username: str):
    with audited_in(_audit_org(), "user.remove") as attempt:
        attempt.params = {"username": username[:64]}
        who = _admin_of(org)
        attempt.actor, attempt.org = who.actor, org
        user = _member(org, username)
        _keep_an_admin(org, user.username)
        accounts = get_fleet().accounts
        with account_errors():
            user = accounts.users.set_role(user.username, org, None)
        if not user.roles and not user.server_admin:
            accounts.users.remove(user.username)
            attempt.params["removed"] = True
        accounts.sessions.delete_user(user.username)
    return "", 204

