"""The SQL backends hand times to pydantic as epoch numbers when that reads back exactly (cheaper
than ISO text for the fleet list), and as ISO text where pydantic would read a number differently."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest
from pydantic import TypeAdapter

from dashfleet_core.models import Health, Report
from dashfleet_plugins.storage._sql.codecs import epoch, from_epoch, time_json

READ = TypeAdapter(datetime)


@pytest.mark.parametrize("value", [
    0.0, 1.5, 1795487297.540042, 1795487297.0,
    45.3515625,  # an exact half-microsecond tie: Python rounds to even, pydantic would round up
    1700000000.0000005, 1700000000 + 2.5e-6,
    19999999999.999, 2e10, 2.5e10, 253402300799.0,  # from 2e10 pydantic would read milliseconds
    -1.25, -86400.0000005,  # before 1970
])
def testtime_json_reads_back_as_from_epoch(value):
    assert READ.validate_json(time_json(value)) == from_epoch(value)


def testtime_json_reads_back_exactly_for_many_times():
    rng = random.Random(11)
    values = ([rng.uniform(0, 2.2e10) for _ in range(20000)]
              + [rng.randrange(10**9, 2 * 10**9) + rng.randrange(0, 2**20) / 2**20 for _ in range(20000)])
    assert TypeAdapter(list[datetime]).validate_json("[" + ",".join(map(time_json, values)) + "]") == [
        from_epoch(v) for v in values]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_far_future_and_pre_1970_times_read_back_from_the_fleet_list(backend, tmp_path, request, settings_factory):
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_core.storage import open_storage

    url = f"sqlite:///{tmp_path}/f.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    settings = settings_factory()
    with open_storage(settings, make_plugin_manager(settings), url) as store:
        times = {"future": datetime(2700, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
                 "past": datetime(1960, 5, 6, 7, 8, 9, 123457, tzinfo=timezone.utc),
                 "now": datetime(2026, 11, 24, 2, 40, 1, 999999, tzinfo=timezone.utc)}
        for name, at in times.items():
            store.save_report(Report(machine_id=name, seq=1, collected_at=at), Health(score=100, status="ok"),
                              received_at=at)
        listed = {m.machine_id: m for m in store.machines()}
        for name, at in times.items():
            expected = from_epoch(epoch(at))
            assert listed[name].collected_at == expected and listed[name].last_seen == expected
            assert listed[name].first_seen == expected and store.machine(name).collected_at == expected
