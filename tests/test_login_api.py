"""Dashboard login over HTTP against a real server on 127.0.0.1 and a real SQLite file (public
reading off, the real default): the login form and its CSRF, cookie flags, a new session id at every
login, where `next` may send the browser, the brute-force limits per username and per address, the
second factor (TOTP code and recovery code; enrolment forced by require_2fa), logout, the session
API, the users of an organisation, the first-admin setup link, and the audit rows of all of it."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager

import pyotp
import pytest
import requests

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet
from conftest import serving

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "staple gun and a kettle"


@contextmanager
def running(tmp_path, **overrides):
    settings = load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{tmp_path}/dashfleet.db", "server.data_dir": str(tmp_path),
        "server.report_self": False, "server.public_read": False, "server.token": "login-test-fleet-token",
        **overrides})
    fleet = Fleet(settings)
    with serving(fleet) as base:
        yield base, fleet


@pytest.fixture
def server(tmp_path):
    with running(tmp_path) as found:
        yield found


def form_token(http: requests.Session, url: str) -> str:
    page = http.get(url)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def login(base: str, username: str, password: str, nxt: str = "/fleet", http: requests.Session | None = None,
          headers: dict | None = None) -> tuple[requests.Session, requests.Response]:
    http = http or requests.Session()
    token = form_token(http, f"{base}/login")
    answer = http.post(f"{base}/login", data={"username": username, "password": password, "csrf_token": token,
                                              "next": nxt}, allow_redirects=False, headers=headers or {})
    return http, answer


def csrf(http: requests.Session, base: str) -> dict[str, str]:
    return {"X-CSRF-Token": http.get(f"{base}/api/session").json()["csrf_token"]}


def audit(fleet, action: str) -> list:
    rows = []
    for org in ["default"] + [o.id for o in fleet.accounts.orgs.list() if o.id != "default"]:
        rows += [r for r in fleet.storage.audit(org=org, limit=1000) if r.action == action]
    return rows


# --- the form, the cookie, the redirect --------------------------------------------------------------

def test_pages_redirect_to_the_login_and_the_api_answers_401(server):
    base, _ = server
    answer = requests.get(f"{base}/fleet/m1?range=1h", allow_redirects=False)
    assert answer.status_code == 302 and answer.headers["Location"] == "/login?next=/fleet/m1%3Frange%3D1h"
    assert requests.get(f"{base}/api/fleet").status_code == 401
    page = requests.get(f"{base}/login?next=/fleet")
    assert page.status_code == 200 and 'name="password"' in page.text and "<script>" not in page.text


def test_a_login_gets_a_new_session_id_with_safe_cookie_flags(server):
    base, fleet = server
    fleet.accounts.users.add("alice", PASSWORD, org="default", role="viewer")
    planted = "attacker-chose-this-session-id-aaaaaaaaaaaaa"
    http = requests.Session()
    http.cookies.set("dashfleet_session", planted, domain="127.0.0.1", path="/")
    http, answer = login(base, "alice", PASSWORD, http=http)
    assert answer.status_code == 303 and answer.headers["Location"] == "/fleet"
    cookie = next(c for c in answer.headers["Set-Cookie"].split(", dashfleet") if "session=" in c)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie and "Secure" not in cookie
    first = answer.cookies["dashfleet_session"]
    assert first != planted
    assert http.get(f"{base}/api/session").json()["user"] == "alice"
    # logging in again from the same browser: yet another id, and the previous one is gone
    _, again = login(base, "alice", PASSWORD, http=http)
    second = again.cookies["dashfleet_session"]
    assert second != first
    assert requests.get(f"{base}/api/session", cookies={"dashfleet_session": first}).status_code == 401
    assert requests.get(f"{base}/api/session", cookies={"dashfleet_session": second}).status_code == 200


def test_the_session_cookie_is_secure_when_the_server_is_public_over_https(tmp_path):
    with running(tmp_path, **{"server.public_url": "https://fleet.example.test"}) as (base, fleet):
        fleet.accounts.users.add("alice", PASSWORD, org="default", role="viewer")
        page = requests.get(f"{base}/login")
        assert "Secure" in page.headers["Set-Cookie"]
        # requests keeps Secure cookies off plain http: send it by hand, as a browser would over https
        nonce = re.search(r"dashfleet_login_csrf=([^;]+)", page.headers["Set-Cookie"]).group(1)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        answer = requests.post(f"{base}/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token},
                               headers={"Cookie": f"dashfleet_login_csrf={nonce}"}, allow_redirects=False)
        assert answer.status_code == 303
        cookies = answer.raw.headers.getlist("Set-Cookie")
        assert any(c.startswith("dashfleet_session=") for c in cookies)
        assert all("Secure" in c for c in cookies)


@pytest.mark.parametrize("nxt, lands", [
    ("/fleet/ws-01?range=6h", "/fleet/ws-01?range=6h"),
    ("/history", "/history"),
    ("//evil.example/", "/fleet"),
    ("https://evil.example/", "/fleet"),
    ("/\\evil.example", "/fleet"),
    ("\\\\evil.example", "/fleet"),
    ("javascript:alert(1)", "/fleet"),
    ("/\t/evil.example", "/fleet"),
    ("evil.example", "/fleet"),
    ("/login", "/fleet"),
])
def test_next_is_only_ever_a_local_path(server, nxt, lands):
    base, fleet = server
    if not fleet.accounts.users.get("alice"):
        fleet.accounts.users.add("alice", PASSWORD, org="default", role="viewer")
    _, answer = login(base, "alice", PASSWORD, nxt=nxt)
    assert answer.status_code == 303 and answer.headers["Location"] == lands


def test_a_form_post_without_its_csrf_token_is_refused(server):
    base, fleet = server
    fleet.accounts.users.add("alice", PASSWORD, org="default", role="viewer")
    http = requests.Session()
    http.get(f"{base}/login")  # has the cookie, not the form's token
    answer = http.post(f"{base}/login", data={"username": "alice", "password": PASSWORD}, allow_redirects=False)
    assert answer.status_code == 403 and "CSRF" in answer.json()["error"]
    forged = http.post(f"{base}/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "0" * 64},
                       allow_redirects=False)
    assert forged.status_code == 403
    assert "dashfleet_session" not in http.cookies


def test_wrong_password_and_unknown_user_get_the_same_answer_and_are_audited(server):
    base, fleet = server
    fleet.accounts.orgs.create("Acme")
    fleet.accounts.users.add("alice", PASSWORD, org="acme", role="viewer")
    _, wrong = login(base, "alice", "not the password at all")
    _, unknown = login(base, "nobody", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password" in wrong.text and "Wrong username or password" in unknown.text
    assert "dashfleet_session" not in wrong.cookies
    rows = audit(fleet, "login")
    failed = [r for r in rows if r.outcome == "failed"]
    assert {(r.org, r.params["username"]) for r in failed} == {("acme", "alice"), ("default", "nobody")}
    assert all(r.actor == "anonymous" for r in failed)
    login(base, "alice", PASSWORD)
    ok = [r for r in audit(fleet, "login") if r.outcome == "ok"]
    assert [(r.org, r.actor) for r in ok] == [("acme", "user:alice")]
    everything = repr([r.model_dump() for r in fleet.storage.audit(org="acme", limit=100)])
    assert PASSWORD not in everything and "not the password" not in everything


# --- brute force --------------------------------------------------------------------------------------

def test_ten_failures_lock_the_username_whatever_the_address(tmp_path):
    with running(tmp_path, **{"server.trusted_proxies": ["127.0.0.1"]}) as (base, fleet):
        fleet.accounts.users.add("alice", PASSWORD, org="default", role="viewer")
        fleet.accounts.users.add("bob", OTHER_PASSWORD, org="default", role="viewer")
        for i in range(10):
            _, answer = login(base, "alice", f"guess number {i} here", headers={"X-Forwarded-For": f"198.51.100.{i}"})
            assert answer.status_code == 401
        _, locked = login(base, "alice", PASSWORD, headers={"X-Forwarded-For": "198.51.100.77"})
        assert locked.status_code == 429 and 0 < int(locked.headers["Retry-After"]) <= 900
        assert "dashfleet_session" not in locked.cookies
        _, bob = login(base, "bob", OTHER_PASSWORD, headers={"X-Forwarded-For": "198.51.100.78"})
        assert bob.status_code == 303
        rows = [r for r in audit(fleet, "login") if r.outcome == "locked"]
        assert rows and rows[0].details["locked"] == "username"


def test_ten_failures_lock_the_address_whatever_the_username(tmp_path):
    with running(tmp_path, **{"server.trusted_proxies": ["127.0.0.1"]}) as (base, fleet):
        fleet.accounts.users.add("bob", OTHER_PASSWORD, org="default", role="viewer")
        here = {"X-Forwarded-For": "203.0.113.5"}
        for i in range(10):
            _, answer = login(base, f"user{i}", "some wrong password", headers=here)
            assert answer.status_code == 401
        _, locked = login(base, "bob", OTHER_PASSWORD, headers=here)
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
        _, elsewhere = login(base, "bob", OTHER_PASSWORD, headers={"X-Forwarded-For": "203.0.113.6"})
        assert elsewhere.status_code == 303


def test_a_successful_login_does_not_count_as_a_failure(server):
    base, fleet = server
    fleet.accounts.users.add("alice", PASSWORD, org="default", role="viewer")
    for _ in range(12):
        _, answer = login(base, "alice", PASSWORD)
        assert answer.status_code == 303


# --- logout and the session API -----------------------------------------------------------------------

def test_logout_needs_the_csrf_token_and_ends_the_session(server):
    base, fleet = server
    fleet.accounts.users.add("alice", PASSWORD, org="default", role="viewer")
    http, _ = login(base, "alice", PASSWORD)
    sid = http.cookies["dashfleet_session"]
    assert http.post(f"{base}/logout", allow_redirects=False).status_code == 403
    token = csrf(http, base)["X-CSRF-Token"]
    answer = http.post(f"{base}/logout", data={"csrf_token": token}, allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["Location"] == "/login"
    assert "dashfleet_session=;" in answer.headers["Set-Cookie"]
    assert requests.get(f"{base}/api/session", cookies={"dashfleet_session": sid}).status_code == 401
    assert [r.outcome for r in audit(fleet, "logout")] == ["ok"]


def test_session_document_and_switching_organisation(server):
    base, fleet = server
    acme = fleet.accounts.orgs.create("Acme")
    fleet.accounts.orgs.create("Globex")
    fleet.accounts.users.add("alice", PASSWORD, org="default", role="viewer")
    fleet.accounts.users.set_role("alice", acme.id, "operator")
    http, _ = login(base, "alice", PASSWORD)
    doc = http.get(f"{base}/api/session").json()
    assert doc == {"user": "alice", "org": "acme",  # the first of the user's organisations
                   "orgs": [{"id": "acme", "name": "Acme", "role": "operator"},
                            {"id": "default", "name": "Default", "role": "viewer"}],
                   "server_admin": False, "csrf_token": doc["csrf_token"], "totp": False, "role": "operator"}
    assert http.post(f"{base}/api/session/org", json={"org": "default"}).status_code == 403  # no CSRF token
    switched = http.post(f"{base}/api/session/org", json={"org": "default"}, headers=csrf(http, base))
    assert switched.status_code == 200 and switched.json()["role"] == "viewer"
    assert http.get(f"{base}/api/session").json()["org"] == "default"
    for org in ("globex", "nowhere", "../x"):
        assert http.post(f"{base}/api/session/org", json={"org": org}, headers=csrf(http, base)).status_code == 404
    # a server admin may switch to any organisation
    fleet.accounts.users.add("root", OTHER_PASSWORD, server_admin=True)
    admin, _ = login(base, "root", OTHER_PASSWORD)
    assert admin.get(f"{base}/api/session").json()["server_admin"] is True
    assert admin.post(f"{base}/api/session/org", json={"org": "globex"}, headers=csrf(admin, base)).status_code == 200
    assert admin.get(f"{base}/api/session").json()["org"] == "globex"
    # a bearer credential reads the document but has no session to change
    bearer = {"Authorization": "Bearer login-test-fleet-token"}
    key, secret = fleet.accounts.keys.create("acme", name="ro", scopes=["read"])
    doc = requests.get(f"{base}/api/session", headers={"Authorization": f"Bearer {secret}"}).json()
    assert doc["user"] is None and doc["org"] == "acme" and doc["role"] == "viewer" and doc["csrf_token"] is None
    assert requests.post(f"{base}/api/session/org", json={"org": "acme"},
                         headers={"Authorization": f"Bearer {secret}"}).status_code == 403
    assert requests.get(f"{base}/api/session", headers=bearer).status_code == 403  # a report credential


def test_password_change_ends_every_other_session_and_keeps_this_browser(server):
    base, fleet = server
    fleet.accounts.users.add("alice", PASSWORD, org="default", role="viewer")
    here, _ = login(base, "alice", PASSWORD)
    there, _ = login(base, "alice", PASSWORD)
    old = here.cookies["dashfleet_session"]
    wrong = here.post(f"{base}/api/session/password", json={"current": "nope nope nope", "new": OTHER_PASSWORD},
                      headers=csrf(here, base))
    assert wrong.status_code == 422 and wrong.json()["fields"] == ["current"]
    weak = here.post(f"{base}/api/session/password", json={"current": PASSWORD, "new": "short"},
                     headers=csrf(here, base))
    assert weak.status_code == 422 and weak.json()["fields"] == ["new"]
    done = here.post(f"{base}/api/session/password", json={"current": PASSWORD, "new": OTHER_PASSWORD},
                     headers=csrf(here, base))
    assert done.status_code == 200 and done.cookies["dashfleet_session"] != old
    assert here.get(f"{base}/api/session").json()["user"] == "alice"
    assert there.get(f"{base}/api/session").status_code == 401
    assert requests.get(f"{base}/api/session", cookies={"dashfleet_session": old}).status_code == 401
    assert login(base, "alice", PASSWORD)[1].status_code == 401
    assert login(base, "alice", OTHER_PASSWORD)[1].status_code == 303
    assert [r.outcome for r in audit(fleet, "user.password")] == ["ok", "refused", "refused"]


# --- the second factor --------------------------------------------------------------------------------

def _enrol(http, base) -> tuple[str, list[str]]:
    begun = http.post(f"{base}/api/session/totp", headers=csrf(http, base))
    assert begun.status_code == 200 and set(begun.json()) == {"secret", "otpauth_uri", "qr_svg"}
    secret = begun.json()["secret"]
    assert begun.json()["qr_svg"].startswith("<svg") and "<script" not in begun.json()["qr_svg"]
    bad = http.post(f"{base}/api/session/totp/confirm", json={"code": "000000"}, headers=csrf(http, base))
    assert bad.status_code == 422
    done = http.post(f"{base}/api/session/totp/confirm", json={"code": pyotp.TOTP(secret).now()},
                     headers=csrf(http, base))
    assert done.status_code == 200
    codes = done.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


def _second_step(base, username, password, code, nxt="/fleet"):
    http, first = login(base, username, password, nxt=nxt)
    assert first.status_code == 303 and first.headers["Location"].startswith("/login/code")
    assert http.get(f"{base}/api/session").status_code == 401  # half a login is no login
    token = form_token(http, base + first.headers["Location"])
    answer = http.post(f"{base}/login/code", data={"code": code, "csrf_token": token, "next": nxt},
                       allow_redirects=False)
    return http, answer


def test_a_user_with_totp_logs_in_with_a_code_or_a_recovery_code_once(server):
    base, fleet = server
    fleet.accounts.users.add("alice", PASSWORD, org="default", role="operator")
    http, _ = login(base, "alice", PASSWORD)
    secret, codes = _enrol(http, base)
    assert http.get(f"{base}/api/session").json()["totp"] is True
    http, wrong = _second_step(base, "alice", PASSWORD, "123456")
    assert wrong.status_code == 401 and "dashfleet_session" not in http.cookies
    next_step = pyotp.TOTP(secret).at(time.time() + 30)  # the enrolment used this step's code
    http, ok = _second_step(base, "alice", PASSWORD, next_step, nxt="/history")
    assert ok.status_code == 303 and ok.headers["Location"] == "/history"
    assert http.get(f"{base}/api/session").json()["user"] == "alice"
    http, recovered = _second_step(base, "alice", PASSWORD, codes[3].upper())
    assert recovered.status_code == 303 and http.get(f"{base}/api/session").status_code == 200
    _, reused = _second_step(base, "alice", PASSWORD, codes[3])
    assert reused.status_code == 401
    rows = [r for r in audit(fleet, "login") if r.outcome == "ok"]
    assert [r.params.get("second_factor") for r in rows][:2] == ["recovery", "totp"]  # newest first
    # removing it needs the password
    assert http.delete(f"{base}/api/session/totp", json={"password": "wrong one here"},
                       headers=csrf(http, base)).status_code == 422
    assert http.delete(f"{base}/api/session/totp", json={"password": PASSWORD},
                       headers=csrf(http, base)).status_code == 204
    assert login(base, "alice", PASSWORD)[1].headers["Location"] == "/fleet"


def test_require_2fa_sends_operators_to_enrol_before_the_dashboard(tmp_path):
    with running(tmp_path, **{"server.require_2fa": True}) as (base, fleet):
        fleet.accounts.users.add("olga", PASSWORD, org="default", role="operator")
        fleet.accounts.users.add("vera", OTHER_PASSWORD, org="default", role="viewer")
        assert login(base, "vera", OTHER_PASSWORD)[1].headers["Location"] == "/fleet"  # viewers are not forced
        http, first = login(base, "olga", PASSWORD, nxt="/history")
        assert first.status_code == 303 and first.headers["Location"] == "/login/enrol?next=/history"
        assert http.get(f"{base}/api/session").status_code == 401
        assert http.get(f"{base}/fleet", allow_redirects=False).status_code == 302
        page = http.get(f"{base}/login/enrol?next=/history")
        secret = re.search(r'id="enrol-secret" class="mono">([A-Z2-7]+)<', page.text).group(1)
        assert 'src="data:image/svg+xml;base64,' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        done = http.post(f"{base}/login/enrol", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token,
                                                      "next": "/history"}, allow_redirects=False)
        assert done.status_code == 200 and len(re.findall(r"<li>[a-z0-9-]{14}</li>", done.text)) == 10
        assert http.get(f"{base}/api/session").json()["totp"] is True
        # it cannot be removed while the server requires it
        assert http.delete(f"{base}/api/session/totp", json={"password": PASSWORD},
                           headers=csrf(http, base)).status_code == 409
        # a session made before the rule applied to someone without a second factor is no login
        fleet.accounts.users.set_role("vera", "default", "admin")
        vera, _ = login(base, "vera", OTHER_PASSWORD)
        assert vera.get(f"{base}/api/session").status_code == 401


# --- the users of an organisation ---------------------------------------------------------------------

def test_org_admins_manage_users_and_every_change_ends_the_users_sessions(server):
    base, fleet = server
    acme = fleet.accounts.orgs.create("Acme").id
    fleet.accounts.orgs.create("Globex")
    fleet.accounts.users.add("ada", PASSWORD, org=acme, role="admin")
    admin, _ = login(base, "ada", PASSWORD)
    h = csrf(admin, base)
    url = f"{base}/api/orgs/{acme}/users"
    assert requests.get(url).status_code == 401
    assert admin.post(url, json={"username": "vic", "password": OTHER_PASSWORD, "role": "viewer"}).status_code == 403
    added = admin.post(url, json={"username": "vic", "password": OTHER_PASSWORD, "role": "viewer"}, headers=h)
    assert added.status_code == 201
    assert added.json() == {"user": {"username": "vic", "role": "viewer", "server_admin": False, "totp": False,
                                     "created_at": added.json()["user"]["created_at"]}}
    assert admin.post(url, json={"username": "vic", "password": OTHER_PASSWORD, "role": "viewer"},
                      headers=h).status_code == 409
    weak = admin.post(url, json={"username": "wes", "password": "password", "role": "viewer"}, headers=h)
    assert weak.status_code == 422 and weak.json()["fields"] == ["password"]
    assert admin.post(url, json={"username": "wes", "password": OTHER_PASSWORD, "role": "boss"},
                      headers=h).status_code == 422
    listed = admin.get(url).json()["users"]
    assert [(u["username"], u["role"]) for u in listed] == [("ada", "admin"), ("vic", "viewer")]
    # an existing user of another organisation gets a role here
    fleet.accounts.users.add("gus", PASSWORD, org="globex", role="admin")
    assert admin.post(url, json={"username": "gus", "role": "operator"}, headers=h).status_code == 201
    assert admin.post(url, json={"username": "nobody", "role": "operator"}, headers=h).status_code == 404
    # the viewer's session ends with the role change, at once
    vic, _ = login(base, "vic", OTHER_PASSWORD)
    assert vic.get(f"{base}/api/fleet").status_code == 200
    assert vic.get(url).status_code == 403  # a viewer manages no one
    assert admin.patch(f"{url}/vic", json={"role": "operator"}, headers=h).json()["user"]["role"] == "operator"
    assert vic.get(f"{base}/api/fleet").status_code == 401
    # the last admin stays
    assert admin.patch(f"{url}/ada", json={"role": "viewer"}, headers=h).status_code == 409
    assert admin.delete(f"{url}/ada", headers=h).status_code == 409
    # another organisation is not there for this admin
    assert admin.get(f"{base}/api/orgs/globex/users").status_code == 404
    assert admin.delete(f"{base}/api/orgs/globex/users/gus", headers=h).status_code == 404
    # removal: gus keeps globex; vic (in no other organisation) is gone
    assert admin.delete(f"{url}/gus", headers=h).status_code == 204
    assert fleet.accounts.users.get("gus").roles == {"globex": "admin"}
    assert admin.delete(f"{url}/vic", headers=h).status_code == 204
    assert fleet.accounts.users.get("vic") is None
    assert login(base, "vic", OTHER_PASSWORD)[1].status_code == 401
    rows = audit(fleet, "user.add") + audit(fleet, "user.role") + audit(fleet, "user.remove")
    assert {r.org for r in rows} == {"acme"} and all(r.actor in ("user:ada", "anonymous") for r in rows)
    assert OTHER_PASSWORD not in repr([r.model_dump() for r in rows])


def test_the_server_operator_and_server_admins_manage_any_organisation(tmp_path):
    op = "op-token-for-the-login-tests-0123456789"
    with running(tmp_path, **{"actions.token": op}) as (base, fleet):
        fleet.accounts.orgs.create("Globex")
        fleet.accounts.users.add("gus", PASSWORD, org="globex", role="admin")
        listed = requests.get(f"{base}/api/orgs/globex/users", headers={"Authorization": f"Bearer {op}"})
        assert listed.status_code == 200 and [u["username"] for u in listed.json()["users"]] == ["gus"]
        # the operator's token names one organisation per request: its session document lists only that one
        doc = requests.get(f"{base}/api/session", headers={"Authorization": f"Bearer {op}",
                                                          "X-DashFleet-Org": "globex"}).json()
        assert doc["user"] is None and doc["org"] == "globex" and doc["role"] == "admin"
        assert [o["id"] for o in doc["orgs"]] == ["globex"]
        fleet.accounts.users.add("root", OTHER_PASSWORD, server_admin=True)
        root, _ = login(base, "root", OTHER_PASSWORD)
        assert root.post(f"{base}/api/orgs/globex/users", json={"username": "root", "role": "admin"},
                         headers=csrf(root, base)).status_code == 201


# --- the first server admin ---------------------------------------------------------------------------

def test_the_setup_link_is_announced_once_and_creates_the_first_server_admin(server, caplog):
    base, fleet = server
    from dashfleet_web.first_admin import announce

    with caplog.at_level("WARNING", logger="dashfleet.setup"):
        link = announce(fleet)
        assert announce(fleet) is None  # once per data folder, whichever process asks
    assert link and link in caplog.text and caplog.text.count("/setup/") == 1
    path = link[link.index("/setup/"):]
    http = requests.Session()
    assert http.get(base + path).status_code == 200
    token = form_token(http, base + path)
    weak = http.post(base + path, data={"username": "root", "password": "short", "password2": "short",
                                        "csrf_token": token}, allow_redirects=False)
    assert weak.status_code == 422 and "12" in weak.text  # the link is not used up by a refused password
    done = http.post(base + path, data={"username": "root", "password": PASSWORD, "password2": PASSWORD,
                                        "csrf_token": token}, allow_redirects=False)
    assert done.status_code == 303 and done.headers["Location"] == "/fleet"
    doc = http.get(f"{base}/api/session").json()
    assert doc["user"] == "root" and doc["server_admin"] is True and doc["role"] == "admin"
    again = requests.Session()
    assert again.get(base + path).status_code == 410
    assert announce(fleet) is None  # a user exists
    assert [r.outcome for r in audit(fleet, "user.setup")] == ["ok"]


def test_an_unknown_or_expired_setup_link_is_gone(server):
    base, fleet = server
    assert requests.get(f"{base}/setup/not-a-real-token").status_code == 410
    token, _ = fleet.accounts.setup_links.create()
    fleet.storage.kv_delete("setup_links", __import__("hashlib").sha256(token.encode()).hexdigest(), org="~server")
    assert requests.get(f"{base}/setup/{token}").status_code == 410
