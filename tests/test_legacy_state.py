"""A server started where the original dashboard left its `logs/fleet_state.json` (in the working
folder or the data folder) and whose store is new logs, once, the exact `dashfleet migrate`
command that brings the file over; that command works as logged, and once the machines are there
the server says nothing more. Real `dashfleet web` processes, real files."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import dashfleet_cmd, free_port
from test_storage_json import SEED
from test_web_export import Lines
from test_web_process import OPERATOR, _env, _wait_http, procs  # noqa: F401 - procs is a fixture

HINT = "dashfleet migrate json:///"


def _write_seed(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(SEED))
    return path


def _start(cwd: Path, args: list[str]) -> tuple[subprocess.Popen, int, Lines]:
    """`dashfleet -v web` (INFO logs: the server also says when it offers nothing)."""
    port = free_port()
    proc = subprocess.Popen(dashfleet_cmd() + ["-v", "web", "--port", str(port)] + args, cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = Lines(proc.stderr)
    _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc, port, err


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def _command(line: str) -> list[str]:
    """The command the log line gives, to run as the user would paste it."""
    words = shlex.split(line[line.index("dashfleet migrate"):])
    return dashfleet_cmd() + words[1:]  # `dashfleet` as installed in this environment


def test_the_original_state_file_in_the_working_folder_is_offered_to_migrate_once(tmp_path, procs):
    seed = _write_seed(tmp_path / "logs" / "fleet_state.json")
    proc, port, err = _start(tmp_path, [])  # no config at all: SQLite in ./data, as a newcomer runs it
    procs.append(proc)
    line = err.wait_for(HINT)
    _stop(proc)
    assert err.text().count("dashfleet migrate") == 1, "logged once"
    store = (tmp_path / "data" / "dashfleet.db").resolve()
    assert line.rstrip().endswith(f"dashfleet migrate json:///{seed.resolve()} sqlite:///{store}")
    assert "WARNING" in line

    elsewhere = tmp_path / "elsewhere"  # the command works from any folder: absolute URLs
    elsewhere.mkdir()
    done = subprocess.run(_command(line), cwd=elsewhere, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "reports: 4 copied" in done.stderr

    again, port, err = _start(tmp_path, [])
    procs.append(again)
    err.wait_for("no migration is offered")
    machine = requests.get(f"http://127.0.0.1:{port}/api/fleet/pc-01", headers=OPERATOR, timeout=5)
    assert machine.status_code == 200 and machine.json()["hostname"] == "pc-01"  # the original's machine
    _stop(again)
    assert "dashfleet migrate" not in err.text()
    assert json.loads(seed.read_text()) == SEED, "the original file is read, never changed"


def test_the_original_state_file_in_the_data_folder_is_offered_too(tmp_path, procs):
    data = tmp_path / "srv-data"
    seed = _write_seed(data / "logs" / "fleet_state.json")
    config = tmp_path / "dashfleet.toml"
    config.write_text(f'[server]\ndata_dir = "{data}"\n\n[storage]\nurl = "sqlite:///{data}/dashfleet.db"\n')
    run_in = tmp_path / "cwd"
    run_in.mkdir()
    proc, _, err = _start(run_in, ["--config", str(config)])
    procs.append(proc)
    line = err.wait_for(HINT)
    _stop(proc)
    assert f"json:///{seed.resolve()} sqlite:///{(data / 'dashfleet.db').resolve()}" in line


def test_a_server_on_the_original_file_itself_offers_nothing(tmp_path, procs):
    from dashfleet_core.config import load_settings
    from dashfleet_core.legacy import migration_hints
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_core.storage import open_storage

    seed = _write_seed(tmp_path / "logs" / "fleet_state.json")
    settings = load_settings(None, env={}, overrides={"storage.url": f"json:///{seed}",
                                                       "server.data_dir": str(tmp_path / "data")})
    with open_storage(settings, make_plugin_manager(settings)) as storage:
        assert migration_hints(settings, storage, "this-server", cwd=tmp_path) == []
    sqlite = load_settings(None, env={}, overrides={"storage.url": f"sqlite:///{tmp_path}/new.db",
                                                     "server.data_dir": str(tmp_path / "data")})
    with open_storage(sqlite, make_plugin_manager(sqlite)) as storage:
        [hint] = migration_hints(sqlite, storage, "this-server", cwd=tmp_path)
        assert f"json:///{seed}" in hint


def test_a_database_password_never_reaches_the_log(tmp_path, pg_url):
    from dashfleet_core.config import load_settings
    from dashfleet_core.legacy import migration_hints
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_core.storage import open_storage

    _write_seed(tmp_path / "logs" / "fleet_state.json")
    settings = load_settings(None, env={}, overrides={"storage.url": pg_url, "server.data_dir": str(tmp_path)})
    shown = pg_url.replace("://", "://dashfleet:s3cret-pw@", 1) + "&password=s3cret-pw" if "?" in pg_url \
        else pg_url.replace("://", "://dashfleet:s3cret-pw@", 1) + "?password=s3cret-pw"
    with open_storage(settings, make_plugin_manager(settings)) as storage:
        configured = settings.model_copy(update={"storage": settings.storage.model_copy(update={"url": shown})})
        [hint] = migration_hints(configured, storage, "this-server", cwd=tmp_path)
    assert "s3cret-pw" not in hint and "complete the target with the password" in hint
    assert os.fspath(tmp_path / "logs" / "fleet_state.json") in hint


@pytest.mark.skipif(os.name != "posix", reason="POSIX shell quoting")
def test_a_path_with_spaces_is_quoted_for_the_shell(tmp_path):
    from dashfleet_core.config import load_settings
    from dashfleet_core.legacy import migration_hints
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_core.storage import open_storage

    folder = tmp_path / "My Dashboard"
    seed = _write_seed(folder / "logs" / "fleet_state.json")
    settings = load_settings(None, env={}, overrides={"storage.url": f"sqlite:///{folder}/data/x.db",
                                                       "server.data_dir": str(folder / "data")})
    with open_storage(settings, make_plugin_manager(settings)) as storage:
        [hint] = migration_hints(settings, storage, "this-server", cwd=folder)
    words = shlex.split(hint[hint.index("dashfleet migrate"):])
    assert words == ["dashfleet", "migrate", f"json:///{seed}", f"sqlite:///{folder / 'data' / 'x.db'}"]
