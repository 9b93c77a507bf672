"""Organisation isolation, as a matrix: two organisations, Aardvark and Bumblebee, each with
machines, history, events (status changes, silence, maintenance), audit rows, maintenance windows
and a bound machine key. For every route of the app (every path of `/api/openapi.json` and every
rule of the url_map, enumerated, so a new endpoint cannot escape) and every credential of one
organisation (read/operate/admin/report keys, viewer/operator/admin sessions, a server admin's
session in that organisation, the ACTION_TOKEN naming it), nothing of the other ever appears in an
answer, the other's machine paths answer 404, and changes aimed at the other's machines are
refused with 404 and change nothing of it. Both ways round.

Everything of an organisation carries its marker ("aard" or "bumble": machine ids, hostnames,
reasons, key and user names, the organisation's id), so a leak is a substring search. A route this
test does not know how to call fails it: teach it below (`PARAM_VALUES`, `MUTATIONS`,
`NOT_ORG_DATA`).

Real parts: a threaded server on 127.0.0.1, a real SQLite file, requests.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

import pytest
import requests

from dashfleet_core.accounts.principal import expand_scopes, scopes_of_role
from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import utcnow
from dashfleet_web.access import LEVEL_ATTR, OPEN, SERVER
from dashfleet_web.app import create_app

FLEET_TOKEN = "fleet-token-of-the-isolation-matrix"
ACTION_TOKEN = "action-token-of-the-isolation-matrix"
PASSWORD = "a long isolation passphrase"


@dataclass
class Cred:
    """One credential of an organisation, as headers; `reads`/`operates`: what it may do there."""

    name: str
    headers: dict[str, str]
    reads: bool
    operates: bool
    server: bool = False  # the ACTION_TOKEN: it names the organisation with X-DashFleet-Org
    operator: bool = False  # server-wide (ACTION_TOKEN, a server admin): routes of SERVER level see every organisation


@dataclass
class Org:
    id: str
    mark: str
    machines: list[str]
    creds: list[Cred] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)
    link_ids: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)


def _report(machine_id: str, seq: int, cpu: float) -> dict[str, Any]:
    host = machine_id.replace("-", "-host-", 1)
    return {"machine_id": machine_id, "hostname": host, "seq": seq,
            "metrics": {"cpu.percent": cpu, "memory.percent": 40.0, "disk.percent": 50.0},
            "facts": {"os.name": f"{machine_id.split('-')[0]}-os"}}


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class World:
    """The server, its fleet, and both organisations with their data and credentials."""

    def __init__(self, tmp) -> None:
        settings = load_settings(None, env={}, overrides={
            "storage.url": f"sqlite:///{tmp}/dashfleet.db", "server.data_dir": str(tmp),
            "server.public_read": False, "server.token": FLEET_TOKEN, "actions.token": ACTION_TOKEN,
            "server.report_self": False, "server.downloads_dir": str(tmp / "dist")})
        (tmp / "dist").mkdir()
        (tmp / "dist" / "agent.exe").write_bytes(b"an agent")
        self.fleet = Fleet(settings)
        self.app = create_app(fleet=self.fleet, start=False)
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.http = requests.Session()
        accounts = self.fleet.accounts
        self.a = Org(accounts.orgs.create("Aardvark").id, "aard", ["aard-1", "aard-2", "aard-3"])
        self.b = Org(accounts.orgs.create("Bumblebee").id, "bumble", ["bumble-1", "bumble-2", "bumble-3"])
        self.default = Org("default", "dflt", ["dflt-1", "dflt-2", "dflt-3"])  # the seed's organisation
        self.orgs = (self.a, self.b, self.default)
        for org in self.orgs:
            self._credentials(org)
        self._data()

    def stop(self) -> None:
        self.server.shutdown()
        self.fleet.stop()

    def call(self, method: str, path: str, headers: dict[str, str], **kwargs) -> requests.Response:
        return self.http.request(method, self.base + path, headers=headers, allow_redirects=False,
                                 timeout=30, **kwargs)

    # --- set-up --------------------------------------------------------------------------------

    def _credentials(self, org: Org) -> None:
        accounts = self.fleet.accounts
        for scope in ("read", "operate", "admin", "report"):
            key, secret = accounts.keys.create(org.id, name=f"{org.mark}-{scope}-key", scopes=[scope])
            org.key_ids.append(key.id)
            granted = expand_scopes([scope])
            org.creds.append(Cred(f"{scope}-key", _bearer(secret), "read" in granted, "operate" in granted))
        for role in ("viewer", "operator", "admin"):
            name = f"{org.mark}-{role}"
            user = accounts.users.add(name, PASSWORD, org=org.id, role=role)
            org.users.append(name)
            sid, session = accounts.sessions.create(name, user.epoch, org.id)
            granted = scopes_of_role(role)
            org.creds.append(Cred(f"{role}-session", {"Cookie": f"dashfleet_session={sid}",
                                                      "X-CSRF-Token": session.csrf_token},
                                  "read" in granted, "operate" in granted))
        admin = accounts.users.add(f"{org.mark}-root", PASSWORD, server_admin=True)
        sid, session = accounts.sessions.create(admin.username, admin.epoch, org.id)
        org.creds.append(Cred("server-admin-session", {"Cookie": f"dashfleet_session={sid}",
                                                       "X-CSRF-Token": session.csrf_token}, True, True, operator=True))
        org.creds.append(Cred("action-token", {**_bearer(ACTION_TOKEN), "X-DashFleet-Org": org.id},
                              True, True, server=True, operator=True))

    def cred(self, org: Org, name: str) -> Cred:
        [found] = [c for c in org.creds if c.name == name]
        return found

    def _post_ok(self, path: str, headers: dict[str, str], body: Any, status: int = 201) -> None:
        answer = self.call("POST", path, headers, json=body)
        assert answer.status_code == status, (path, answer.status_code, answer.text)

    def _data(self) -> None:
        """Both organisations (and default) get the same kinds of data, each with its marker."""
        self._post_ok("/api/fleet/report", _bearer(FLEET_TOKEN), _report("dflt-0", 1, 10.0))  # the seed's agents
        for org in self.orgs:
            report = self.cred(org, "report-key").headers
            first, critical, silent = org.machines
            # a bound machine key (DELETE .../key of the other organisation must not unbind it)
            self._post_ok("/api/fleet/report", {**report, "X-DashFleet-Machine-Key": f"{org.mark}-" + "k" * 40},
                          _report(first, 1, 12.0))
            for seq in range(1, 7):  # sustained critical: a status_changed event
                self._post_ok("/api/fleet/report", report, _report(critical, seq, 99.0))
            self._post_ok("/api/fleet/report", report, _report(silent, 1, 30.0))
        # every machine goes silent (the sweep of each organisation), then two come back
        self.fleet.alerting.tick(now=utcnow() + timedelta(hours=2))
        for org in self.orgs:
            report = self.cred(org, "report-key").headers
            self._post_ok("/api/fleet/report", {**report, "X-DashFleet-Machine-Key": f"{org.mark}-" + "k" * 40},
                          _report(org.machines[0], 2, 14.0))
            self._post_ok("/api/fleet/report", report, _report(org.machines[1], 7, 98.0))
            operate = self.cred(org, "operate-key").headers
            # windows: one machine, and the organisation's whole fleet; each start is an audit row
            self._post_ok(f"/api/fleet/{org.machines[0]}/maintenance", operate,
                          {"minutes": 60, "reason": f"{org.mark}-machine-window", "by": f"{org.mark}-person"})
            self._post_ok("/api/maintenance", operate, {"minutes": 90, "reason": f"{org.mark}-fleet-window"})
            self._post_ok(f"/api/fleet/{org.machines[1]}/maintenance", operate, {"minutes": 5})
            assert self.call("DELETE", f"/api/fleet/{org.machines[1]}/maintenance", operate).status_code == 200
            # a live one-time agent link, whose id another organisation must not reach
            link = self.call("POST", "/api/agent/link", self.cred(org, "admin-key").headers,
                             json={"ttl": 3600, "path": "agent.exe"})
            assert link.status_code == 201, link.text
            org.link_ids.append(link.json()["id"])
        self.fleet.alerting.tick()  # the maintenance sweep of each organisation
        for org in self.orgs:
            kinds = {e.kind for e in self.fleet.storage.events(org=org.id, limit=1000)}
            assert {"status_changed", "silent", "back", "maintenance_started", "maintenance_ended"} <= kinds, kinds
            assert self.fleet.storage.audit(org=org.id, limit=100), "audit rows to leak"

    def snapshot(self, org: Org) -> dict[str, Any]:
        """What a change aimed at `org` could alter: machines, events, audit, windows, keys, users."""
        storage, accounts = self.fleet.storage, self.fleet.accounts
        return {
            "machines": sorted((m.machine_id, m.last_seq, m.hostname) for m in storage.machines(org=org.id)),
            "events": [e.id for e in storage.events(org=org.id, limit=10_000)],
            "audit": [a.id for a in storage.audit(org=org.id, limit=10_000)],
            "maintenance": storage.kv_list("maintenance", org=org.id),
            "machine_keys": storage.kv_list("machine_key", org=org.id),
            "keys": sorted((k.id, k.name, k.scopes) for k in accounts.keys.list(org.id)),
            "users": sorted((u.username, u.roles.get(org.id)) for u in accounts.users.list(org.id)),
            "links": sorted(link.id for link in accounts.links.list(org.id)),
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    found = World(tmp_path_factory.mktemp("isolation"))
    yield found
    found.stop()


# --- what the test knows about routes ---------------------------------------------------------------

# How to fill each path parameter, for the asking organisation (`own`) and the other one (`other`).
PARAM_VALUES: dict[str, Callable[[World, Org, Org], dict[str, list[str]]]] = {
    "machine_id": lambda w, own, other: {"own": [*own.machines, "*"], "other": other.machines},
    "org": lambda w, own, other: {"own": [own.id], "other": [other.id]},
    "key_id": lambda w, own, other: {"own": own.key_ids[:1], "other": other.key_ids},
    "username": lambda w, own, other: {"own": own.users[:1], "other": other.users},
    "token": lambda w, own, other: {"own": ["0" * 43], "other": []},  # one-time links: nobody's
    "link_id": lambda w, own, other: {"own": own.link_ids[:1], "other": other.link_ids},
}

# Routes where the operator (ACTION_TOKEN, a server admin) sees every organisation by design: the
# organisation is in the path, or the answer lists organisations.
OPERATOR_VIEWS = {"/api/orgs", "/api/orgs/<org>/keys", "/api/orgs/<org>/keys/<key_id>",
                  "/api/orgs/<org>/users", "/api/orgs/<org>/users/<username>"}

# Rules that hold no organisation's data at all (checked only for the absence of markers).
NOT_ORG_DATA = {"/static/<path:filename>", "/healthz", "/favicon.ico", "/api/openapi.json",
                # the login forms and the caller's own session (password, second factor, switching)
                "/login", "/login/code", "/login/enrol", "/logout", "/setup/<token>", "/api/session/org",
                "/api/session/password", "/api/session/totp", "/api/session/totp/confirm"}


def _without_switcher(text: str) -> str:
    """A server admin's organisation switcher (page header, `orgs` of GET /api/session) names every
    organisation by design: leave it out of the leak search for the operator's credentials."""
    text = re.sub(r'<select id="org-switch">.*?</select>', "", text, flags=re.S)
    return re.sub(r'"orgs":\[.*?\](?=,"server_admin")', "", text)

# Reads that answer counts, not records (no marker can show a leak): each must equal what the same
# credential's own GET /api/fleet lists, whatever other organisation the request names.
COUNT_VIEWS: dict[str, Callable[[dict[str, Any]], dict[str, int]]] = {
    "/api/summary": lambda fleet: {
        "count": fleet["count"],
        **{status: sum(1 for m in fleet["machines"] if not m["expired"] and m["status"] == status)
           for status in ("ok", "warn", "critical")},
        "silent": sum(1 for m in fleet["machines"] if m["expired"])},
}

# State-changing routes: how to aim each at the other organisation's things, with the asking
# organisation's credentials. Each returns (path, json body or None).
MUTATIONS: dict[tuple[str, str], Callable[[Org], list[tuple[str, Any]]]] = {
    ("POST", "/api/fleet/<machine_id>/maintenance"):
        lambda other: [(f"/api/fleet/{m}/maintenance", {"minutes": 30, "reason": "aimed elsewhere"})
                       for m in other.machines],
    ("DELETE", "/api/fleet/<machine_id>/maintenance"):
        lambda other: [(f"/api/fleet/{m}/maintenance", None) for m in other.machines],
    ("DELETE", "/api/fleet/<machine_id>/key"):
        lambda other: [(f"/api/fleet/{m}/key", None) for m in other.machines],
    ("POST", "/api/orgs/<org>/keys"):
        lambda other: [(f"/api/orgs/{other.id}/keys", {"name": "aimed elsewhere", "scopes": ["read"]})],
    ("DELETE", "/api/orgs/<org>/keys/<key_id>"):
        lambda other: [(f"/api/orgs/{other.id}/keys/{k}", None) for k in other.key_ids],
    ("POST", "/api/orgs/<org>/users"):
        lambda other: [(f"/api/orgs/{other.id}/users", {"username": "aimed-elsewhere", "password": PASSWORD,
                                                         "role": "viewer"}),
                       (f"/api/orgs/{other.id}/users", {"username": other.users[0], "role": "admin"})],
    ("PATCH", "/api/orgs/<org>/users/<username>"):
        lambda other: [(f"/api/orgs/{other.id}/users/{u}", {"role": "admin"}) for u in other.users],
    ("DELETE", "/api/orgs/<org>/users/<username>"):
        lambda other: [(f"/api/orgs/{other.id}/users/{u}", None) for u in other.users],
    ("POST", "/api/agent/link"):
        lambda other: [("/api/agent/link", {"ttl": 3600, "path": "agent.exe", "org": other.id})],
    ("DELETE", "/api/agent/links/<link_id>"):
        lambda other: [(f"/api/agent/links/{link}", None) for link in other.link_ids],
}
# State-changing routes whose view itself requires the server operator (`@requires(SELF)` and
# `require(SERVER)`): an organisation's credentials are refused like at SERVER level.
# Routes that need scope admin: a credential without it is refused (403) before any lookup.
ADMIN_ROUTES = {"/api/orgs/<org>/keys", "/api/orgs/<org>/keys/<key_id>", "/api/agent/link",
                "/api/agent/links/<link_id>", "/api/orgs/<org>/users", "/api/orgs/<org>/users/<username>"}
SERVER_ONLY = {("POST", "/api/action"), ("POST", "/api/orgs")}

# State-changing routes that act on the asker's own organisation only (checked: the other's data
# does not change), with the body to send.
OWN_ORG_MUTATIONS: dict[tuple[str, str], Callable[[Org], list[tuple[str, Any]]]] = {
    ("POST", "/api/maintenance"): lambda other: [("/api/maintenance", {"minutes": 15, "reason": "own"})],
    ("DELETE", "/api/maintenance"): lambda other: [("/api/maintenance", None)],
    # a report naming the other organisation's machine id lands in the asker's organisation
    ("POST", "/api/fleet/report"): lambda other: [("/api/fleet/report", _report(other.machines[0], 99, 1.0))],
}


def _openapi_rules(world: World) -> set[tuple[str, str]]:
    doc = world.call("GET", "/api/openapi.json", world.cred(world.a, "read-key").headers).json()
    found = set()
    for path, operations in doc["paths"].items():
        rule = re.sub(r"\{([^}]+)\}", r"<\1>", path)
        for method in operations:
            if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                found.add((method.upper(), rule))
    return found


def _routes(world: World) -> set[tuple[str, str]]:
    """Every (method, rule) of the app and of the OpenAPI document; each documented path must be
    served (a path only in the document would escape the url_map's levels)."""
    served = set()
    for rule in world.app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((method, rule.rule))
    documented = {(m, re.sub(r"<(?:[a-z]+:)?([^>]+)>", r"<\1>", r)) for m, r in _openapi_rules(world)}
    plain = {(m, re.sub(r"<(?:[a-z]+:)?([^>]+)>", r"<\1>", r)) for m, r in served}
    assert documented <= plain, f"documented but not served: {sorted(documented - plain)}"
    return served


def _params(rule: str) -> list[str]:
    return [name.split(":")[-1] for name in re.findall(r"<([^>]+)>", rule)]


def _fill(rule: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([^>]+)>", lambda m: values[m.group(1)], rule)


def _level(world: World, rule: str, method: str) -> str:
    adapter = world.app.url_map.bind("127.0.0.1")
    endpoint, _ = adapter.match(_fill(rule, {p: "x" for p in _params(rule)}), method=method)
    return getattr(world.app.view_functions[endpoint], LEVEL_ATTR, "read")


def _server_only(world: World, method: str, rule: str) -> bool:
    return (method, rule) in SERVER_ONLY or _level(world, rule, method) == SERVER


def _leaks(text: str, others: list[Org], echoed: list[str]) -> list[str]:
    """Markers of the other organisations in an answer, once the values the asker itself put into
    the path are taken out (an error may quote the id it was asked about)."""
    for value in sorted(echoed, key=len, reverse=True):
        text = text.replace(value, "")
    lowered = text.lower()
    found = []
    for org in others:
        # default's id is an ordinary word in answers ("the default organisation"): its marker only
        marks = (org.mark,) if org.id == "default" else (org.mark, org.id)
        found += [mark for mark in marks if mark in lowered]
    return found


def _direction(world: World, name: str) -> tuple[Org, Org, list[Org]]:
    """(the asking organisation, the one whose ids it aims at, every organisation it must not see)."""
    own = {"aardvark": world.a, "bumblebee": world.b, "default": world.default}[name.split()[0]]
    target = world.a if own is not world.a else world.b
    return own, target, [org for org in world.orgs if org is not own]


# --- the matrix -------------------------------------------------------------------------------------


def test_every_route_is_known_to_this_test(world):
    """A route nobody taught this test fails here, naming what to add."""
    unknown = []
    for method, rule in sorted(_routes(world)):
        for name in _params(rule):
            if name not in PARAM_VALUES and rule not in NOT_ORG_DATA:
                unknown.append(f"{method} {rule}: path parameter {name!r} (teach PARAM_VALUES)")
        if method != "GET" and rule not in NOT_ORG_DATA and (method, rule) not in MUTATIONS \
                and (method, rule) not in OWN_ORG_MUTATIONS and not _server_only(world, method, rule):
            unknown.append(f"{method} {rule}: a change this test does not know how to aim at another "
                           "organisation (teach MUTATIONS or OWN_ORG_MUTATIONS)")
    assert not unknown, "\n".join(unknown)


@pytest.mark.parametrize("direction", ["aardvark reads", "bumblebee reads", "default reads"])
def test_no_read_of_one_organisation_shows_anything_of_the_other(world, direction):
    own, other, hidden = _direction(world, direction)
    problems: list[str] = []
    seen_own = set()
    for method, rule in sorted(_routes(world)):
        if method != "GET" or rule == "/static/<path:filename>":
            continue
        names = _params(rule)
        fills = [("own", {})] if not names else []
        if names:
            own_values = {n: PARAM_VALUES[n](world, own, other)["own"] for n in names}
            other_values = {n: PARAM_VALUES[n](world, own, other)["other"] for n in names}
            for which, values in (("own", own_values), ("other", other_values)):
                for n in names:  # vary one parameter at a time, the others from the asker's side
                    for value in values[n]:
                        fills.append((which, {**{k: own_values[k][0] for k in names}, n: value}))
        for which, values in fills:
            path = _fill(rule, values)
            server_route = _level(world, rule, "GET") == SERVER or rule in OPERATOR_VIEWS
            for cred in own.creds:
                if server_route and cred.operator:
                    continue  # the operator's own view of the server (organisations, users): every one
                headers = dict(cred.headers)
                if not cred.server:  # naming the other organisation changes nothing for its keys and users
                    headers["X-DashFleet-Org"] = other.id
                for query in ([""] if cred.server else ["", f"?org={other.id}"]):
                    answer = world.call("GET", path + query, headers)
                    where = f"{cred.name} GET {path}{query} -> {answer.status_code}"
                    if answer.status_code >= 500:
                        problems.append(f"{where}: server error")
                    text = _without_switcher(answer.text) if cred.operator else answer.text
                    leaks = _leaks(text, hidden, list(values.values()) + [other.id] * bool(query))
                    if leaks:
                        problems.append(f"{where}: shows {leaks}: {answer.text[:300]}")
                    if which == "other" and rule not in NOT_ORG_DATA:
                        expected = {404} if cred.reads else {401, 403, 404}
                        if answer.status_code not in expected and not (
                                answer.status_code == 403 and _level(world, rule, "GET") not in ("read", OPEN)):
                            problems.append(f"{where}: expected 404 for the other organisation's "
                                            f"{', '.join(v for v in values.values() if v not in own.machines)}")
                    if which == "own" and cred.reads and answer.status_code == 200 and own.mark in answer.text:
                        seen_own.add(rule)
    assert not problems, "\n".join(problems[:40]) + (f"\n... {len(problems)} in all" if len(problems) > 40 else "")
    # the reads did see the asker's own data (so an empty answer cannot pass for isolation)
    for rule in ("/api/fleet", "/api/fleet/<machine_id>", "/api/fleet/<machine_id>/events", "/api/maintenance",
                 "/api/audit", "/metrics", "/fleet/<machine_id>"):
        assert rule in seen_own, f"{rule} never showed {own.mark}'s own data"


def _html_pages(world: World) -> list[str]:
    return [rule for method, rule in _routes(world) if method == "GET" and not rule.startswith("/api/")
            and rule not in NOT_ORG_DATA and rule != "/metrics"]


def test_pages_are_enumerated_and_redirect_to_login_without_a_credential(world):
    pages = _html_pages(world)
    assert {"/", "/history", "/fleet", "/fleet/<machine_id>"} <= set(pages)
    for rule in pages:
        level = _level(world, rule, "GET")
        path = _fill(rule, {n: PARAM_VALUES[n](world, world.a, world.b)["own"][0] for n in _params(rule)})
        answer = world.call("GET", path, {})
        if level == OPEN:
            assert answer.status_code < 500 and not _leaks(answer.text, list(world.orgs), []), path
        else:
            assert answer.status_code == 302 and answer.headers["Location"].startswith("/login?next="), path


def test_the_operator_sees_the_organisation_it_names_and_only_that_one(world):
    token = _bearer(ACTION_TOKEN)
    ids = lambda org: [m["machine_id"] for m in world.call(  # noqa: E731
        "GET", "/api/fleet", {**token, "X-DashFleet-Org": org}).json()["machines"]]
    assert set(ids(world.a.id)) >= set(world.a.machines) and not any(i.startswith("bumble") for i in ids(world.a.id))
    assert set(ids(world.b.id)) >= set(world.b.machines) and not any(i.startswith("aard") for i in ids(world.b.id))
    assert set(ids("default")) == {"dflt-0", *world.default.machines}
    # process-wide counters only for the operator, never an organisation's key
    assert "dashfleet_reports_received_total" in world.call("GET", "/metrics", token).text
    assert "dashfleet_reports_received_total" not in world.call(
        "GET", "/metrics", world.cred(world.a, "admin-key").headers).text


@pytest.mark.parametrize("direction", ["aardvark reads", "bumblebee reads", "default reads"])
def test_counts_count_the_asking_organisation_only(world, direction):
    own, other, _ = _direction(world, direction)
    for rule, expected_of in COUNT_VIEWS.items():
        for cred in own.creds:
            if not cred.reads:
                assert world.call("GET", rule, cred.headers).status_code == 403, (cred.name, rule)
                continue
            headers = dict(cred.headers)
            expected = expected_of(world.call("GET", "/api/fleet", headers).json())
            assert expected["count"] == len(own.machines) + (own is world.default)  # dflt-0, the seed's agent
            queries = [""] if cred.server else ["", f"?org={other.id}"]
            if not cred.server:
                headers["X-DashFleet-Org"] = other.id  # names the other: changes nothing for its keys and users
            for query in queries:
                answer = world.call("GET", rule + query, headers)
                assert answer.status_code == 200, (cred.name, rule, answer.text)
                got = answer.json()
                assert {k: got[k] for k in expected} == expected, (cred.name, rule + query, got, expected)


@pytest.mark.parametrize("direction", ["aardvark acts", "bumblebee acts", "default acts"])
def test_changes_aimed_at_the_other_organisation_are_404_and_change_nothing(world, direction):
    own, other, _ = _direction(world, direction)
    before = world.snapshot(other)
    other_view = world.call("GET", "/api/fleet", world.cred(other, "read-key").headers).json()
    problems = []
    operating = [c for c in own.creds if c.operates]
    assert {c.name for c in operating} >= {"operate-key", "admin-key", "operator-session", "admin-session",
                                            "server-admin-session", "action-token"}
    for (method, rule), aim in sorted(MUTATIONS.items()):
        for path, body in aim(other):
            for cred in operating:
                if cred.operator and (rule in OPERATOR_VIEWS or "org" in (body or {})):
                    continue  # the operator acts in any organisation it names
                answer = world.call(method, path, cred.headers, **({"json": body} if body is not None else {}))
                if answer.status_code == 403 and "admin" not in cred.name and rule in ADMIN_ROUTES:
                    pass  # refused for lacking admin before anything is looked up: says nothing of the other
                elif answer.status_code != 404:
                    problems.append(f"{cred.name} {method} {path} -> {answer.status_code}: {answer.text[:200]}")
                echoed = [path.split("/")[3]] + [str(v) for k, v in (body or {}).items() if k == "org"]
                if _leaks(answer.text, [other], echoed):
                    problems.append(f"{cred.name} {method} {path}: the answer shows the other organisation")
    # server-wide changes: an organisation's credentials are refused
    for method, rule in sorted(_routes(world)):
        if method != "GET" and rule not in NOT_ORG_DATA and _server_only(world, method, rule):
            path = _fill(rule, {n: PARAM_VALUES[n](world, own, other)["other"][0] for n in _params(rule)})
            for cred in own.creds:
                if cred.operator:
                    continue
                answer = world.call(method, path, cred.headers, json={})
                if answer.status_code not in (401, 403, 404):
                    problems.append(f"{cred.name} {method} {path} -> {answer.status_code}")
    # changes of the asker's own organisation leave the other's alone
    for (method, rule), aim in sorted(OWN_ORG_MUTATIONS.items()):
        for path, body in aim(other):
            cred = world.cred(own, "report-key" if rule == "/api/fleet/report" else "operate-key")
            answer = world.call(method, path, cred.headers, **({"json": body} if body is not None else {}))
            if answer.status_code >= 400:
                problems.append(f"{cred.name} {method} {path} -> {answer.status_code}: {answer.text[:200]}")
    assert not problems, "\n".join(problems)
    world.fleet.alerting.tick()
    assert world.snapshot(other) == before
    after_view = world.call("GET", "/api/fleet", world.cred(other, "read-key").headers).json()
    strip = lambda doc: [(m["machine_id"], m["maintenance_until"], m["status"]) for m in doc["machines"]]  # noqa: E731
    assert strip(after_view) == strip(other_view)
    assert after_view["maintenance_all_until"] == other_view["maintenance_all_until"] is not None
    # the report that named the other's machine id is a machine of the asker's organisation
    mine = world.fleet.storage.machine(other.machines[0], org=own.id)
    assert mine is not None and mine.last_seq == 99
