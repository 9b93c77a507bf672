"""The agent's Windows parts that run anywhere: the registry settings the MSI writes (read through
a fake registry reader: winreg exists on Windows only) and the service entry point's command
dispatch and stop event (pywin32's framework itself runs on Windows only; ServiceRunner is the
loop it drives, run here against a real report receiver)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from dashfleet_agent.cli import agent_context, run_until
from dashfleet_agent.runner import EXIT_USAGE
from dashfleet_agent.registry import defaults_for, read_machine_settings
from dashfleet_agent.winservice import ServiceError, ServiceRunner, dispatch, service_command_line
from dashfleet_agent.winservice import main as service_main
from dashfleet_core.config import ConfigError, load_settings
from test_agent_delivery import TOKEN, Receiver

AGENT = Path(sys.executable).with_name("dashfleet-agent")


def registry(**values):
    """A fake HKLM\\Software\\DashFleet\\Agent: the reader returns these values."""
    return lambda: dict(values)


def test_registry_values_become_agent_settings_on_windows_only():
    reader = registry(Server="https://fleet.example.org", Token="t" * 24, Interval="30", Other="x")
    assert read_machine_settings(reader, platform="win32") == {
        "server": "https://fleet.example.org", "token": "t" * 24, "interval": 30.0}
    assert read_machine_settings(reader, platform="linux") == {}


def test_empty_registry_values_count_as_absent():
    assert read_machine_settings(registry(Server=" ", Token="", Interval=""), platform="win32") == {}


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "nan", "inf"])
def test_a_bad_registry_interval_names_the_value_and_the_fix(bad):
    with pytest.raises(ConfigError) as err:
        read_machine_settings(registry(Interval=bad), platform="win32")
    assert "HKLM\\Software\\DashFleet\\Agent\\Interval" in str(err.value) and "INTERVAL=" in str(err.value)


def test_a_registry_value_of_the_wrong_type_is_refused():
    with pytest.raises(ConfigError, match=r"Server: expected a string value \(REG_SZ\)"):
        read_machine_settings(registry(Server=5), platform="win32")


def test_registry_fills_only_what_flags_environment_and_config_left_unset(tmp_path, monkeypatch):
    for var in ("FLEET_TOKEN", "DASHFLEET_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    machine = {"server": "https://from-registry.example", "token": "r" * 24, "interval": 30.0}
    config = tmp_path / "agent.toml"
    config.write_text('[agent]\nserver = "https://from-config.example"\ntoken_file = "/etc/token"\n')

    loaded = agent_context(str(config), {}, machine=machine).settings.agent
    assert loaded.server == "https://from-config.example"  # the config file outranks the registry
    assert loaded.token is None and loaded.token_file == "/etc/token"  # a token file counts as a token
    assert loaded.interval == 30.0  # not in the config: the registry's

    flagged = agent_context(str(config), {"agent.interval": 5.0}, machine=machine).settings.agent
    assert flagged.interval == 5.0  # a flag outranks the registry

    bare = agent_context(None, {}, machine=machine).settings.agent
    assert (bare.server, bare.token, bare.interval) == ("https://from-registry.example", "r" * 24, 30.0)


def test_defaults_for_leaves_given_settings_alone():
    current = load_settings(None, env={}, overrides={"agent.server": "https://flag.example"}).agent
    assert defaults_for(current, {"server": "https://reg.example", "interval": 20.0}) == {"agent.interval": 20.0}


def test_service_dispatch():
    assert dispatch([]) == "dispatcher"  # as the Service Control Manager starts `dashfleet-agent.exe service`
    for command in ("install", "update", "remove", "start", "stop", "restart", "debug"):
        assert dispatch([command, "--extra"]) == "command"
    with pytest.raises(ServiceError, match="unknown service command 'bogus'"):
        dispatch(["bogus"])


def test_service_install_registers_the_program_that_ran_never_python_itself(tmp_path):
    assert service_command_line(True, r"C:\Program Files\DashFleet\dashfleet-agent.exe", "x") == (
        r"C:\Program Files\DashFleet\dashfleet-agent.exe", "service")  # the PyInstaller exe
    scripts = tmp_path / "Scripts"
    assert service_command_line(False, "python.exe", str(scripts / "dashfleet-agent")) == (
        str((scripts / "dashfleet-agent").resolve()) + ".exe", "service")
    assert service_command_line(False, "python.exe", str(scripts / "dashfleet.exe")) == (
        str((scripts / "dashfleet.exe").resolve()), "agent service")


def test_service_entry_point_says_it_is_windows_only_elsewhere():
    with pytest.raises(ServiceError, match="Windows only"):
        service_main([], run_until, platform="linux")
    assert "win32serviceutil" not in sys.modules and "servicemanager" not in sys.modules
    out = subprocess.run([str(AGENT), "service"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Windows only" in out.stderr and "systemd" in out.stderr


def test_service_runner_delivers_until_its_stop_event(tmp_path):
    """The service's loop, configured the MSI's way (registry values only), stops on the SCM's
    stop request: the run returns 0 and the reports delivered before it stay delivered."""
    receiver = Receiver()
    machine = read_machine_settings(registry(Server=receiver.url, Token=TOKEN, Interval="0.2"), platform="win32")
    runner = ServiceRunner(partial(run_until, overrides={"agent.state_dir": str(tmp_path / "state")}, machine=machine))
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(runner.run()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(receiver.reports) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(receiver.reports) >= 2, "the service's agent delivered no reports"
        runner.stop()
        thread.join(60)
        assert not thread.is_alive() and result == [0]
        delivered = len(receiver.reports)
        time.sleep(0.5)
        assert len(receiver.reports) == delivered  # nothing is sent once stopped
    finally:
        runner.stop()
        receiver.stop()
    seqs = receiver.seqs()
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, none lost


def test_service_runner_with_no_server_configured_returns_the_usage_code(tmp_path, monkeypatch):
    for var in ("FLEET_TOKEN", "DASHFLEET_AGENT_SERVER", "DASHFLEET_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    runner = ServiceRunner(partial(run_until, overrides={"agent.state_dir": str(tmp_path / "s")}, machine={}))
    assert runner.run() == EXIT_USAGE
