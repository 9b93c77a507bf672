"""Hosts contribute their `dashfleet` commands through the `dashfleet.commands` entry points.

`dashfleet web` and `dashfleet agent` come from the web and agent hosts, not from the core; a
third-party host adds its command the same way. Each test runs the real `dashfleet` in a process;
the third-party host is a real distribution (a `.dist-info` with `entry_points.txt`) on PYTHONPATH,
found by importlib.metadata as pip's would be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import dashfleet_cmd

KIOSK = '''
import click
from dashfleet_core.cli import config_option, load_context


@click.command()
@click.option("--port", type=int, default=None)
@config_option
def kiosk(port, config_path):
    """Full-screen view of the fleet."""
    ctx = load_context(config_path, **{"server.port": port})
    click.echo(f"kiosk on {ctx.settings.server.port}, {len(ctx.pm.get_plugins())} plugins, "
               f"flask loaded: {'flask' in __import__('sys').modules}")


not_a_command = "kiosk"
'''


def install_host(site: Path, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A distribution `dashfleet-kiosk` on `site`: its modules and its `dashfleet.commands`."""
    for name, text in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(text))
    info = site / "dashfleet_kiosk-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dashfleet-kiosk\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[dashfleet.commands]\n{lines}")


def run(args, cwd: Path, site: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DASHFLEET_CONFIG", "PYTHONPATH")}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(dashfleet_cmd() + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_web_and_agent_come_from_their_hosts_entry_points():
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group="dashfleet.commands")}
    assert found["web"] == "dashfleet_web.cli:web"
    assert found["agent"] == "dashfleet_agent.cli:agent"


def test_host_commands_are_listed_and_run_without_importing_flask_until_used(tmp_path):
    r = run(["--help"], tmp_path)
    assert r.returncode == 0, r.stderr
    commands = {line.split()[0] for line in r.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert {"web", "agent", "status"} <= commands
    code = ("import sys\nfrom dashfleet_core.cli import main\nmain(['status', '--json'])\n"
            "print(sorted(m for m in sys.modules if m.startswith(('flask', 'dashfleet_web.app'))), "
            "file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "[]"


def test_a_host_command_reports_a_bad_config_with_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = \"not a port\"\n")
    for command in (["web"], ["agent", "--once"]):
        r = run([*command, "--config", str(bad)], tmp_path)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "bad.toml" in r.stderr and "server.port" in r.stderr, r.stderr
        assert "No such command" not in r.stderr


def test_a_third_party_host_adds_its_command(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_host(site, {"kiosk": "dashfleet_kiosk:kiosk"}, {"dashfleet_kiosk": KIOSK})
    config = tmp_path / "dashfleet.toml"
    config.write_text("[server]\nport = 5123\n")
    r = run(["--help"], tmp_path, site)
    assert r.returncode == 0 and "kiosk" in r.stdout and "Full-screen view" in r.stdout, r.stderr
    r = run(["kiosk", "--config", str(config)], tmp_path, site)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("kiosk on 5123, ") and r.stdout.strip().endswith("flask loaded: False")
    r = run(["kiosk", "--config", str(config), "--port", "5200"], tmp_path, site)
    assert r.stdout.startswith("kiosk on 5200, "), r.stderr


def test_a_broken_host_command_is_left_out_and_the_rest_works(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_host(site, {
        "broken": "dashfleet_kiosk_broken:kiosk",        # raises on import
        "missing": "dashfleet_kiosk_nowhere:kiosk",       # no such module
        "notcmd": "dashfleet_kiosk:not_a_command",        # a string, not a click command
        "status": "dashfleet_kiosk:kiosk",                # would replace the core's `status`
        "kiosk": "dashfleet_kiosk:kiosk",
    }, {"dashfleet_kiosk": KIOSK,
        "dashfleet_kiosk_broken": "raise RuntimeError('kiosk display not found')\n"})
    r = run(["status", "--json"], tmp_path, site)
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)) >= {"machine_id", "health"}   # the core's status, not the kiosk
    errors = [line for line in r.stderr.splitlines() if "command" in line]
    assert len(errors) == 4, r.stderr
    assert any("'broken'" in e and "dashfleet-kiosk" in e and "RuntimeError: kiosk display not found" in e
               for e in errors), errors
    assert any("'missing'" in e and "ModuleNotFoundError" in e for e in errors), errors
    assert any("'notcmd'" in e and "str is not a click command" in e for e in errors), errors
    assert any("'status'" in e and "a command of that name exists" in e for e in errors), errors
    r = run(["--help"], tmp_path, site)
    listed = {line.split()[0] for line in r.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert "kiosk" in listed and not {"broken", "missing", "notcmd"} & listed
