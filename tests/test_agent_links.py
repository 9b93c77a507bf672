"""One-time agent links through the real app on a real SQLite file, with real credentials and reads
closed (the real default): creation, the path rules, single use, expiry, revocation, enrolment
zips, organisations, audit rows, and the `dashfleet link` commands."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import dashfleet_cmd
from dashfleet_core.accounts import AccountError
from dashfleet_core.accounts.links import NAMESPACE, SERVER_SCOPE, AgentLinks
from dashfleet_core.config import AGENT_CONFIG_FILE, find_agent_config_file
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import utcnow
from dashfleet_web.app import create_app

ACTION_TOKEN = "action-token-of-the-link-tests"
OPERATOR = {"Authorization": f"Bearer {ACTION_TOKEN}"}
AGENT_BYTES = b"MZ" + os.urandom(3000) + b"agent"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def downloads(tmp_path) -> Path:
    folder = tmp_path / "dist"
    folder.mkdir()
    (folder / "fleet_agent.exe").write_bytes(AGENT_BYTES)
    return folder


@pytest.fixture
def make_rig(settings_factory, downloads):
    made = []

    def make(**overrides):
        settings = settings_factory({"server.public_read": False, "actions.token": ACTION_TOKEN,
                                     "server.report_self": False, "server.downloads_dir": str(downloads),
                                     **overrides})
        fleet = Fleet(settings)
        made.append(fleet)
        return fleet, create_app(fleet=fleet, start=False).test_client()

    yield make
    for fleet in made:
        fleet.stop()


@pytest.fixture
def rig(make_rig):
    return make_rig(**{"server.public_url": "https://fleet.example"})


def create(client, headers=OPERATOR, **body):
    return client.post("/api/agent/link", json={"ttl": 3600, "path": "dist/fleet_agent.exe", **body}, headers=headers)


def audit_rows(fleet, org="default", action_prefix="agent_link."):
    return [row for row in fleet.storage.audit(org=org, limit=200) if row.action.startswith(action_prefix)]


def test_a_link_is_made_by_the_operator_and_downloads_once_with_its_length(rig):
    fleet, client = rig
    r = create(client)
    assert r.status_code == 201, r.json
    link, token = r.json["link"], r.json["link"].rsplit("/", 1)[1]
    assert link.startswith("/download/agent/") and r.json["url"] == "https://fleet.example" + link
    assert r.json["path"] == "fleet_agent.exe" and r.json["org"] == "default" and r.json["enroll"] is False
    # only the token's digest is stored
    stored = fleet.storage.kv_list(NAMESPACE, org=SERVER_SCOPE)
    assert list(stored) == [r.json["id"]] and token not in str(stored)

    listed = client.get("/api/agent/links", headers=OPERATOR).json["links"]
    assert [item["id"] for item in listed] == [r.json["id"]] and token not in str(listed)
    assert listed[0]["created_by"] == "action-token" and listed[0]["expires_at"] == r.json["expires_at"]

    assert client.head(link).status_code == 200  # a preview does not use the link
    with client.get(link) as first:
        assert first.status_code == 200 and first.data == AGENT_BYTES
        assert first.headers["Content-Length"] == str(len(AGENT_BYTES))
        assert first.headers["Content-Disposition"] == "attachment; filename=fleet_agent.exe"
        assert first.headers["Cache-Control"] == "no-store"
    for _ in range(2):
        again = client.get(link)
        assert again.status_code == 410 and "used already" in again.json["error"]
    assert client.head(link).status_code == 410
    assert client.get("/api/agent/links", headers=OPERATOR).json["links"] == []

    downloads = audit_rows(fleet, action_prefix="agent_link.download")
    assert [row.outcome for row in downloads] == ["refused", "refused", "ok"]  # newest first
    assert downloads[-1].actor == f"link:{r.json['id']}" and downloads[-1].details["client"] == "127.0.0.1"
    [made] = audit_rows(fleet, action_prefix="agent_link.create")
    assert made.outcome == "ok" and made.actor == "action-token" and made.params["link"] == r.json["id"]
    assert token not in str(audit_rows(fleet))


def test_an_unknown_token_is_404_and_a_forged_one_for_a_known_id_too(rig):
    fleet, client = rig
    r = create(client)
    link_id = r.json["id"]
    assert client.get("/download/agent/nothing-like-a-token").status_code == 404
    forged = client.get(f"/download/agent/{link_id}_{'A' * 43}")
    assert forged.status_code == 404 and "no such download link" in forged.json["error"]
    with client.get(r.json["link"]) as real:
        assert real.status_code == 200  # the real one was not used up by the forgery


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "dist/../../x", "a/../../x", "C:/Windows/x.exe"])
def test_paths_that_leave_the_folder_are_refused_with_400(rig, path):
    fleet, client = rig
    r = create(client, path=path)
    assert r.status_code == 400 and r.json["fields"] == ["path"], r.json
    assert fleet.storage.kv_list(NAMESPACE, org=SERVER_SCOPE) == {}
    [row] = audit_rows(fleet)
    assert row.outcome == "refused" and row.details["status"] == 400 and row.params["path"] == path


def test_a_symlink_out_of_the_folder_is_refused_and_a_missing_file_is_404(rig, downloads, tmp_path):
    fleet, client = rig
    secret = tmp_path / "secret.txt"
    secret.write_text("not for download")
    (downloads / "escape.exe").symlink_to(secret)
    (downloads / "sub").mkdir()
    (downloads / "sub" / "up").symlink_to(tmp_path)
    for path in ("escape.exe", "sub/up/secret.txt"):
        r = create(client, path=path)
        assert r.status_code == 400 and "leads out" in r.json["error"], r.json
    missing = create(client, path="dist/nope.exe")
    assert missing.status_code == 404 and "nope.exe" in missing.json["error"]
    assert create(client, path="sub").status_code == 404  # a folder is no file
    (downloads / "inside.exe").symlink_to(downloads / "fleet_agent.exe")  # a symlink within: fine
    assert create(client, path="inside.exe").status_code == 201


def test_a_file_turned_into_a_symlink_out_after_creation_is_not_handed_out(rig, downloads, tmp_path):
    fleet, client = rig
    r = create(client)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for download")
    (downloads / "fleet_agent.exe").unlink()
    (downloads / "fleet_agent.exe").symlink_to(secret)
    refused = client.get(r.json["link"])
    assert refused.status_code == 404 and b"not for download" not in refused.data
    assert "no longer available" in refused.json["error"]
    row = audit_rows(fleet, action_prefix="agent_link.download")[0]
    assert row.outcome == "refused" and "leads out" in row.details["error"]


@pytest.mark.parametrize("ttl", [59, 604801, 0, -5, "3600", 3600.5, True, None])
def test_a_ttl_outside_60_to_604800_seconds_is_422(rig, ttl):
    fleet, client = rig
    r = create(client, ttl=ttl)
    assert r.status_code == 422 and r.json["fields"] == ["ttl"], r.json


def test_the_ttl_bounds_are_accepted_and_the_expiry_follows(rig):
    fleet, client = rig
    before = utcnow()
    for ttl in (60, 604800):
        r = create(client, ttl=ttl)
        assert r.status_code == 201
        expires = r.json["expires_at"]
        assert timedelta(seconds=ttl - 5) < datetime.fromisoformat(expires) - before <= timedelta(seconds=ttl + 5)


def test_an_expired_link_answers_410_and_leaves_the_list(rig):
    fleet, client = rig
    r = create(client, ttl=60)
    link_id = r.json["id"]
    record = fleet.storage.kv_get(NAMESPACE, link_id, org=SERVER_SCOPE)
    record["expires_at"] = (utcnow() - timedelta(seconds=1)).isoformat()  # its minute is over
    fleet.storage.kv_put(NAMESPACE, link_id, record, org=SERVER_SCOPE, expires_at=utcnow() + timedelta(days=30))
    assert client.get("/api/agent/links", headers=OPERATOR).json["links"] == []
    gone = client.get(r.json["link"])
    assert gone.status_code == 410 and "expired" in gone.json["error"]
    assert client.delete(f"/api/agent/links/{link_id}", headers=OPERATOR).status_code == 404


def test_the_clock_decides_expiry_in_the_core(settings_factory, downloads):
    settings = settings_factory({"server.downloads_dir": str(downloads)})
    fleet = Fleet(settings)
    try:
        now = [utcnow()]
        links = AgentLinks(fleet.storage, settings, fleet.accounts.keys, clock=lambda: now[0])
        token, link = links.create("default", "fleet_agent.exe", 60)
        now[0] += timedelta(seconds=59)
        assert links.peek(token).id == link.id
        now[0] += timedelta(seconds=1)
        with pytest.raises(AccountError) as gone:
            links.claim(token)
        assert gone.value.status == 410
    finally:
        fleet.stop()


def test_a_revoked_link_answers_410_and_is_audited(rig):
    fleet, client = rig
    r = create(client)
    link_id = r.json["id"]
    assert client.delete(f"/api/agent/links/{link_id}", headers=OPERATOR).status_code == 204
    gone = client.get(r.json["link"])
    assert gone.status_code == 410 and "revoked" in gone.json["error"]
    assert client.delete(f"/api/agent/links/{link_id}", headers=OPERATOR).status_code == 404
    actions = [(row.action, row.outcome) for row in audit_rows(fleet)]
    assert actions == [("agent_link.revoke", "refused"), ("agent_link.download", "refused"),
                       ("agent_link.revoke", "ok"), ("agent_link.create", "ok")]


def test_who_may_make_list_and_revoke_links(rig):
    fleet, client = rig
    fleet.accounts.orgs.create("Acme")
    acme_admin = fleet.accounts.keys.create("acme", name="a", scopes=["admin"])[1]
    acme_read = fleet.accounts.keys.create("acme", name="r", scopes=["read", "operate"])[1]
    default_admin = fleet.accounts.keys.create("default", name="d", scopes=["admin"])[1]

    assert create(client, headers={}).status_code == 401
    assert create(client, headers=bearer("dfk_000000000000_" + "x" * 43)).status_code == 401
    assert create(client, headers=bearer(acme_read)).status_code == 403
    assert client.get("/api/agent/links", headers=bearer(acme_read)).status_code == 403
    assert client.get("/api/agent/links").status_code == 401

    mine = create(client, headers=bearer(acme_admin))
    assert mine.status_code == 201 and mine.json["org"] == "acme"
    assert create(client, headers=bearer(acme_admin), org="default").status_code == 403
    named = create(client, headers=bearer(acme_admin), org="acme")
    assert named.status_code == 201 and named.json["org"] == "acme"
    by_operator = create(client, org="acme")
    assert by_operator.status_code == 201 and by_operator.json["org"] == "acme"
    assert create(client, org="nobody").status_code == 404
    assert create(client, org="Not An Id").status_code == 422
    theirs = create(client, headers=bearer(default_admin))
    assert theirs.json["org"] == "default"

    acme_list = client.get("/api/agent/links", headers=bearer(acme_admin)).json["links"]
    assert {item["id"] for item in acme_list} == {mine.json["id"], named.json["id"], by_operator.json["id"]}
    operator_view = client.get("/api/agent/links", headers={**OPERATOR, "X-DashFleet-Org": "acme"}).json["links"]
    assert {item["id"] for item in operator_view} == {item["id"] for item in acme_list}
    # another organisation's link is no link of yours
    assert client.delete(f"/api/agent/links/{theirs.json['id']}", headers=bearer(acme_admin)).status_code == 404
    with client.get(theirs.json["link"]) as download:
        assert download.status_code == 200
    assert client.delete(f"/api/agent/links/{mine.json['id']}", headers=bearer(acme_admin)).status_code == 204
    created_in_acme = [row for row in audit_rows(fleet, "acme") if row.action == "agent_link.create"]
    assert [row.outcome for row in created_in_acme].count("ok") == 3
    refused = [row for row in created_in_acme if row.outcome == "refused"]  # the read key's, and naming default
    assert sorted(row.details["status"] for row in refused) == [403, 403]


def test_a_dashboard_admin_needs_the_csrf_token(rig):
    fleet, client = rig
    fleet.accounts.users.add("alice", "a long enough passphrase", org="default", role="admin")
    user = fleet.accounts.users.get("alice")
    sid, session = fleet.accounts.sessions.create("alice", user.epoch, "default")
    client.set_cookie("dashfleet_session", sid)
    refused = create(client, headers={})
    assert refused.status_code == 403 and "CSRF" in refused.json["error"]
    made = create(client, headers={"X-CSRF-Token": session.csrf_token})
    assert made.status_code == 201 and made.json["org"] == "default"
    assert client.get("/api/agent/links").json["links"][0]["created_by"] == "user:alice"


def test_bad_bodies_say_what_to_send(rig):
    fleet, client = rig
    assert client.post("/api/agent/link", headers=OPERATOR).status_code == 400
    assert client.post("/api/agent/link", data="[1]", content_type="application/json", headers=OPERATOR).status_code == 400
    r = create(client, colour="blue")
    assert r.status_code == 422 and r.json["fields"] == ["colour"]
    assert create(client, enroll="yes").status_code == 422
    assert create(client, path=["x"]).status_code == 422
    assert create(client, path="a\x00b").status_code == 400


def test_an_enrolling_link_needs_public_url(make_rig):
    fleet, client = make_rig()
    r = create(client, enroll=True)
    assert r.status_code == 422 and "public_url" in r.json["error"] and r.json["fields"] == ["enroll"]
    assert create(client).json["url"] is None


def test_an_enrolling_link_hands_out_a_zip_with_a_report_key_minted_at_download(rig):
    fleet, client = rig
    fleet.accounts.orgs.create("Acme")
    r = create(client, org="acme", enroll=True)
    assert r.status_code == 201 and r.json["enroll"] is True
    assert fleet.accounts.keys.list("acme") == []  # an unused link leaks no key
    with client.get(r.json["link"]) as got:
        assert got.status_code == 200 and got.headers["Content-Type"] == "application/zip"
        data = got.data
        assert got.headers["Content-Length"] == str(len(data))
        assert got.headers["Content-Disposition"] == "attachment; filename=fleet_agent-acme.zip"
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == [AGENT_CONFIG_FILE, "fleet_agent.exe"]
    assert archive.read("fleet_agent.exe") == AGENT_BYTES
    import tomllib
    config = tomllib.loads(archive.read(AGENT_CONFIG_FILE).decode())
    assert config["agent"]["server"] == "https://fleet.example"
    [key] = fleet.accounts.keys.list("acme")
    assert key.scopes == ("report",) and key.name == f"enrolled via link {r.json['id']}"
    assert fleet.accounts.keys.verify(config["agent"]["token"]).id == key.id
    assert (archive.getinfo(AGENT_CONFIG_FILE).external_attr >> 16) & 0o777 == 0o600
    assert client.get(r.json["link"]).status_code == 410
    assert len(fleet.accounts.keys.list("acme")) == 1  # a refused download mints nothing
    row = [row for row in audit_rows(fleet, "acme") if row.action == "agent_link.download"][-1]
    assert row.outcome == "ok" and row.details["key"] == key.id and config["agent"]["token"] not in str(row)


# --- the agent's config lookup ---------------------------------------------------------------------

def test_the_agent_finds_its_enrolled_config_beside_its_binary_then_in_its_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DASHFLEET_CONFIG", raising=False)
    binary_dir, work = tmp_path / "bin", tmp_path / "work"
    binary_dir.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    exe = str(binary_dir / "dashfleet-agent")
    assert find_agent_config_file(frozen=True, executable=exe) is None
    (work / "dashfleet.toml").write_text("")
    assert find_agent_config_file(frozen=True, executable=exe) == Path("dashfleet.toml")
    (work / AGENT_CONFIG_FILE).write_text("")
    assert find_agent_config_file(frozen=True, executable=exe) == Path(AGENT_CONFIG_FILE)
    (binary_dir / AGENT_CONFIG_FILE).write_text("")
    assert find_agent_config_file(frozen=True, executable=exe) == binary_dir.resolve() / AGENT_CONFIG_FILE
    # not frozen (`dashfleet agent` on Python): the interpreter's folder is not the agent's
    assert find_agent_config_file(frozen=False, executable=exe) == Path(AGENT_CONFIG_FILE)
    # --config and $DASHFLEET_CONFIG still come first
    assert find_agent_config_file("given.toml", frozen=True, executable=exe) == Path("given.toml")
    monkeypatch.setenv("DASHFLEET_CONFIG", "env.toml")
    assert find_agent_config_file(frozen=True, executable=exe) == Path("env.toml")


# --- dashfleet link ----------------------------------------------------------------------------------

def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_", "ACTION_"))}
    env["DASHFLEET_STORAGE"] = f"sqlite:///{tmp_path}/dashfleet.db"
    return subprocess.run(dashfleet_cmd() + list(args), cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)


def test_dashfleet_link_create_list_revoke(tmp_path, downloads, settings_factory):
    made = _cli(tmp_path, "link", "create", "--path", "dist/fleet_agent.exe", "--ttl", "600")
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip()
    assert link.startswith("/download/agent/") and "public_url" in made.stderr
    link_id = link.rsplit("/", 1)[1].split("_")[0]
    listed = _cli(tmp_path, "link", "list", "--org", "default")
    assert listed.returncode == 0 and link_id in listed.stdout and "fleet_agent.exe" in listed.stdout
    assert link.rsplit("/", 1)[1] not in listed.stdout
    assert _cli(tmp_path, "link", "create", "--path", "../x").returncode == 1
    assert _cli(tmp_path, "link", "create", "--path", "fleet_agent.exe", "--enroll").returncode == 1
    full = _cli(tmp_path, "link", "create", "--path", "fleet_agent.exe", "--ttl", "60", "--enroll",
                "--config", str(_public(tmp_path)))
    assert full.returncode == 0 and full.stdout.startswith("https://fleet.example/download/agent/"), full.stderr
    revoked = _cli(tmp_path, "link", "revoke", link_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    again = _cli(tmp_path, "link", "revoke", link_id)
    assert again.returncode == 1 and "no longer live" in again.stderr
    fleet = Fleet(settings_factory({"server.downloads_dir": str(downloads)}))
    try:
        assert fleet.accounts.links.get(link_id) is not None
        assert [link.enroll for link in fleet.accounts.links.list("default")] == [True]
        rows = [(row.action, row.outcome, row.actor.startswith("cli")) for row in audit_rows(fleet)]
        assert rows[0] == ("agent_link.revoke", "refused", True) and ("agent_link.create", "ok", True) in rows
    finally:
        fleet.stop()


def _public(tmp_path: Path) -> Path:
    config = tmp_path / "public.toml"
    config.write_text('[server]\npublic_url = "https://fleet.example"\n')
    return config
