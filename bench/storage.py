"""Storage benchmark: the figures of issue 3 on SQLite and PostgreSQL.

A fleet of N machines (default 1,000) with 1-minute samples (default 5,000,000 in total, bulk
loaded with executemany / COPY, oldest to newest, all machines interleaved as they would arrive),
plus one machine with a full 30 days (43,200 samples) for the chart query. Then, through the
storage contract:

- save one report (median of --saves single saves, each a durable commit),
- the fleet list of all machines (`machines()`),
- a 30-day chart of 300 points for one machine (`history_buckets`), core metrics and all metrics,
- database size per machine per day of 1-minute samples.

Each latency is also printed as a ratio to the same operation on a tiny database (10 machines, one
day) measured in the same run, because the machine is shared and absolute numbers drift.

    .venv/bin/python bench/storage.py                      # both backends, 5M samples
    .venv/bin/python bench/storage.py --backend sqlite --samples 1000000

PostgreSQL: $DASHFLEET_PG_DSN, else a throwaway server (initdb + pg_ctl, durable settings: fsync
and synchronous_commit on) in a temp folder, removed at the end.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashfleet_core.config import Settings  # noqa: E402
from dashfleet_core.models import Health, Report  # noqa: E402
from dashfleet_core.plugins import make_plugin_manager  # noqa: E402
from dashfleet_core.storage import open_storage  # noqa: E402

MINUTE = 60.0
DAY_SAMPLES = 1440
CHART_DAYS = 30
CORE = ["cpu.percent", "memory.percent", "disk.percent"]
OK = Health(score=100, status="ok")


def extra_metrics(rng: random.Random) -> dict[str, float]:
    """What the built-in collectors send besides the core columns, for a 4-core machine."""
    cores = {f"cpu.core{i}.percent": round(rng.uniform(0, 100), 1) for i in range(4)}
    return {
        **cores, "cpu.count": 4.0, "cpu.load1": round(rng.uniform(0, 4), 2),
        "cpu.load5": round(rng.uniform(0, 4), 2), "cpu.load15": round(rng.uniform(0, 4), 2),
        "memory.used": float(rng.randrange(2 << 30, 14 << 30)), "memory.available": float(rng.randrange(1 << 30, 8 << 30)),
        "memory.total": float(16 << 30), "swap.used": float(rng.randrange(0, 1 << 30)),
        "disk.free": float(rng.randrange(10 << 30, 400 << 30)), "disk.total": float(512 << 30),
        "uptime.seconds": float(rng.randrange(0, 10**7)), "uptime.boot_time": 1.76e9,
    }


def make_report(machine: str, seq: int, at: datetime, rng: random.Random) -> Report:
    return Report(
        machine_id=machine, hostname=f"{machine}.corp.example", os="Windows 11 Pro 23H2",
        agent_version="0.1.0", seq=seq, collected_at=at,
        metrics={"cpu.percent": round(rng.uniform(0, 100), 1), "memory.percent": round(rng.uniform(20, 90), 1),
                 "disk.percent": round(rng.uniform(30, 95), 1), "swap.percent": round(rng.uniform(0, 20), 1),
                 **extra_metrics(rng)},
        facts={"os.release": "10.0.22631", "cpu.model": "Intel(R) Core(TM) i5-10500 CPU @ 3.10GHz",
               "site": "HQ", "owner": "accounting"},
    )


def median_ms(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        func()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def populate(st, machines: list[str], per_machine: int, end: float, rng: random.Random,
             extra_machine: str | None = None, extra_samples: int = 0, chunk: int = 20000) -> None:
    """Bulk-load `per_machine` samples for each machine, one a minute up to `end` (epoch)."""
    from dashfleet_plugins.storage._sql.codecs import pack_extra

    # one real save per machine at `end` makes the machine rows and their `details` rows
    everyone = machines + ([extra_machine] if extra_machine else [])
    at_end = datetime.fromtimestamp(end, timezone.utc)
    st.save_reports([(make_report(m, 10**9, at_end, rng), OK) for m in everyone])
    with st._transaction(write=False) as tx:
        detail = dict(tx.all("SELECT machine_id, detail_id FROM samples WHERE seq = ?", (10**9,)))

    # a pool of realistic varying values, cycled: generating 5 million random JSON blobs would
    # take longer than loading them
    pool = [(round(rng.uniform(0, 100), 1), round(rng.uniform(20, 90), 1), round(rng.uniform(30, 95), 1),
             round(rng.uniform(0, 20), 1), pack_extra(extra_metrics(rng))[1])
            for _ in range(4099)]
    counter = [0]

    def row(machine: str, seq: int, at: float):
        counter[0] += 1
        cpu, mem, disk, swap, extra = pool[counter[0] % 4099]
        return ("default", machine, seq, at, at + 0.2, 100, "ok", cpu, mem, disk, swap, extra, None,
                detail[machine], 0)

    def flush(rows):
        if rows:
            st.bulk_insert_samples(rows)
            rows.clear()

    rows: list[tuple] = []
    done, total, started = 0, per_machine * len(machines) + extra_samples, time.perf_counter()
    longest = max(per_machine, extra_samples)
    for minute in range(longest):  # oldest first, all machines interleaved, as they arrive
        at = end - (longest - minute) * MINUTE
        if minute >= longest - per_machine:
            seq = minute - (longest - per_machine)
            rows.extend(row(m, seq, at) for m in machines)
        if extra_machine and minute >= longest - extra_samples:
            rows.append(row(extra_machine, minute - (longest - extra_samples), at))
        if len(rows) >= chunk:
            done += len(rows)
            flush(rows)
            if done % (chunk * 25) < chunk:
                rate = done / (time.perf_counter() - started)
                print(f"  loaded {done:,}/{total:,} samples ({rate:,.0f}/s)", file=sys.stderr)
    flush(rows)
    st.rebuild_rollups()  # the bulk rows bypassed save_report, which keeps the rollups
    if hasattr(st, "analyze"):
        st.analyze()  # PostgreSQL: what autovacuum would do after such a load


def measure(st, machines: list[str], chart_machine: str, saves: int, end: float, rng: random.Random) -> dict:
    since = datetime.fromtimestamp(end, timezone.utc) - timedelta(days=CHART_DAYS)
    until = datetime.fromtimestamp(end, timezone.utc) + timedelta(minutes=1)
    seqs = {m: 2 * 10**9 for m in machines}
    reports = []
    for i in range(saves):
        m = rng.choice(machines)
        seqs[m] += 1
        reports.append(make_report(m, seqs[m], until, rng))
    it = iter(reports)
    out = {
        "save": median_ms(lambda: st.save_report(next(it), OK), saves),
        "fleet": median_ms(lambda: st.machines(), 30),
        "chart_core": median_ms(lambda: st.history_buckets(chart_machine, since=since, until=until,
                                                           points=300, metrics=CORE), 20),
        "chart_all": median_ms(lambda: st.history_buckets(chart_machine, since=since, until=until,
                                                          points=300), 10),
    }
    buckets = st.history_buckets(chart_machine, since=since, until=until, points=300)
    out["chart_points"] = len(buckets)
    out["chart_samples"] = sum(b.count for b in buckets)
    out["fleet_size"] = len(st.machines())
    return out


def db_size(st, url: str) -> int:
    if url.startswith("sqlite"):
        conn = st._connection()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(os.path.getsize(p) for p in glob.glob(str(st.path) + "*") if not p.endswith(".lock"))
    with st._transaction(write=False) as tx:
        tx.run("ANALYZE")
        return int(tx.one(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
            "AND c.relkind = 'r'")[0])


def run_backend(name: str, url: str, args, pm, settings) -> dict:
    rng = random.Random(42)
    end = time.time() - 120
    machines = [f"ws-{i:05d}" for i in range(args.machines)]
    per_machine = max(1, args.samples // args.machines)
    print(f"[{name}] baseline: 10 machines x 1 day", file=sys.stderr)
    with open_storage(settings, pm, url("tiny")) as tiny:
        populate(tiny, machines[:10], DAY_SAMPLES, end, rng)
        base = measure(tiny, machines[:10], machines[0], args.saves, end, rng)
    print(f"[{name}] loading {args.machines:,} machines x {per_machine:,} samples "
          f"+ 1 machine x {CHART_DAYS * DAY_SAMPLES:,}", file=sys.stderr)
    full_url = url("full")
    with open_storage(settings, pm, full_url) as st:
        t = time.perf_counter()
        populate(st, machines, per_machine, end, rng, extra_machine="chart-30d",
                 extra_samples=CHART_DAYS * DAY_SAMPLES)
        load_s = time.perf_counter() - t
        full = measure(st, machines, "chart-30d", args.saves, end, rng)
        full_small = measure(st, machines, machines[0], 5, end, rng)
        samples = st.counts()["samples"]
        size = db_size(st, full_url)
    machine_days = samples / DAY_SAMPLES
    return {"name": name, "base": base, "full": full, "per_machine_chart": full_small["chart_all"],
            "samples": samples, "size": size, "load_s": load_s, "per_machine_day": size / machine_days}


def print_results(r: dict, args) -> None:
    b, f = r["base"], r["full"]
    print(f"\n== {r['name']}: {r['samples']:,} samples, {f['fleet_size']:,} machines "
          f"(loaded in {r['load_s']:.0f} s); baseline = 10 machines x 1 day, same run")
    rows = [
        ("save one report (durable commit)", "save", 1.0),
        (f"fleet list ({f['fleet_size']:,} machines)", "fleet", 20.0),
        (f"30-day chart, {f['chart_points']} points from {f['chart_samples']:,} samples, 3 core metrics",
         "chart_core", 50.0),
        (f"30-day chart, {f['chart_points']} points, all {len(make_report('x', 0, datetime.now(timezone.utc), random.Random()).metrics)} metrics",
         "chart_all", 50.0),
    ]
    for label, key, goal in rows:
        ratio = f[key] / b[key] if b[key] else float("nan")
        mark = "meets" if f[key] < goal else "MISSES"
        print(f"  {label:<72} median {f[key]:8.2f} ms  (x{ratio:5.2f} baseline {b[key]:.2f} ms; "
              f"goal < {goal:g} ms: {mark})")
    print(f"  {'database size':<72} {r['size'] / 2**20:8.1f} MiB = "
          f"{r['per_machine_day'] / 1024:.1f} KiB per machine per day of 1-minute samples")


def start_postgres(tmp: str) -> tuple[str, callable]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not bins:
        raise SystemExit("no PostgreSQL found: apt-get install postgresql, or set DASHFLEET_PG_DSN")
    bindir = os.path.dirname(bins[-1])
    as_pg = []
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = os.path.join(tmp, "data")
    subprocess.run(as_pg + [f"{bindir}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c shared_buffers=256MB -c max_wal_size=4GB"
    subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", data, "-l", f"{tmp}/server.log", "-w", "-o", opts,
                            "start"], check=True, capture_output=True)

    def stop():
        subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--machines", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=5_000_000, help="1-minute samples across the fleet")
    ap.add_argument("--saves", type=int, default=1000, help="single saves timed for the median")
    ap.add_argument("--dir", default=None, help="where the SQLite files go (default: a temp folder)")
    args = ap.parse_args()
    settings = Settings()
    pm = make_plugin_manager(settings)
    tmp = tempfile.mkdtemp(prefix="dashfleet-bench-", dir=args.dir)
    results = []
    stop_pg = None
    try:
        if args.backend in ("sqlite", "both"):
            results.append(run_backend("SQLite", lambda n: f"sqlite:///{tmp}/{n}.db", args, pm, settings))
            print_results(results[-1], args)
        if args.backend in ("postgresql", "both"):
            dsn = os.environ.get("DASHFLEET_PG_DSN")
            if not dsn:
                pgdir = tempfile.mkdtemp(prefix="dashfleet-bench-pg-")
                dsn, stop_pg = start_postgres(pgdir)
            import psycopg

            schemas = []

            def pg_url(name):
                schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f'CREATE SCHEMA "{schema}"')
                schemas.append(schema)
                return f"{dsn}?options=-csearch_path%3D{schema}"

            try:
                results.append(run_backend("PostgreSQL", pg_url, args, pm, settings))
                print_results(results[-1], args)
            finally:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    for schema in schemas:
                        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        if stop_pg:
            stop_pg()
            shutil.rmtree(pgdir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
