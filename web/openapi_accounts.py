"""The session and organisation-users part of the OpenAPI document (see web/openapi.py)."""

from __future__ import annotations

from typing import Any

from dashfleet_core.accounts.orgs import ORG_ID_PATTERN
from dashfleet_core.accounts.users import USERNAME_PATTERN


def account_paths() -> dict[str, Any]:
    from .openapi import READ_CREDENTIALS, _error, _json, _ref, _throttled

    session_only = [{"session": []}]
    no_session = _error("a bearer credential (key or token) has no session to change: log in at /login; "
                        "or a missing or wrong X-CSRF-Token")
    bad_body = _error("the body is not a JSON object")
    org = {"name": "org", "in": "path", "required": True, "schema": {"type": "string", "pattern": ORG_ID_PATTERN}}
    username = {"name": "username", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": USERNAME_PATTERN}}
    role = {"type": "string", "enum": ["viewer", "operator", "admin"]}

    def body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": properties, "required": required}}}}

    not_yours = _error("no organisation of that id among the caller's (like another organisation's machine)")
    return {
        "/api/session": {"get": {
            "operationId": "getSession", "summary": "Who is asking: user, organisations and role, CSRF token",
            "security": READ_CREDENTIALS,
            "responses": {"200": _json(_ref("SessionDocument"), "the caller")}}},
        "/api/session/org": {"post": {
            "operationId": "switchOrg", "summary": "Make another of the user's organisations the current one",
            "security": session_only, "requestBody": body({"org": {"type": "string"}}, ["org"]),
            "responses": {"200": _json(_ref("SessionDocument"), "switched"), "400": bad_body,
                          "403": no_session, "404": _error("not one of the user's organisations")}}},
        "/api/session/password": {"post": {
            "operationId": "changePassword",
            "summary": "Change the user's password: every session of theirs ends, this browser gets a new one",
            "security": session_only,
            "requestBody": body({"current": {"type": "string"}, "new": {"type": "string"}}, ["current", "new"]),
            "responses": {"200": _json(_ref("SessionDocument"), "changed (with the new session's CSRF token)"),
                          "400": bad_body, "403": no_session,
                          "422": _error("the current password is wrong, or the new one is refused by the "
                                        "policy (`fields` says which)"),
                          "429": _throttled()}}},
        "/api/session/totp": {
            "post": {"operationId": "beginTotp", "summary": "Start enrolling a second factor (TOTP)",
                     "security": session_only,
                     "responses": {"200": _json(_ref("TotpBegun"), "the secret, its URI and QR code"),
                                   "400": bad_body, "403": no_session,
                                   "409": _error("a second factor is set up already")}},
            "delete": {"operationId": "removeTotp", "summary": "Remove the second factor (needs the password)",
                       "security": session_only,
                       "requestBody": body({"password": {"type": "string"}}, ["password"]),
                       "responses": {"204": {"description": "removed"}, "400": bad_body, "403": no_session,
                                     "409": _error("no second factor, or [server] require_2fa requires it"),
                                     "422": _error("the password is wrong"), "429": _throttled()}}},
        "/api/session/totp/confirm": {"post": {
            "operationId": "confirmTotp", "summary": "Finish enrolling with a code from the app",
            "security": session_only, "requestBody": body({"code": {"type": "string"}}, ["code"]),
            "responses": {"200": _json(_ref("RecoveryCodes"), "enrolled; the recovery codes, shown once"),
                          "400": bad_body, "403": no_session, "409": _error("no enrolment in progress"),
                          "422": _error("not the code the app shows now")}}},
        "/api/orgs/{org}/users": {
            "get": {"operationId": "listOrgUsers", "summary": "The users of an organisation (its admins)",
                    "parameters": [org],
                    "responses": {"200": _json(_ref("OrgUserList"), "the users"), "404": not_yours}},
            "post": {"operationId": "addOrgUser",
                     "summary": "Add a new user (with a password) or give an existing user a role here",
                     "parameters": [org],
                     "requestBody": body({"username": {"type": "string"}, "password": {"type": "string"},
                                          "role": role}, ["username", "role"]),
                     "responses": {"201": _json(_ref("OrgUserOne"), "added"), "400": bad_body,
                                   "404": _error("no such organisation among the caller's, or (without a "
                                                 "password) no such user"),
                                   "409": _error("the username is taken, or the user is already a member"),
                                   "422": _error("bad username, role or password (`fields` says which)")}}},
        "/api/orgs/{org}/users/{username}": {
            "patch": {"operationId": "setOrgUserRole", "summary": "Change a member's role (their sessions end)",
                      "parameters": [org, username], "requestBody": body({"role": role}, ["role"]),
                      "responses": {"200": _json(_ref("OrgUserOne"), "changed"), "400": bad_body,
                                    "404": _error("no such organisation or member"),
                                    "409": _error("the organisation's only admin cannot be demoted"),
                                    "422": _error("unknown role")}},
            "delete": {"operationId": "removeOrgUser",
                       "summary": "Take a user out of the organisation (removed when in none left)",
                       "parameters": [org, username],
                       "responses": {"204": {"description": "removed; their sessions end"},
                                     "404": _error("no such organisation or member"),
                                     "409": _error("the organisation's only admin cannot be removed")}}},
    }
