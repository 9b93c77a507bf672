"""Config: defaults without a file, the file, environment overrides, and errors that name the
file, the key and what was expected."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from dashfleet_core.config import (UNSET, ConfigError, Settings, find_config_file, load_settings,
                                   settings_from_dict)


def write(tmp_path, text: str):
    path = tmp_path / "dashfleet.toml"
    path.write_text(text)
    return path


def test_no_file_at_all_runs_on_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DASHFLEET_CONFIG", raising=False)
    assert find_config_file() is None
    s = load_settings(None, env={})
    assert s.source == "<defaults>"
    assert s.health.sustain == 3 and s.health.hysteresis == 5
    t = s.health.thresholds
    assert (t["cpu.percent"].warn, t["cpu.percent"].critical) == (80, 95)
    assert (t["memory.percent"].warn, t["memory.percent"].critical) == (90, 97)
    assert (t["disk.percent"].warn, t["disk.percent"].critical) == (90, 97)
    assert s.plugins.enabled is None and s.plugins.disabled == []


def test_dashfleet_toml_in_the_current_folder_is_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DASHFLEET_CONFIG", raising=False)
    write(tmp_path, "[health]\nsustain = 4\n")
    assert load_settings(None, env={}).health.sustain == 4


def test_dashfleet_config_env_names_the_file(tmp_path, monkeypatch):
    other = tmp_path / "other.toml"
    other.write_text("[agent]\ninterval = 30\n")
    monkeypatch.setenv("DASHFLEET_CONFIG", str(other))
    assert load_settings(None, env={}).agent.interval == 30


def test_file_values_and_thresholds_merge_with_defaults(tmp_path):
    path = write(tmp_path, """
[health]
sustain = 2
[health.thresholds."cpu.percent"]
warn = 70
critical = 90
[health.thresholds."battery.percent"]
warn = 20
critical = 10
below = true
""")
    s = load_settings(path, env={})
    assert s.source == str(path)
    t = s.health.thresholds
    assert (t["cpu.percent"].warn, t["cpu.percent"].critical) == (70, 90)
    assert t["battery.percent"].below is True
    assert t["memory.percent"].warn == 90  # a default kept


def test_an_unset_override_removes_what_the_file_set(tmp_path):
    path = tmp_path / "dashfleet.toml"
    path.write_text('[agent]\ntoken_file = "/etc/dashfleet/agent.token"\ninterval = 30\n')
    settings = load_settings(path, env={}, overrides={"agent.token": "Zq9-from-the-flag",
                                                      "agent.token_file": UNSET, "agent.server": UNSET,
                                                      "agent.interval": None})
    assert settings.agent.token == "Zq9-from-the-flag" and settings.agent.token_file is None
    assert settings.agent.server is None          # nothing to remove: no error
    assert settings.agent.interval == 30          # None: not given, the file's value stays


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, '[server]\ntoken = "from-file"\nport = 5000\n')
    s = load_settings(path, env={"FLEET_TOKEN": "from-env", "PORT": "8080",
                                 "DASHFLEET_STORAGE": "sqlite:///x.db", "WEBHOOK_URL": "http://h/x"})
    assert s.server.token == "from-env"
    assert s.server.port == 8080
    assert s.storage.url == "sqlite:///x.db"
    assert s.plugins.settings_for("webhook") == {"url": "http://h/x"}


@pytest.mark.parametrize("text, key, expected", [
    ('[health]\nsustain = "three"\n', "[health.sustain]", "valid integer"),
    ("[server]\nport = 70000\n", "[server.port]", "less than or equal to 65535"),
    ("[agent]\nintervall = 5\n", "[agent.intervall]", "unknown key"),
    ("[nonsense]\na = 1\n", "[nonsense]", "unknown key"),
    ('[health.thresholds."cpu.percent"]\nwarn = 80\n', "[health.thresholds.cpu.percent.critical]",
     "required key is missing"),
    ('[health.thresholds."cpu.percent"]\nwarn = 90\ncritical = 80\n', "[health.thresholds.cpu.percent]",
     "at least as far above as warn"),
    ('[plugins]\nenabled = "cpu"\n', "[plugins.enabled]", "valid list"),
])
def test_bad_values_name_file_key_and_expectation(tmp_path, text, key, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert expected in message
    assert info.value.exit_code == 2


def test_wrong_env_value_is_a_config_error():
    with pytest.raises(ConfigError, match=r"\[server.port\]"):
        load_settings(None, env={"PORT": "eighty"}, overrides={"server.data_dir": "x"})


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", env={})
    path = write(tmp_path, "[health\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, env={})


class _Mine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    retries: int = 3


def test_plugin_settings_are_validated_against_the_plugins_model(tmp_path):
    path = write(tmp_path, '[plugins.mine]\nurl = "http://x"\nretries = 5\n')
    s = load_settings(path, env={})
    assert s.plugin_settings("mine", _Mine) == _Mine(url="http://x", retries=5)


def test_plugin_settings_errors_name_the_plugin_and_key(tmp_path):
    path = write(tmp_path, '[plugins.mine]\nretries = "many"\n')
    s = load_settings(path, env={})
    with pytest.raises(ConfigError) as info:
        s.plugin_settings("mine", _Mine)
    message = str(info.value)
    assert str(path) in message
    assert "[plugins.mine.url] required key is missing" in message
    assert "[plugins.mine.retries]" in message


def test_settings_from_dict_validates_like_the_file():
    assert settings_from_dict({"health": {"sustain": 7}}).health.sustain == 7
    with pytest.raises(ConfigError, match=r"<dict>.*\n.*\[health.sustain\]"):
        settings_from_dict({"health": {"sustain": 0}})
    assert isinstance(settings_from_dict({}), Settings)


def test_the_commented_example_config_is_valid_and_matches_the_defaults():
    from conftest import REPO
    from dashfleet_core.plugins import make_plugin_manager

    example = REPO / "examples" / "dashfleet.toml"
    s = load_settings(example, env={})
    make_plugin_manager(s, entrypoints=False)  # every [plugins.<name>] it sets exists
    defaults = Settings()
    for section in ("server", "storage", "actions", "alerts"):
        assert getattr(s, section) == getattr(defaults, section), section
    assert s.health.thresholds["cpu.percent"] == defaults.health.thresholds["cpu.percent"]
    assert s.health.sustain == defaults.health.sustain


def test_the_commented_examples_in_the_example_config_are_valid_when_uncommented():
    """Every `# [table]` / `# key = value` line of the example is a real setting: uncommented, the
    file still loads and each plugin accepts its table, so the examples cannot drift from the code."""
    import re
    import tomllib

    from conftest import REPO
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_plugins.actions.cleanup_temp import Options as CleanupTempOptions
    from dashfleet_plugins.collectors.processes import ProcessSettings
    from dashfleet_plugins.notifiers.email_smtp import EmailSettings
    from dashfleet_plugins.notifiers.webhook import WebhookSettings

    text = (REPO / "examples" / "dashfleet.toml").read_text(encoding="utf-8")
    setting = re.compile(r"^# ((?:\[\[?[a-z_.]+\]\]?|[a-z_]+ = ).*)$")
    uncommented = "\n".join(m.group(1) if (m := setting.match(line)) else line for line in text.splitlines())
    data = tomllib.loads(uncommented)
    assert data["plugins"].pop("example") == {"max_uptime_days": 30}  # a third-party plugin, not installed here
    s = settings_from_dict(data, source="example, uncommented")
    make_plugin_manager(s, entrypoints=False)
    assert s.actions.allowed and [w.daily for w in s.alerts.maintenance] == ["02:00-03:30", None]
    assert s.agent.server == "https://dashfleet.example.com"
    email = s.plugin_settings("email", EmailSettings)
    assert email.host and email.to and email.security == "starttls"
    assert s.plugin_settings("webhook", WebhookSettings).url
    assert s.plugin_settings("cleanup_temp", CleanupTempOptions).folders
    assert s.plugin_settings("processes", ProcessSettings).scan_seconds == 60
