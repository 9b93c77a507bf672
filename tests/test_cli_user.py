"""`dashfleet user ...` run as the real command on a real SQLite file: add (password from stdin,
never an argument), list, passwd and remove end the user's sessions, setup-link; all audited."""

from __future__ import annotations

import json
import os
import subprocess

from dashfleet_core.accounts import Accounts
from dashfleet_core.config import load_settings
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage

from conftest import dashfleet_cmd

PASSWORD = "correct horse battery"


def run(tmp_path, *args, stdin: str | None = None):
    config = tmp_path / "dashfleet.toml"
    if not config.exists():
        config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n\n[server]\n'
                          f'data_dir = "{tmp_path}"\nport = 5123\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_", "ACTION_"))}
    env["DASHFLEET_CONFIG"] = str(config)
    return subprocess.run([*dashfleet_cmd(), "user", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)


def opened(tmp_path):
    settings = load_settings(tmp_path / "dashfleet.toml", env={})
    storage = open_storage(settings, make_plugin_manager(settings))
    return Accounts(storage, settings), storage


def test_user_add_list_passwd_remove(tmp_path):
    added = run(tmp_path, "add", "Ada", "--org", "default", "--role", "admin", "--server-admin", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "'ada' added: admin of 'default' and server admin" in added.stdout and PASSWORD not in added.stdout
    weak = run(tmp_path, "add", "bob", "--password-stdin", stdin="bob\n")
    assert weak.returncode == 1 and "at least 12" in weak.stderr
    taken = run(tmp_path, "add", "ada", "--password-stdin", stdin=PASSWORD + "\n")
    assert taken.returncode == 1 and "taken" in taken.stderr
    assert run(tmp_path, "add", "bob", "--org", "nowhere", "--password-stdin", stdin=PASSWORD + "\n").returncode == 1

    listed = json.loads(run(tmp_path, "list", "--json").stdout)["users"]
    assert [(u["username"], u["roles"], u["server_admin"], u["totp"]) for u in listed] == [
        ("ada", {"default": "admin"}, True, False)]
    assert "ada" in run(tmp_path, "list").stdout

    accounts, storage = opened(tmp_path)
    try:
        user = accounts.users.get("ada")
        sid, _ = accounts.sessions.create("ada", user.epoch, "default")
        assert run(tmp_path, "passwd", "ada", "--password-stdin", stdin="another long passphrase\n").returncode == 0
        user = accounts.users.get("ada")
        assert user.epoch == 1 and accounts.sessions.get(sid) is None
        assert accounts.users.check_password("ada", "another long passphrase")
        assert run(tmp_path, "remove", "ada").returncode == 0
        assert accounts.users.get("ada") is None
        rows = storage.audit(org="default", limit=10)
        assert [(r.action, r.actor.startswith("cli:")) for r in rows] == [
            ("user.remove", True), ("user.password", True), ("user.add", True)]
        assert "passphrase" not in repr([r.model_dump() for r in rows])
    finally:
        storage.close()
    gone = run(tmp_path, "remove", "ada")
    assert gone.returncode == 1 and "no user" in gone.stderr


def test_setup_link_only_while_there_is_no_user(tmp_path):
    made = run(tmp_path, "setup-link")
    assert made.returncode == 0
    link = next(word for word in made.stdout.split() if "/setup/" in word)
    assert link.startswith("http://127.0.0.1:5123/setup/")
    accounts, storage = opened(tmp_path)
    try:
        assert accounts.setup_links.valid(link.rsplit("/", 1)[1])
        assert accounts.setup_links.announce_once() is None  # the server will not print another now
    finally:
        storage.close()
    assert run(tmp_path, "add", "ada", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert run(tmp_path, "setup-link", "--if-needed").stdout == ""
    refused = run(tmp_path, "setup-link")
    assert refused.returncode == 1 and "users exist" in refused.stderr


def test_user_add_prompts_twice_and_refuses_two_different_passwords(tmp_path):
    differ = run(tmp_path, "add", "ada", stdin=f"{PASSWORD}\nsomething else entirely\n")
    assert differ.returncode == 1 and "differ" in differ.stderr
    same = run(tmp_path, "add", "ada", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert same.returncode == 0, same.stderr
    assert PASSWORD not in same.stdout + same.stderr
    accounts, storage = opened(tmp_path)
    try:
        assert accounts.users.check_password("ada", PASSWORD)
    finally:
        storage.close()
