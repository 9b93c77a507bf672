"""The OpenAPI 3.1 document of the API, generated from the pydantic models (pydantic 2 emits JSON
Schema 2020-12, which is OpenAPI 3.1's dialect)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from dashfleet_core import __version__
from dashfleet_core.accounts.orgs import ORG_ID_PATTERN
from dashfleet_core.accounts.users import USERNAME_PATTERN
from dashfleet_core.models import (MAX_FACT_TEXT, MAX_FACTS, MAX_METRICS, MAX_NAME, METRIC_NAME_PATTERN,
                                   ActionResult, AuditEntry, Event, Report)

from . import schemas as s

REF = "#/components/schemas/{model}"
MODELS = [
    (Report, "validation"), (s.ErrorBody, "serialization"), (s.ReportAccepted, "serialization"),
    (s.BatchAccepted, "serialization"), (s.FleetList, "serialization"), (s.FleetSummary, "serialization"), (s.MachineDetail, "serialization"),
    (s.MachineHistory, "serialization"), (s.LocalStats, "serialization"), (s.LocalStatus, "serialization"),
    (s.LocalHistory, "serialization"), (s.Healthz, "serialization"), (Event, "serialization"),
    (ActionResult, "serialization"), (AuditEntry, "serialization"), (s.ActionCatalogueEntry, "serialization"),
    (s.MaintenanceStarted, "serialization"), (s.MaintenanceEnded, "serialization"),
    (s.MaintenanceWindows, "serialization"),
]
MODELS += [(s.OrgCreated, "serialization"), (s.OrgList, "serialization"),  # organisations and keys
           (s.KeyCreated, "serialization"), (s.KeyList, "serialization")]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("ErrorBody"), description)


def _throttled() -> dict[str, Any]:
    """429 of every token-checked endpoint: too many wrong tokens from this client address."""
    return {**_error("too many refused tokens from this client address ([server] failed_auth_per_minute); "
                     "retry after Retry-After seconds"),
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


MACHINE_ID = {"name": "machine_id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"}}
TIME = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
        "description": "ISO-8601 (no zone = UTC) or Unix seconds"}


def _describe_report_names(report: dict[str, Any]) -> None:
    """The names of metrics and facts are checked by a validator, which JSON Schema cannot see:
    say it in the document too, so clients (and schemathesis) know the rule."""
    names = {"type": "string", "pattern": METRIC_NAME_PATTERN, "maxLength": MAX_NAME}
    props = report["properties"]
    props["metrics"].update(propertyNames=names, maxProperties=MAX_METRICS)
    props["facts"].update(propertyNames=names, maxProperties=MAX_FACTS)
    props["facts"]["additionalProperties"] = {"type": "string", "maxLength": MAX_FACT_TEXT}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    from . import account_schemas

    _, top = models_json_schema(MODELS + account_schemas.MODELS, ref_template=REF)
    schemas = top.get("$defs", {})
    _describe_report_names(schemas["Report"])
    not_found = _error("no such machine")
    bad = _error("a query parameter cannot be read")
    paths = {
        "/api/fleet/report": {"post": {
            "operationId": "postReport",
            "summary": "Deliver one report or a batch (an agent's spool)",
            "security": [{"fleetToken": []}],
            "parameters": [{"name": "X-DashFleet-Machine-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{32,128}$"},
                            "description": "the agent's own key: bound to the machine on first sight, then "
                                           "required for its reports"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [_ref("Report"), {"type": "array", "items": _ref("Report"), "minItems": 1,
                                           "maxItems": 1000}]}}}},
            "responses": {
                "201": _json(_ref("ReportAccepted"), "stored"),
                "200": _json({"oneOf": [_ref("ReportAccepted"), _ref("BatchAccepted")]},
                             "a duplicate (already stored), or a batch with one result per item"),
                "400": _error("the body is not JSON, or nests deeper than 64 levels"),
                "401": _error("missing or wrong FLEET_TOKEN"),
                "403": _error("the machine is bound to a machine key (X-DashFleet-Machine-Key) and the "
                              "request carries none or another"),
                "409": _error("a single report whose seq is already stored with other content; "
                              "`last_seq` is the machine's highest stored seq"),
                "413": _error("the body is over [server] max_body_bytes"),
                "429": _throttled(),
                "422": _error("the report does not match the schema, or its collected_at is too far "
                              "ahead of the server's clock or older than the retention window; "
                              "`fields` names them"),
                "503": _error("storage unavailable; retry after Retry-After seconds"),
            }}},
        "/api/fleet": {"get": {
            "operationId": "listFleet", "summary": "Every machine with its health, `expired` and maintenance",
            "responses": {"200": _json(_ref("FleetList"), "the fleet")}}},
        "/api/summary": {"get": {
            "operationId": "getFleetSummary",
            "summary": "How many machines are ok, warn, critical and silent, and the worst status present",
            "responses": {"200": _json(_ref("FleetSummary"), "the counts (pages show them in the title and favicon)")}}},
        "/api/fleet/{machine_id}": {"get": {
            "operationId": "getMachine", "summary": "One machine: facts, findings, every metric",
            "parameters": [MACHINE_ID],
            "responses": {"200": _json(_ref("MachineDetail"), "the machine"), "404": not_found}}},
        "/api/fleet/{machine_id}/history": {"get": {
            "operationId": "getMachineHistory",
            "summary": "A machine's metrics over [since, until), downsampled to at most `points` buckets",
            "parameters": [MACHINE_ID,
                           _query("since", TIME, "start (default: until - 1 hour)"),
                           _query("until", TIME, "end (default: now)"),
                           _query("points", {"type": "integer"},
                                  "buckets (default 300); clamped to 1..1000, never an error"),
                           _query("metrics", {"type": "string"}, "comma-separated metric names (default: all)")],
            "responses": {"200": _json(_ref("MachineHistory"), "buckets, oldest first"),
                          "400": bad, "404": not_found}}},
        "/api/stats": {"get": {
            "operationId": "getStats", "summary": "Live metrics of the server's own machine, with its current alerts",
            "responses": {"200": _json(_ref("LocalStats"), "live metrics and `alerts` (the current "
                                                           "findings, as the original dashboard sent)")}}},
        "/api/status": {"get": {
            "operationId": "getStatus", "summary": "Live metrics of the server's own machine, scored",
            "responses": {"200": _json(_ref("LocalStatus"), "metrics, score and ok|warn|critical")}}},
        "/api/history": {"get": {
            "operationId": "getHistory", "summary": "Stored samples of the server's own machine, oldest first",
            "parameters": [_query("limit", {"type": "integer"},
                                  "rows (default 300); clamped to 1..500, never an error")],
            "responses": {"200": _json(_ref("LocalHistory"), "samples"), "400": bad}}},
        "/api/openapi.json": {"get": {
            "operationId": "getOpenApi", "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/healthz": {"get": {
            "operationId": "healthz", "summary": "Liveness and storage check",
            "responses": {"200": _json(_ref("Healthz"), "up"), "503": _error("storage unavailable")}}},
        "/metrics": {"get": {
            "operationId": "metrics", "summary": "Prometheus exposition of the fleet",
            "responses": {"200": {"description": "Prometheus text format (or OpenMetrics on request)",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }
    paths.update(_action_paths())
    paths.update(_alerting_paths())
    paths.update(_link_paths())
    paths.update(_org_paths())
    paths.update(_account_paths())
    _with_credentials(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "DashFleet API", "version": __version__,
                 "description": "Agents report to POST /api/fleet/report with a bearer FLEET_TOKEN or an "
                                "organisation key of scope report. Every other endpoint but /healthz needs "
                                "a credential for one organisation: a key (scope read, operate or admin), "
                                "a dashboard session, or the server operator's ACTION_TOKEN (which names "
                                "the organisation with the X-DashFleet-Org header; default `default`). "
                                "A caller sees only its organisation: another's machine is a 404. "
                                "See docs/api.md, Authentication."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"fleetToken": {"type": "http", "scheme": "bearer",
                                               "description": "FLEET_TOKEN"},
                                "actionToken": {"type": "http", "scheme": "bearer",
                                                "description": "ACTION_TOKEN (or `token` in the JSON body)"},
                                "orgKey": {"type": "http", "scheme": "bearer",
                                           "description": "an organisation's API key (dfk_...), with the "
                                                          "scope the operation needs"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "dashfleet_session",
                                            "description": "a dashboard login; changes also need the "
                                                           "X-CSRF-Token header"}},
        },
    }


READ_CREDENTIALS = [{"orgKey": []}, {"session": []}, {"actionToken": []}]
OPERATE_CREDENTIALS = READ_CREDENTIALS  # a key or login with scope operate, or the operator
SERVER_CREDENTIALS = [{"actionToken": []}, {"session": []}]  # the operator, or a server admin's login
OPEN_PATHS = ("/healthz", "/download/agent/{token}")


def _with_credentials(paths: dict[str, Any]) -> None:
    """Every operation but the open ones needs a credential (`web/access.py`): say which, and the
    answers without one (401), with one that lacks the scope (403) or after too many wrong ones (429)."""
    for path, operations in paths.items():
        if path in OPEN_PATHS:
            continue
        for operation in operations.values():
            operation.setdefault("security", READ_CREDENTIALS)
            responses = operation["responses"]
            responses.setdefault("401", _error("no credential, or a wrong, revoked or expired one"))
            responses.setdefault("403", _error("the credential lacks the scope this needs"))
            responses.setdefault("404", _error("no such machine in the caller's organisation, or an "
                                               "X-DashFleet-Org that names no organisation"))
            responses.setdefault("429", _throttled())
# --- the session and the users of an organisation (web/blueprints/session_api.py, org_users.py) ---

def _account_paths() -> dict[str, Any]:
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


NO_ACTION_TOKEN = "no credential, or a wrong, revoked or expired one"
REFUSED = "the credential lacks the scope this needs (operate; running an action on the server: the operator)"


def _action_paths() -> dict[str, Any]:
    """web/blueprints/actions.py: run an action, the catalogue, the audit log."""
    body = {"type": "object", "additionalProperties": False, "required": ["action"], "properties": {
        "action": {"type": "string", "description": "a name from GET /api/actions"},
        "params": {"type": "object", "description": "the action's parameters (dry_run goes here)"},
        "token": {"type": "string", "description": "ACTION_TOKEN, for clients that cannot send a header"}}}
    return {
        "/api/action": {"post": {
            "operationId": "runAction",
            "summary": "Run an action from the catalogue on the server's machine (audited, rate limited)",
            "security": SERVER_CREDENTIALS,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": _json(_ref("ActionResult"), "the action ran, or (ok false) is not supported on "
                                                   "this platform or failed: see summary"),
                "400": _error("the body is not a JSON object, or names no known action "
                              "(`available` lists them)"),
                "401": _error(NO_ACTION_TOKEN),
                "403": _error(f"the action is not in [actions] allowed (`allowed` lists those that are), "
                              f"or {REFUSED}"),
                "409": _error("the same action is already running"),
                "422": _error("unknown body fields or invalid params; `fields` names them"),
                "413": _error("the body is over [server] max_body_bytes"),
                "429": {**_error("too many calls ([actions] rate_limit_per_minute), or too many refused "
                                 "tokens from this client address; retry after Retry-After seconds"),
                        "headers": {"Retry-After": {"schema": {"type": "integer"},
                                                    "description": "seconds to wait"}}},
            }}},
        "/api/actions": {"get": {
            "operationId": "listActions", "summary": "The action catalogue, with what is allowed and supported",
            "security": OPERATE_CREDENTIALS,
            "responses": {"200": _json({"type": "array", "items": _ref("ActionCatalogueEntry")}, "the catalogue"),
                          "401": _error(NO_ACTION_TOKEN), "403": _error(REFUSED), "429": _throttled()}}},
        "/api/audit": {"get": {
            "operationId": "listAudit", "summary": "The audit log of actions and refused calls, newest first",
            "security": OPERATE_CREDENTIALS,
            "parameters": [_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
                                  "rows (default 100); outside 1..1000 is a 400")],
            "responses": {"200": _json({"type": "array", "items": _ref("AuditEntry")}, "audit rows"),
                          "400": _error("limit is not a whole number from 1 to 1000"),
                          "401": _error(NO_ACTION_TOKEN), "403": _error(REFUSED), "429": _throttled()}}},
    }


MAINTENANCE_SCOPE = {"name": "machine_id", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": r"^(\*|[A-Za-z0-9][A-Za-z0-9._:@-]{0,127})$"},
                     "description": "a machine id, or * for the whole fleet"}


def _maintenance_ops(scope: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"type": "object", "properties": {
        "until": {"type": "string", "format": "date-time", "description": "end (ISO-8601, no zone = UTC)"},
        "minutes": {"type": "number", "exclusiveMinimum": 0, "maximum": 527040,
                    "description": "or: end this many minutes from now (at most 366 days)"},
        "reason": {"type": "string", "maxLength": 500},
        "by": {"type": "string", "maxLength": 500, "description": "a note; who acted is the credential"},
        "token": {"type": "string", "description": "ACTION_TOKEN, for clients that cannot send a header"}}}
    errors = {"401": _error(NO_ACTION_TOKEN), "403": _error(REFUSED), "429": _throttled()}
    return {
        "post": {
            "operationId": f"start{scope}Maintenance",
            "summary": "Open (or extend) a maintenance window: alerts are held until it ends "
                       "(give until or minutes, at most 366 days)",
            "security": OPERATE_CREDENTIALS, "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"201": _json(_ref("MaintenanceStarted"), "the window is stored"),
                          "400": _error("no JSON object, both or neither of until/minutes, a time in the past, "
                                        "or a bad machine id; `fields` names them"),
                          "422": _error("the window would last more than 366 days (527040 minutes)"),
                          **errors,
                          **({"404": _error("no machine of this id has reported to the caller's "
                                            "organisation")} if scope == "Machine" else {})}},
        "delete": {
            "operationId": f"end{scope}Maintenance",
            "summary": "End a stored maintenance window now (config windows end only by editing the config)",
            "security": OPERATE_CREDENTIALS, "parameters": parameters,
            "requestBody": {"required": False, "content": {"application/json": {"schema": body}}},
            "responses": {"200": _json(_ref("MaintenanceEnded"), "ended"),
                          "400": _error("a bad machine id or body"), **errors,
                          "404": _error("no stored window for it")}},
    }


def _alerting_paths() -> dict[str, Any]:
    """web/blueprints/alerts.py: a machine's events and maintenance windows."""
    return {
        "/api/fleet/{machine_id}/events": {"get": {
            "operationId": "getMachineEvents",
            "summary": "A machine's events (with the fleet-wide maintenance events), newest first",
            "parameters": [MAINTENANCE_SCOPE,
                           _query("limit", {"type": "integer"}, "events (default 100); clamped to 1..1000")],
            "responses": {"200": _json({"type": "object", "additionalProperties": False, "required": ["events"],
                                        "properties": {"events": {"type": "array", "items": _ref("Event")}}},
                                       "events, newest first"),
                          "400": _error("not a machine id, or limit is not an integer"),
                          "404": _error("no such machine")}}},
        "/api/fleet/{machine_id}/maintenance": _maintenance_ops("Machine", [MAINTENANCE_SCOPE]),
        "/api/fleet/{machine_id}/key": {"delete": {
            "operationId": "resetMachineKey",
            "summary": "Unbind the machine key of a machine (after a reinstall); its next key binds",
            "security": OPERATE_CREDENTIALS, "parameters": [MACHINE_ID],
            "responses": {"204": {"description": "the key was unbound (audited)"},
                          "400": _error("not a machine id"),
                          "401": _error(NO_ACTION_TOKEN), "403": _error(REFUSED),
                          "404": _error("no key is bound to that machine"), "429": _throttled()}}},
        "/api/maintenance": {
            "get": {"operationId": "listMaintenance",
                    "summary": "Every maintenance window in force, stored or from [[alerts.maintenance]]",
                    "responses": {"200": _json(_ref("MaintenanceWindows"), "windows in force")}},
            **_maintenance_ops("Fleet", []),
        },
    }


ADMIN_CREDENTIALS = READ_CREDENTIALS  # a key or login with scope admin, or the operator


def _link_paths() -> dict[str, Any]:
    """web/blueprints/links.py: one-time agent download links."""
    from dashfleet_core.accounts.links import MAX_PATH, MAX_TTL, MIN_TTL
    from dashfleet_core.accounts.orgs import ORG_ID_PATTERN

    text = {"type": "string"}
    when = {"type": "string", "format": "date-time"}
    link = {"type": "object", "additionalProperties": False,
            "required": ["id", "org", "path", "enroll", "created_at", "expires_at", "created_by"],
            "properties": {"id": text, "org": text, "path": text, "enroll": {"type": "boolean"},
                           "created_at": when, "expires_at": when,
                           "created_by": {"type": "string", "description": "the credential that made it"}}}
    created = {"type": "object", "additionalProperties": False,
               "required": ["link", "url", "id", "org", "path", "enroll", "expires_at"],
               "properties": {"link": {"type": "string", "description": "/download/agent/<token>; shown once"},
                              "url": {"type": ["string", "null"],
                                      "description": "the full link, when [server] public_url is set"},
                              "id": text, "org": text, "path": text, "enroll": {"type": "boolean"},
                              "expires_at": when}}
    body = {"type": "object", "additionalProperties": False, "required": ["path"], "properties": {
        "path": {"type": "string", "minLength": 1, "maxLength": MAX_PATH,
                 "description": "a file in [server] downloads_dir (a leading dist/ is dropped)"},
        "ttl": {"type": "integer", "minimum": MIN_TTL, "maximum": MAX_TTL, "description": "seconds (default 3600)"},
        "org": {"type": "string", "pattern": ORG_ID_PATTERN,
                "description": "the organisation (default: the request's); another than the caller's own "
                               "needs the operator or an admin of it"},
        "enroll": {"type": "boolean", "description": "hand out a zip with dashfleet-agent.toml (server address "
                                                     "and a report key); needs [server] public_url"},
        "token": {"type": "string", "description": "ACTION_TOKEN, for clients that cannot send a header"}}}
    return {
        "/api/agent/link": {"post": {
            "operationId": "createAgentLink",
            "summary": "A one-time download link for an agent file (audited)",
            "security": ADMIN_CREDENTIALS,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "201": _json(created, "the link; its token is shown this once"),
                "400": _error("the body is not a JSON object, or the path leaves [server] downloads_dir "
                              "(.., absolute, a symlink out)"),
                "404": _error("no such file in [server] downloads_dir, or no such organisation"),
                "413": _error("the body is over [server] max_body_bytes"),
                "422": _error("ttl outside 60..604800, a bad field, or enroll without [server] public_url; "
                              "`fields` names them"),
            }}},
        "/api/agent/links": {"get": {
            "operationId": "listAgentLinks", "summary": "The organisation's live links (never their tokens)",
            "security": ADMIN_CREDENTIALS,
            "responses": {"200": _json({"type": "object", "additionalProperties": False, "required": ["links"],
                                        "properties": {"links": {"type": "array", "items": link}}},
                                       "live links, oldest first")}}},
        "/api/agent/links/{link_id}": {"delete": {
            "operationId": "revokeAgentLink", "summary": "Revoke a live link: it answers 410 from now on (audited)",
            "security": ADMIN_CREDENTIALS,
            "parameters": [{"name": "link_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"204": {"description": "revoked"},
                          "404": _error("no live link of that id in the organisation")}}},
        "/download/agent/{token}": {"get": {
            "operationId": "downloadAgent",
            "summary": "Use a one-time link: the file (an enrolling link: a zip with dashfleet-agent.toml)",
            "security": [],
            "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "the file, as an attachment (the link is used now)",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                                    "application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                "404": _error("no such link, or its file is no longer on the server"),
                "410": _error("the link was used already, revoked, or expired"),
            }}},
    }


# --- organisations and API keys (web/blueprints/orgs.py) ------------------------------------------

ORG_ID = {"name": "org", "in": "path", "required": True, "description": "an organisation id (GET /api/orgs)",
          "schema": {"type": "string", "pattern": r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"}}
KEY_ID = {"name": "key_id", "in": "path", "required": True, "description": "a key's public id",
          "schema": {"type": "string", "pattern": r"^[0-9a-f]{12}$"}}
SCOPE = {"type": "string", "enum": ["report", "read", "operate", "admin"]}
TOKEN_FIELD = {"type": "string", "description": "the credential, for clients that cannot send a header"}
NO_ORG = "no organisation of that id that the credential belongs to (another organisation's is a 404 too)"


def _org_paths() -> dict[str, Any]:
    org_body = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
        "name": {"type": "string", "maxLength": 100, "description": "display name; the id is its slug"},
        "token": TOKEN_FIELD}}
    key_body = {"type": "object", "additionalProperties": False, "required": ["scopes"], "properties": {
        "name": {"type": "string", "description": "a label (at most 100 characters are kept)"},
        "scopes": {"type": "array", "items": SCOPE, "minItems": 1,
                   "description": "admin implies every other scope; operate implies read"},
        "expires_at": {"type": ["string", "null"],
                       "description": "ISO-8601 time in the future, or a duration such as 90d, 12h, 30m"},
        "token": TOKEN_FIELD}}
    admin_errors = {"401": _error(NO_ACTION_TOKEN),
                    "403": _error("the credential lacks scope admin in this organisation, or a login's "
                                  "change lacks the CSRF token"),
                    "404": _error(NO_ORG), "429": _throttled()}
    bad_body = _error("no body, not JSON, or not a JSON object")
    return {
        "/api/orgs": {
            "post": {
                "operationId": "createOrg",
                "summary": "Create an organisation and its first key (scope admin), shown this once",
                "security": SERVER_CREDENTIALS,
                "requestBody": {"required": True, "content": {"application/json": {"schema": org_body}}},
                "responses": {"201": _json(_ref("OrgCreated"), "created; api_key is never shown again"),
                              "400": bad_body, "401": _error(NO_ACTION_TOKEN),
                              "403": _error("the credential is not the server operator's (ACTION_TOKEN or a "
                                            "server admin's login)"),
                              "409": _error("an organisation with that id exists already"),
                              "413": _error("the body is over [server] max_body_bytes"),
                              "422": _error("no usable name (empty, no letter or digit, over 100 characters) "
                                            "or unknown fields; `fields` names them"),
                              "429": _throttled()}},
            "get": {
                "operationId": "listOrgs",
                "summary": "The organisations the caller may act in (all of them for the server operator)",
                "security": READ_CREDENTIALS,
                "responses": {"200": _json(_ref("OrgList"), "organisations, `default` first"),
                              "401": _error(NO_ACTION_TOKEN), "429": _throttled()}}},
        "/api/orgs/{org}/keys": {
            "post": {
                "operationId": "createKey",
                "summary": "Create an API key of the organisation; its secret is shown this once",
                "parameters": [ORG_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": key_body}}},
                "responses": {"201": _json(_ref("KeyCreated"), "created (audited, without the secret)"),
                              "400": bad_body,
                              "413": _error("the body is over [server] max_body_bytes"),
                              "422": _error("scopes not a non-empty list of report, read, operate, admin; "
                                            "expires_at not a future time or a duration; unknown fields"),
                              **admin_errors}},
            "get": {
                "operationId": "listKeys",
                "summary": "The organisation's keys: id, name, scopes, created, last used, expiry (never a secret)",
                "parameters": [ORG_ID],
                "responses": {"200": _json(_ref("KeyList"), "keys, oldest first"), **admin_errors}}},
        "/api/orgs/{org}/keys/{key_id}": {"delete": {
            "operationId": "revokeKey",
            "summary": "Revoke a key: the next request with it is refused, on every worker and server",
            "parameters": [ORG_ID, KEY_ID],
            "responses": {"204": {"description": "revoked (audited)"},
                          **admin_errors,
                          "404": _error(f"no such key in this organisation, or {NO_ORG}")}}},
    }
