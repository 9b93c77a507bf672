"""`dashfleet actions`, `dashfleet action run` and `dashfleet audit` as real subprocesses: exit codes
0 (ok), 1 (the action failed or is not supported here), 2 (refused), and the audit they leave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import dashfleet_cmd

OLD = time.time() - 30 * 86400


@pytest.fixture
def run(tmp_path):
    owned = tmp_path / "temp"
    owned.mkdir()
    (owned / "old.tmp").write_text("x" * 64)
    os.utime(owned / "old.tmp", (OLD, OLD))
    config = tmp_path / "dashfleet.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n'
        f'[actions]\nallowed = ["cleanup_temp", "cleanup_outlook"]\n'
        f'[plugins.cleanup_temp]\nfolders = [{json.dumps(str(owned))}]\n')
    env = {k: v for k, v in os.environ.items() if k not in ("DASHFLEET_CONFIG", "ACTION_TOKEN")}

    def invoke(*args):
        return subprocess.run(dashfleet_cmd() + list(args) + ["--config", str(config)],
                              capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)

    invoke.owned = owned
    return invoke


def test_actions_json_marks_the_allow_list(run):
    done = run("actions", "--json")
    assert done.returncode == 0, done.stderr
    entries = {e["name"]: e for e in json.loads(done.stdout)}
    assert entries["cleanup_temp"]["allowed"] and not entries["flush_dns"]["allowed"]
    assert entries["cleanup_temp"]["params"]["older_than_days"] == {
        "type": "integer", "default": 7, "description": "Only files not modified for this many days",
        "minimum": 0, "maximum": 3650}
    text = run("actions").stdout
    assert "flush_dns" in text and "not allowed" in text


def test_run_exit_codes_and_audit(run):
    dry = run("action", "run", "cleanup_temp", "--dry-run", "--param", "older_than_days=7")
    assert dry.returncode == 0 and "cleanup_temp: ok (dry run): would free 64 B in 1 file(s)" in dry.stdout
    assert (run.owned / "old.tmp").exists()
    real = run("action", "run", "cleanup_temp", "--json")
    assert real.returncode == 0 and json.loads(real.stdout)["details"]["bytes_freed"] == 64
    assert not (run.owned / "old.tmp").exists()
    if sys.platform.startswith("linux"):
        unsupported = run("action", "run", "cleanup_outlook", "--json")
        assert unsupported.returncode == 1
        assert json.loads(unsupported.stdout)["summary"].startswith("cleanup_outlook is not supported on linux")
    mistyped = run("action", "run", "cleanup_temp", "--param", "older_than_days=soon")
    assert mistyped.returncode == 2 and "older_than_days" in mistyped.stderr
    refused = run("action", "run", "flush_dns", "--dry-run", "--json")
    assert refused.returncode == 2 and json.loads(refused.stdout)["status"] == 403
    malformed = run("action", "run", "cleanup_temp", "--param", "older_than_days")
    assert malformed.returncode == 2 and "NAME=VALUE" in malformed.stderr
    rows = json.loads(run("audit", "--json").stdout)
    outcomes = [(r["action"], r["outcome"]) for r in rows]
    expected = [("flush_dns", "refused"), ("cleanup_temp", "refused"), ("cleanup_temp", "ok"),
                ("cleanup_temp", "ok")]
    if sys.platform.startswith("linux"):
        expected.insert(2, ("cleanup_outlook", "unsupported"))
    assert outcomes == expected
    assert len(json.loads(run("audit", "--json", "--limit", "2").stdout)) == 2
    table = run("audit").stdout
    assert "cleanup_temp" in table and "refused" in table


LOOSE_PLUGIN = '''
from pydantic import BaseModel

from dashfleet_core import hookimpl
from dashfleet_core.actions import BaseAction


class Params(BaseModel):  # a plain model: would turn "5" into 5 and has no dry_run
    count: int = 1


class Wipe(BaseAction):
    name = "wipe_things"
    description = "Changes the machine"
    Params = Params

    def run(self, params, context):
        return self.result(True, f"wiped {params.count}", params)


@hookimpl
def register_actions(register):
    register(Wipe())
'''


def test_an_action_with_plain_params_is_left_out_by_the_cli(tmp_path):
    (tmp_path / "loose_actions.py").write_text(LOOSE_PLUGIN)
    config = tmp_path / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n'
                      f'[plugins]\nmodules = ["loose_actions"]\n')
    env = {k: v for k, v in os.environ.items() if k not in ("DASHFLEET_CONFIG", "ACTION_TOKEN")}
    env["PYTHONPATH"] = str(tmp_path)

    def invoke(*args):
        return subprocess.run(dashfleet_cmd() + list(args) + ["--config", str(config)],
                              capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)

    listed = invoke("actions")
    assert listed.returncode == 0 and "cleanup_temp" in listed.stdout and "wipe_things" not in listed.stdout
    assert ("action 'wipe_things' left out: plugin 'loose_actions': 'Params' (Params) must derive from "
            "dashfleet_core.actions.ActionParams") in listed.stderr
    ran = invoke("action", "run", "wipe_things", "--param", 'count="5"')
    assert ran.returncode == 2 and "unknown action 'wipe_things'" in ran.stderr
