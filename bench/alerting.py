"""What alerting costs, against the same work without it, measured in this run (the machine is
shared, so compare the ratios, not the absolute figures).

1. Ingest: `Fleet.ingest` of one report (SQLite, synchronous=full), with the alerting plugin vs with
   it blocked. Healthy machines (the common case: one kv read, no write) and machines holding a
   warn streak (a kv write per report). Alternating blocks, medians per report.
2. The alert job with N machines and nothing to do: the every-tick part (maintenance windows, the
   outbox) and the silence sweep, vs `storage.machines()` alone (the fleet list the sweep reads).
3. Latency from a report's answer to the alert at a local webhook receiver, with the default digest
   window (2 s) and job interval (0.5 s), on the server's own scheduler: median over several alerts.

    .venv/bin/python bench/alerting.py [--reports 600] [--machines 1000] [--alerts 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dashfleet_core.config import load_settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Report, utcnow
from dashfleet_core.plugins import make_plugin_manager


def make_fleet(tmp: Path, name: str, alerting: bool, **overrides) -> Fleet:
    settings = load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{tmp}/{name}.db", "server.data_dir": str(tmp),
        "server.report_self": False, **overrides})
    pm = make_plugin_manager(settings)
    if not alerting:
        pm.set_blocked("alerting")
    return Fleet(settings, pm)


def ingest_per_report(fleet: Fleet, n: int, cpu: float, start_seq: int, machines: int = 50) -> list[float]:
    times = []
    for i in range(n):
        report = Report(machine_id=f"m-{i % machines:04d}", seq=start_seq + i, metrics={"cpu.percent": cpu,
                        "memory.percent": 40.0, "disk.percent": 50.0})
        t0 = time.perf_counter()
        fleet.ingest([report])
        times.append(time.perf_counter() - t0)
    return times


def bench_ingest(tmp: Path, reports: int, blocks: int = 4) -> None:
    for label, cpu in (("healthy", 10.0), ("held at warn", 85.0)):
        with_a = make_fleet(tmp, f"with-{cpu}", True)
        without = make_fleet(tmp, f"without-{cpu}", False)
        a, b = [], []
        per_block = max(1, reports // blocks)
        for block in range(blocks):
            b += ingest_per_report(without, per_block, cpu, block * per_block)
            a += ingest_per_report(with_a, per_block, cpu, block * per_block)
        with_a.stop()
        without.stop()
        ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        print(f"ingest, {label:<12}: {ma:.3f} ms/report with alerting vs {mb:.3f} without "
              f"(ratio {ma / mb:.2f}; {len(a)} reports each, 50 machines)")


def bench_tick(tmp: Path, machines: int, rounds: int = 15) -> None:
    fleet = make_fleet(tmp, "tick", True)
    reports = [Report(machine_id=f"pc-{i:05d}", seq=1, metrics={"cpu.percent": 10.0}) for i in range(machines)]
    fleet.storage.save_reports([(r, fleet.engine.evaluate(r.metrics)) for r in reports])
    alerting = fleet.alerting
    ticks, sweeps, lists = [], [], []
    now = utcnow() + timedelta(seconds=5)
    for _ in range(rounds):
        t0 = time.perf_counter()
        fleet.storage.machines()
        lists.append(time.perf_counter() - t0)
        alerting._last_silence_sweep = now  # the every-tick part only
        t0 = time.perf_counter()
        alerting.tick(now=now)
        ticks.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        alerting.sweep_silent(now)
        sweeps.append(time.perf_counter() - t0)
    fleet.stop()
    mt, ms, ml = (statistics.median(x) * 1e3 for x in (ticks, sweeps, lists))
    print(f"alert job tick (maintenance + outbox, every {fleet.settings.alerts.interval_seconds:g} s), "
          f"{machines} machines, nothing to do: {mt:.2f} ms; ratio to machines() {mt / ml:.3f}")
    print(f"silence sweep (every {alerting.silence_every():g} s at TTL {fleet.settings.server.ttl_seconds} s), "
          f"{machines} machines: {ms:.1f} ms vs machines() alone {ml:.1f} ms (ratio {ms / ml:.2f})")


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.arrived.append(time.monotonic())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def bench_latency(tmp: Path, alerts: int) -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.arrived = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    fleet = make_fleet(tmp, "latency", True, **{
        "plugins.webhook.url": f"http://127.0.0.1:{srv.server_port}/hook", "alerts.min_seconds": 0})
    fleet.start()
    latencies = []
    try:
        for n in range(alerts):
            machine = f"lat-{n}"
            for seq in range(3):
                fleet.ingest([Report(machine_id=machine, seq=seq, metrics={"cpu.percent": 99.0})])
            sent = time.monotonic()
            deadline = sent + 30
            while len(srv.arrived) <= n and time.monotonic() < deadline:
                time.sleep(0.01)
            if len(srv.arrived) > n:
                latencies.append(srv.arrived[n] - sent)
            time.sleep(1.1)  # next alert outside this one's digest window
    finally:
        fleet.stop()
        srv.shutdown()
        srv.server_close()
    window = fleet.settings.alerts.digest_window_seconds
    print(f"report -> webhook latency (digest window {window:g} s, job every "
          f"{fleet.settings.alerts.interval_seconds:g} s): median {statistics.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s over {len(latencies)} alerts; ratio to the window "
          f"{statistics.median(latencies) / window:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=600)
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dashfleet-bench-") as tmp:
        bench_ingest(Path(tmp), args.reports)
        bench_tick(Path(tmp), args.machines)
        bench_latency(Path(tmp), args.alerts)


if __name__ == "__main__":
    main()
