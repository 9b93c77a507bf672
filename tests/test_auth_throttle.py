"""Refused credentials are throttled per client address, apart from authorised calls (issue 12,
item 7): a stranger's wrong guesses cannot lock out the real token holder, the counts live in
storage (shared by every worker), and X-Forwarded-For counts only through `[server]
trusted_proxies`. Real apps on a real SQLite file."""

from __future__ import annotations

import pytest

from dashfleet_core.config import ConfigError
from dashfleet_web.app import create_app

FLEET_TOKEN = "fleet-token-for-throttle-tests"
ACTION_TOKEN = "action-token-for-throttle-tests"
LIMIT = 5
HOLDER = "198.51.100.7"
STRANGER = "203.0.113.5"
PROXY = "10.0.0.2"
REPORT = {"machine_id": "m1", "hostname": "m1", "metrics": {"cpu.percent": 1.0}}


@pytest.fixture
def make_app(settings_factory):
    apps = []

    def make(**overrides):
        settings = settings_factory({"server.token": FLEET_TOKEN, "actions.token": ACTION_TOKEN,
                                     "server.report_self": False, "server.failed_auth_per_minute": LIMIT,
                                     **overrides})
        app = create_app(settings, start=False)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["dashfleet"].stop()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# Each token-checked endpoint: (method, path, token, body for the right token, success status)
ENDPOINTS = {
    "report": ("post", "/api/fleet/report", FLEET_TOKEN, lambda n: {**REPORT, "seq": n}, 201),
    "action": ("post", "/api/action", ACTION_TOKEN,
               lambda n: {"action": "flush_dns", "params": {"dry_run": True}}, 200),
    "maintenance": ("post", "/api/maintenance", ACTION_TOKEN, lambda n: {"minutes": 5}, 201),
    "audit": ("get", "/api/audit", ACTION_TOKEN, None, 200),
}


def call(client, endpoint, token, address, n=1, xff=None):
    method, path, _, body, _ = ENDPOINTS[endpoint]
    headers = bearer(token)
    if xff:
        headers["X-Forwarded-For"] = xff
    kwargs = {"json": body(n)} if body else {}
    return getattr(client, method)(path, headers=headers, environ_base={"REMOTE_ADDR": address}, **kwargs)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_wrong_guesses_block_their_address_not_the_token_holder(make_app, endpoint):
    app = make_app()
    client = app.test_client()
    token, ok = ENDPOINTS[endpoint][2], ENDPOINTS[endpoint][4]
    answers = [call(client, endpoint, "wrong-guess", STRANGER).status_code for _ in range(LIMIT + 3)]
    assert answers == [401] * LIMIT + [429] * 3
    blocked = call(client, endpoint, token, STRANGER)
    assert blocked.status_code == 429, "a blocked address is refused before its token is compared"
    assert int(blocked.headers["Retry-After"]) > 0
    assert "trusted_proxies" in blocked.get_json()["error"]
    assert call(client, endpoint, token, HOLDER, n=2).status_code == ok, "the holder is not locked out"


def test_refused_and_authorised_calls_are_counted_apart(make_app):
    app = make_app(**{"actions.rate_limit_per_minute": 3})
    client = app.test_client()
    for _ in range(LIMIT):  # up to the limit of refusals, from the holder's own address
        assert call(client, "action", "wrong-guess", HOLDER).status_code == 401
    for _ in range(3):  # ...which take nothing from the holder's own 3 calls a minute
        assert call(client, "action", ACTION_TOKEN, HOLDER).status_code == 200
    limited = call(client, "action", ACTION_TOKEN, HOLDER)
    assert limited.status_code == 429 and "3 action calls a minute" in limited.get_json()["error"]
    outcomes = [row["outcome"] for row in client.get("/api/audit", headers=bearer(ACTION_TOKEN),
                                                     environ_base={"REMOTE_ADDR": HOLDER}).get_json()]
    assert len(outcomes) == LIMIT + 4, "every attempt is audited once"


def test_the_block_is_shared_by_every_worker(make_app):
    first, second = make_app().test_client(), make_app().test_client()  # one SQLite file, two apps
    for _ in range(LIMIT + 1):
        call(first, "report", "wrong-guess", STRANGER)
    assert call(second, "report", FLEET_TOKEN, STRANGER).status_code == 429
    assert call(second, "report", FLEET_TOKEN, HOLDER).status_code == 201


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(make_app):
    client = make_app().test_client()
    # A client that invents a new X-Forwarded-For on each guess is still one address.
    for n in range(LIMIT):
        assert call(client, "report", "wrong-guess", STRANGER, xff=f"192.0.2.{n}").status_code == 401
    assert call(client, "report", "wrong-guess", STRANGER, xff="192.0.2.99").status_code == 429


def test_behind_a_trusted_proxy_each_client_has_its_own_count(make_app):
    client = make_app(**{"server.trusted_proxies": ["10.0.0.0/24"]}).test_client()
    for _ in range(LIMIT + 1):  # the stranger writes a fake address on the left: the proxy's entry wins
        call(client, "report", "wrong-guess", PROXY, xff=f"{HOLDER}, {STRANGER}")
    assert call(client, "report", FLEET_TOKEN, PROXY, xff=STRANGER).status_code == 429
    assert call(client, "report", FLEET_TOKEN, PROXY, n=2, xff=HOLDER).status_code == 201
    # A chain of two trusted proxies: the first untrusted address from the right is the client.
    assert call(client, "report", FLEET_TOKEN, PROXY, n=3, xff=f"{STRANGER}, {HOLDER}, 10.0.0.3").status_code == 201


def test_trusted_proxies_must_be_addresses_or_networks(settings_factory):
    with pytest.raises(ConfigError) as info:
        settings_factory({"server.trusted_proxies": ["proxy.example"]})
    assert "[server.trusted_proxies]" in str(info.value) and "'proxy.example' is not an IP address or CIDR" in str(info.value)
