"""The built-in collectors on this machine: what they measure, that they describe it, and that a
machine without a battery or sensors reports nothing rather than failing."""

from __future__ import annotations

import re
import socket
from collections import namedtuple
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest

from dashfleet_core.config import settings_from_dict
from dashfleet_core.plugins import gather, make_plugin_manager

# psutil's documented result shapes (its own namedtuples live in a private module that moves)
sbattery = namedtuple("sbattery", "percent secsleft power_plugged")
shwtemp = namedtuple("shwtemp", "label current high critical")

NAMES = ["cpu", "memory", "disk", "uptime", "network", "processes", "battery", "temperatures"]


@pytest.fixture(scope="module")
def collectors():
    settings = settings_from_dict({"plugins": {"enabled": NAMES}})
    pm = make_plugin_manager(settings, entrypoints=False)
    return gather(pm, "register_collectors", "collector", settings=settings)


def described(collector) -> list[re.Pattern]:
    return [re.compile(re.sub(r"<[^>]*>", r"[^.]+", re.escape(m.name).replace(r"\<", "<")
                              .replace(r"\>", ">")) + r"\Z") for m in collector.metrics]


def test_every_builtin_collector_is_registered_under_its_issue_name(collectors):
    assert sorted(collectors.names()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_metric_collected_is_described(collectors, name):
    collector = collectors[name]
    reading = collector.collect()
    patterns = described(collector)
    for info in collector.metrics:
        assert info.unit is not None and info.description, info
    for metric, value in reading.metrics.items():
        assert any(p.match(metric) for p in patterns), f"{metric} is not in {name}.metrics"
        assert isinstance(value, float), (metric, value)


def test_cpu(collectors):
    m = collectors["cpu"].collect().metrics
    assert 0 <= m["cpu.percent"] <= 100
    assert m["cpu.count"] == psutil.cpu_count()
    cores = [k for k in m if re.fullmatch(r"cpu\.core\d+\.percent", k)]
    assert len(cores) == psutil.cpu_count()
    if hasattr(__import__("os"), "getloadavg"):
        assert {"cpu.load1", "cpu.load5", "cpu.load15"} <= set(m)


def test_memory_matches_psutil(collectors):
    m = collectors["memory"].collect().metrics
    assert m["memory.total"] == psutil.virtual_memory().total
    assert 0 <= m["memory.percent"] <= 100 and 0 <= m["swap.percent"] <= 100


def test_disk_reports_the_system_volume(collectors):
    reading = collectors["disk"].collect()
    root = reading.facts["disk.system_volume"]
    assert reading.metrics["disk.total"] == psutil.disk_usage(root).total
    assert 0 <= reading.metrics["disk.percent"] <= 100


class FakeClock:
    """A monotonic clock the test moves by hand, so no test waits or depends on timing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


sdiskpart = namedtuple("sdiskpart", "device mountpoint fstype opts")


def test_disk_rereads_the_volume_list_only_every_partitions_seconds(monkeypatch, tmp_path):
    from dashfleet_plugins.collectors import disk

    listings = []

    def partitions(all=False):
        listings.append(all)
        # /dev is a real mount point here; tmp_path is listed but not mounted (an unmounted volume)
        return [sdiskpart("devtmpfs", "/dev", "devtmpfs", "rw"), sdiskpart("/dev/x", str(tmp_path), "ext4", "rw")]

    monkeypatch.setattr(disk.psutil, "disk_partitions", partitions)
    clock = FakeClock()
    collector = disk.DiskCollector(clock=clock)
    first = collector.collect().metrics
    assert "disk.dev.percent" in first
    assert not [k for k in first if tmp_path.name in k]  # listed but not a mount point: left out
    clock.now += disk.PARTITIONS_SECONDS - 1
    assert collector.collect().metrics.keys() == first.keys() and len(listings) == 1
    clock.now += 1
    collector.collect()
    assert len(listings) == 2


def test_uptime(collectors):
    m = collectors["uptime"].collect().metrics
    assert m["uptime.boot_time"] == psutil.boot_time()
    assert m["uptime.seconds"] > 0


def test_uptime_reads_the_boot_time_again_only_every_boot_time_seconds(monkeypatch):
    from dashfleet_plugins.collectors import uptime

    reads = []

    def boot_time():
        reads.append(True)
        return 1_700_000_000.0 + len(reads)  # a clock step moves it

    monkeypatch.setattr(uptime.psutil, "boot_time", boot_time)
    clock = FakeClock()
    collector = uptime.UptimeCollector(clock=clock)
    first = collector.collect().metrics
    assert first["uptime.boot_time"] == 1_700_000_001.0 and len(reads) == 1
    clock.now += uptime.BOOT_TIME_SECONDS - 1
    again = collector.collect().metrics
    assert again["uptime.boot_time"] == 1_700_000_001.0 and len(reads) == 1
    assert again["uptime.seconds"] >= first["uptime.seconds"]  # still computed every cycle
    clock.now += 1
    assert collector.collect().metrics["uptime.boot_time"] == 1_700_000_002.0 and len(reads) == 2


def _fake_procfs(tmp_path, swap_total_kb: int | None, swap_free_kb: int | None):
    """A copy of this machine's /proc/meminfo and /proc/vmstat with the swap lines given (None:
    without that line), for psutil.PROCFS_PATH."""
    lines = [line for line in Path("/proc/meminfo").read_text().splitlines()
             if not line.startswith(("SwapTotal:", "SwapFree:"))]
    if swap_total_kb is not None:
        lines.append(f"SwapTotal:      {swap_total_kb} kB")
    if swap_free_kb is not None:
        lines.append(f"SwapFree:       {swap_free_kb} kB")
    (tmp_path / "meminfo").write_text("\n".join(lines) + "\n")
    (tmp_path / "vmstat").write_text(Path("/proc/vmstat").read_text())
    return tmp_path


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc/meminfo")
@pytest.mark.parametrize("total, free", [(8_388_604, 6_291_453), (2_097_148, 2_097_148), (0, 0), (None, None)])
def test_memory_swap_figures_are_psutils_own(monkeypatch, tmp_path, total, free):
    """The swap figures read from /proc/meminfo are the ones psutil.swap_memory() gives for the
    same files (and, without swap lines there, psutil's own fallback)."""
    import warnings

    from dashfleet_plugins.collectors import memory

    monkeypatch.setattr(psutil, "PROCFS_PATH", str(_fake_procfs(tmp_path, total, free)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # psutil on a copied procfs may warn
        m = memory.MemoryCollector().collect().metrics
        expected = psutil.swap_memory()
    assert m["swap.percent"] == expected.percent and m["swap.used"] == float(expected.used)
    if total:
        assert m["swap.used"] == (total - free) * 1024


def test_network_rates_count_traffic_since_the_last_cycle(collectors):
    collector = collectors["network"]
    collector.collect()  # start a fresh window
    payload = b"x" * (4 * 1024 * 1024)
    with socket.create_server(("127.0.0.1", 0)) as server:
        received = []

        def sink():
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(65536):
                    received.append(len(chunk))

        t = threading.Thread(target=sink)
        t.start()
        with socket.create_connection(server.getsockname()) as client:
            client.sendall(payload)
        t.join(30)
    assert sum(received) == len(payload)
    m = collector.collect().metrics
    # loopback traffic is counted by the OS in both directions
    assert m["network.sent_bytes_per_s"] > 0 and m["network.recv_bytes_per_s"] > 0
    assert m["network.errors_in_per_s"] >= 0 and m["network.drops_per_s"] >= 0


def test_processes_count_and_top_consumers():
    reading = make_default_collector().collect()  # a fresh collector: its first cycle scans
    assert reading.metrics["processes.count"] >= 1
    assert reading.metrics["processes.top_memory_bytes"] > 0
    top = reading.facts["processes.top_memory"].split(", ")
    assert len(top) == 3
    assert re.fullmatch(r".+ \(\d+\) \d+ MiB", top[0])


def test_processes_top_setting_zero_names_nobody():
    settings = settings_from_dict({"plugins": {"enabled": ["processes"], "processes": {"top": 0}}})
    pm = make_plugin_manager(settings, entrypoints=False)
    reading = gather(pm, "register_collectors", "collector", settings=settings)["processes"].collect()
    assert reading.facts == {} and reading.metrics["processes.count"] >= 1


def test_processes_scan_for_top_consumers_only_every_scan_seconds():
    from dashfleet_plugins.collectors.processes import ProcessCollector

    clock = FakeClock()
    collector = ProcessCollector(top=2, scan_seconds=60, clock=clock)
    clock.now += 10
    scanned = collector.collect()
    assert {"processes.count", "processes.top_cpu_percent", "processes.top_memory_bytes"} <= set(scanned.metrics)
    assert len(scanned.facts["processes.top_memory"].split(", ")) == 2
    assert scanned.facts["processes.cpu_window_seconds"] == "10"  # since the priming at start
    scanned_at = datetime.fromisoformat(scanned.facts["processes.scanned_at"])
    assert scanned_at.tzinfo is not None and abs(datetime.now(timezone.utc) - scanned_at) < timedelta(minutes=5)

    clock.now += 59
    between = collector.collect()
    # measured every cycle: the count; not measured: the top values, so they are not sent again
    assert set(between.metrics) == {"processes.count"} and between.metrics["processes.count"] >= 1
    # the facts are the last scan's, saying when it ran
    assert between.facts == scanned.facts

    clock.now += 1
    rescanned = collector.collect()
    assert "processes.top_memory_bytes" in rescanned.metrics
    assert rescanned.facts["processes.cpu_window_seconds"] == "60"


def test_processes_scan_seconds_zero_scans_every_cycle():
    from dashfleet_plugins.collectors.processes import ProcessCollector

    collector = ProcessCollector(top=1, scan_seconds=0, clock=FakeClock())
    assert all("processes.top_memory_bytes" in collector.collect().metrics for _ in range(3))


def test_processes_scan_seconds_setting_reaches_the_collector():
    settings = settings_from_dict({"plugins": {"enabled": ["processes"], "processes": {"scan_seconds": 300}}})
    pm = make_plugin_manager(settings, entrypoints=False)
    collector = gather(pm, "register_collectors", "collector", settings=settings)["processes"]
    assert collector.scan_seconds == 300
    assert make_default_collector().scan_seconds == 60


def make_default_collector():
    settings = settings_from_dict({"plugins": {"enabled": ["processes"]}})
    pm = make_plugin_manager(settings, entrypoints=False)
    return gather(pm, "register_collectors", "collector", settings=settings)["processes"]


def test_battery_absent_is_not_an_error(collectors):
    from dashfleet_plugins.collectors.battery import reading_from

    reading = collectors["battery"].collect()  # this machine may or may not have one
    has_battery = hasattr(psutil, "sensors_battery") and psutil.sensors_battery() is not None
    assert bool(reading.metrics) == has_battery
    assert reading_from(None).metrics == {}


def test_battery_values_from_psutil_shape():
    from dashfleet_plugins.collectors.battery import reading_from

    m = reading_from(sbattery(percent=42, secsleft=3600, power_plugged=False)).metrics
    assert m == {"battery.percent": 42.0, "battery.plugged": 0.0, "battery.seconds_left": 3600.0}
    unknown = reading_from(sbattery(percent=99, secsleft=psutil.POWER_TIME_UNLIMITED, power_plugged=True))
    assert unknown.metrics == {"battery.percent": 99.0, "battery.plugged": 1.0}


def test_temperatures_absent_is_not_an_error(collectors):
    from dashfleet_plugins.collectors.temperatures import reading_from

    reading = collectors["temperatures"].collect()
    has_sensors = hasattr(psutil, "sensors_temperatures") and any(psutil.sensors_temperatures().values())
    assert ("temperature.max" in reading.metrics) == has_sensors
    assert reading_from({}).metrics == {}


def test_temperatures_from_psutil_shape():
    from dashfleet_plugins.collectors.temperatures import reading_from

    m = reading_from({"coretemp": [shwtemp("Package id 0", 55.0, 80.0, 100.0),
                                   shwtemp("Core 0", 51.0, 80.0, 100.0),
                                   shwtemp("", 49.0, None, None)],
                      "acpitz": [shwtemp("", 40.0, None, None)]}).metrics
    assert m == {"temperature.coretemp.package_id_0": 55.0, "temperature.coretemp.core_0": 51.0,
                 "temperature.coretemp.2": 49.0, "temperature.acpitz.0": 40.0,
                 "temperature.max": 55.0}
