"""`dashfleet org` and `dashfleet key`: the real command on a real SQLite file, checked through the
real app over the same file (what a running server would see) and the audit log."""

from __future__ import annotations

import getpass
import json
import os
import subprocess

import pytest

from conftest import dashfleet_cmd
from dashfleet_core.accounts.scope import digest
from dashfleet_core.fleet import Fleet
from dashfleet_web.app import create_app

ACTION_TOKEN = "action-token-of-the-cli-account-tests"


@pytest.fixture
def shell(tmp_path):
    """Run `dashfleet ...` on the test's storage; returns the finished process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_", "ACTION_"))}
    env["DASHFLEET_STORAGE"] = f"sqlite:///{tmp_path}/dashfleet.db"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(dashfleet_cmd() + list(args), cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)

    return run


@pytest.fixture
def server(settings_factory):
    """The app over the same storage the commands write (reads closed, as by default)."""
    fleet = Fleet(settings_factory({"server.public_read": False, "actions.token": ACTION_TOKEN,
                                    "server.report_self": False}))
    yield fleet, create_app(fleet=fleet, start=False).test_client()
    fleet.stop()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def last_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_org_create_prints_the_id_and_the_admin_key_once(shell, server):
    fleet, client = server
    done = shell("org", "create", "Acme Ltd.")
    assert done.returncode == 0, done.stderr
    assert "'acme-ltd'" in done.stdout and "shown this once" in done.stdout
    secret = last_line(done.stdout)
    assert secret.startswith("dfk_")
    r = client.get("/api/orgs/acme-ltd/keys", headers=bearer(secret))
    assert r.status_code == 200 and [k["name"] for k in r.json["keys"]] == ["admin"]
    again = shell("org", "create", "ACME ltd")
    assert again.returncode == 1 and "exists already" in again.stderr
    bad = shell("org", "create", "!!!")
    assert bad.returncode == 1 and "no letter or digit" in bad.stderr
    listed = shell("org", "list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "CREATED", "(UTC)", "KEYS"]
    assert lines[1].split()[:2] == ["default", "Default"]
    assert lines[2].split()[:3] == ["acme-ltd", "Acme", "Ltd."] and lines[2].split()[-1] == "1"
    assert secret not in listed.stdout


def test_key_create_list_revoke_and_a_revoked_key_is_refused_by_the_server(shell, server):
    fleet, client = server
    shell("org", "create", "Acme")
    done = shell("key", "create", "--org", "acme", "--scope", "read", "--scope", "report", "--name", "lab agents",
                 "--expires", "90d")
    assert done.returncode == 0, done.stderr
    secret = last_line(done.stdout)
    key_id = secret[4:16]
    assert f"Key {key_id} of 'acme' (report, read, expires" in done.stdout
    assert client.get("/api/fleet", headers=bearer(secret)).status_code == 200
    assert client.post("/api/fleet/report", json={"machine_id": "pc-1", "seq": 1}, headers=bearer(secret)).status_code == 201
    assert fleet.storage.machine("pc-1", org="acme") is not None

    listed = shell("key", "list", "--org", "acme")
    assert listed.returncode == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "SCOPES", "CREATED", "(UTC)", "LAST", "USED", "EXPIRES"]
    row = next(r for r in rows if r.startswith(key_id))
    assert "lab agents" in row and "report,read" in row and "never" not in row  # used, and it expires
    assert secret not in listed.stdout and digest(secret) not in listed.stdout

    revoked = shell("key", "revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    r = client.get("/api/fleet", headers=bearer(secret))
    assert r.status_code == 401
    assert key_id not in shell("key", "list", "--org", "acme").stdout
    again = shell("key", "revoke", key_id)
    assert again.returncode == 1 and "no key" in again.stderr


def test_key_commands_refuse_bad_input_with_what_to_do(shell):
    shell("org", "create", "Acme")
    cases = [(("key", "create", "--org", "nowhere", "--scope", "read"), 1, "no organisation 'nowhere'"),
             (("key", "create", "--org", "acme", "--scope", "root"), 2, "'root' is not one of"),
             (("key", "create", "--org", "acme"), 2, "--scope"),
             (("key", "create", "--org", "acme", "--scope", "read", "--expires", "soon"), 2, "duration such as 90d"),
             (("key", "create", "--org", "acme", "--scope", "read", "--expires", "2001-01-01"), 2, "in the past"),
             (("key", "list", "--org", "nowhere"), 1, "no organisation 'nowhere'"),
             (("key", "revoke", "zzz"), 1, "no key 'zzz'")]
    for args, rc, words in cases:
        done = shell(*args)
        assert done.returncode == rc and words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert len(shell("key", "list", "--org", "acme").stdout.splitlines()) == 2  # the header and the admin key


def test_cli_changes_are_audited_as_the_os_user_without_secrets(shell, server):
    fleet, _ = server
    org_key = last_line(shell("org", "create", "Acme").stdout)
    secret = last_line(shell("key", "create", "--org", "acme", "--scope", "operate").stdout)
    shell("key", "create", "--org", "acme", "--scope", "read", "--expires", "soon")
    shell("key", "revoke", secret[4:16])
    shell("org", "create", "Acme")  # refused: exists
    shell("key", "create", "--org", "nowhere", "--scope", "read")  # refused: no such org
    actor = f"cli:{getpass.getuser()}"
    acme = [(r.action, r.actor, r.outcome) for r in reversed(fleet.storage.audit(org="acme"))]
    assert acme == [("org.create", actor, "ok"), ("key.create", actor, "ok"), ("key.create", actor, "refused"),
                    ("key.revoke", actor, "ok")]
    default = [(r.action, r.outcome, r.params.get("org")) for r in reversed(fleet.storage.audit(org="default"))]
    assert default == [("org.create", "refused", None), ("key.create", "refused", "nowhere")]
    text = json.dumps([r.model_dump(mode="json") for org in ("acme", "default") for r in fleet.storage.audit(org=org)])
    for s in (org_key, secret):
        assert s not in text and digest(s) not in text
    shown = shell("audit", "--org", "acme")
    assert shown.returncode == 0 and shown.stdout.count("key.create") == 2
