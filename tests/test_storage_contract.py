"""The storage contract (dashfleet_core/storage.py) run against every built-in backend: a real SQLite
file, a real JSON file and a real PostgreSQL schema (the `pg_url` fixture). The tests themselves
ship in `dashfleet_core.testing.StorageContract`, so a third-party backend runs the same ones."""

from __future__ import annotations

import pytest

from dashfleet_core.config import Settings
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import StorageError, open_storage
from dashfleet_core.testing import StorageContract


class TestSqlite(StorageContract):
    @pytest.fixture
    def storage_url(self, tmp_path):
        return f"sqlite:///{tmp_path}/data/dashfleet.db"


class TestJson(StorageContract):
    @pytest.fixture
    def storage_url(self, tmp_path):
        return f"json:///{tmp_path}/logs/fleet_state.json"


class TestPostgresql(StorageContract):
    @pytest.fixture
    def storage_url(self, pg_url):
        return pg_url


# --- PostgreSQL only ---------------------------------------------------------------------------


@pytest.fixture
def open_url():
    settings = Settings()
    pm = make_plugin_manager(settings)
    opened = []

    def open_(url):
        st = open_storage(settings, pm, url)
        opened.append(st)
        return st

    yield open_
    for st in opened:
        st.close()


def test_postgresql_tables_live_in_the_schema_named_by_the_url(pg_url, pg_dsn, open_url):
    import psycopg

    open_url(pg_url).close()
    schema = pg_url.rsplit("%3D", 1)[1]
    with psycopg.connect(pg_dsn) as conn:
        found = conn.execute("SELECT table_schema FROM information_schema.tables "
                             "WHERE table_name = 'samples'").fetchall()
    assert found == [(schema,)]


def test_postgresql_without_a_server_is_a_clear_error(open_url):
    from tests.conftest import free_port

    with pytest.raises(StorageError) as err:
        open_url(f"postgresql://nobody:secret@127.0.0.1:{free_port()}/nowhere?pool_max=2")
    assert "cannot connect to PostgreSQL" in str(err.value) and "secret" not in str(err.value)
