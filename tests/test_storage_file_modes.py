"""The server's data is private (issue 12, item 11): folders DashFleet creates are 0700, the
SQLite database with its -wal/-shm, the JSON state file and the token file 0600, and a database
left 0644 by an older version is tightened when opened. `dashfleet migrate` says why a JSON
store's lock file stays. Real files, the installed command."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from conftest import dashfleet_cmd
from dashfleet_core.config import Settings
from dashfleet_core.models import Health, Report
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
OK = Health(score=100, status="ok")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def opened(url):
    settings = Settings()
    return open_storage(settings, make_plugin_manager(settings), url)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual umask, which made the files 0644
    yield
    os.umask(old)


def test_sqlite_database_wal_and_shm_are_owner_only(tmp_path, open_umask):
    folder = tmp_path / "data"
    with opened(f"sqlite:///{folder}/dashfleet.db") as st:
        st.save_report(Report(machine_id="pc-1", seq=1, metrics={"cpu.percent": 1.0}), OK)
        files = {p.name: mode(p) for p in folder.iterdir()}
        assert {"dashfleet.db", "dashfleet.db-wal", "dashfleet.db-shm"} <= set(files)
        assert mode(folder) == 0o700
        assert all(m == 0o600 for m in files.values()), files


def test_an_old_world_readable_database_is_tightened(tmp_path, open_umask):
    url = f"sqlite:///{tmp_path}/dashfleet.db"
    with opened(url) as st:
        st.save_report(Report(machine_id="pc-1", seq=1, metrics={"cpu.percent": 1.0}), OK)
    for name in ("dashfleet.db", "dashfleet.db-wal", "dashfleet.db-shm"):
        if (tmp_path / name).exists():
            os.chmod(tmp_path / name, 0o644)
    with opened(url) as st:
        assert st.machine("pc-1") is not None
        for name in ("dashfleet.db", "dashfleet.db-wal", "dashfleet.db-shm"):
            if (tmp_path / name).exists():
                assert mode(tmp_path / name) == 0o600, name


def test_json_store_and_its_folder_are_owner_only(tmp_path, open_umask):
    folder = tmp_path / "logs"
    with opened(f"json:///{folder}/fleet_state.json") as st:
        st.save_report(Report(machine_id="pc-1", seq=1, metrics={"cpu.percent": 1.0}), OK)
    assert mode(folder) == 0o700
    assert {p.name: mode(p) for p in folder.iterdir()} == {"fleet_state.json": 0o600, "fleet_state.json.lock": 0o600}


def test_generated_token_folder_is_owner_only(settings_factory, tmp_path, open_umask):
    from dashfleet_web.token_file import resolve_fleet_token, token_path

    settings = settings_factory({"server.data_dir": str(tmp_path / "server-data")})
    resolve_fleet_token(settings)
    assert mode(tmp_path / "server-data") == 0o700 and mode(token_path(settings)) == 0o600


def test_migrate_says_why_the_json_lock_file_stays(tmp_path):
    seed = tmp_path / "logs" / "fleet_state.json"
    seed.parent.mkdir()
    seed.write_text(json.dumps({"machines": {}}))
    proc = subprocess.run([*dashfleet_cmd(), "migrate", f"json:///{seed}", f"sqlite:///{tmp_path}/data/dashfleet.db"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lock = seed.with_name("fleet_state.json.lock")
    assert f"{lock} stays: it is the lock every DashFleet process takes before writing" in proc.stderr
    assert mode(lock) == 0o600
    assert mode(tmp_path / "data" / "dashfleet.db") == 0o600


def test_create_once_writes_a_whole_private_file_once_and_leaves_no_temporary(tmp_path, open_umask):
    """The one helper behind the fleet token, the machine key and the machine id files."""
    from concurrent.futures import ThreadPoolExecutor

    from dashfleet_core.private_files import create_once

    target = tmp_path / "secret"
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: create_once(target, f"value-{i}\n"), range(16)))
    assert won.count(True) == 1, "exactly one writer creates it"
    assert target.read_text() == f"value-{won.index(True)}\n", "the winner's text, whole"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert create_once(target, "other\n") is False and target.read_text() == f"value-{won.index(True)}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"], "no temporary file left"
