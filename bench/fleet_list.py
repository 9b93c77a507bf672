"""Fleet list read cost (issues 3 and 4): `storage.machines()` and `GET /api/fleet` with 1,000
machines, each as a ratio to a baseline measured in the same run (the machine is shared, so
absolute numbers drift).

1. `storage.machines()` on SQLite, in process, 1,000 machines (a third of them with findings):
   - warm: the fleet unchanged since the previous read (the page refreshing between reports);
   - 10% changed: 100 machines reported since the previous read (1,000 machines reporting every
     minute, the page refreshing every 6 s); only the read is timed;
   - cold: the row cache emptied before each read, i.e. every machine validated by pydantic
     again (goal for every case: < 20 ms median);
   - previous: the read path before the cache and epoch-number times (`previous_machines` in
     bench/bench_fleet_plugin.py), the baseline.
2. `GET /api/fleet` under gunicorn (2 sync workers, SQLite), 1,000 machines (+ the server's own),
   sequential requests on new connections, vs on the same server (bench/bench_fleet_plugin.py):
   `/bench/fleet-uncached` (the list as built before the caches: the previous read path, then
   `jsonify` of `fleet_json`'s document), `/bench/fleet-cold` (today's code, every machine changed since
   the previous read) and `/bench/noop` (goal: `/api/fleet` < 50 ms median).

    .venv/bin/python bench/fleet_list.py [--machines 1000] [--requests 100]
    .venv/bin/python bench/fleet_list.py --part storage --backend postgresql
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import ingest  # noqa: E402  (bench/ingest.py: gunicorn, raw HTTP and seeding helpers)
from bench_fleet_plugin import previous_machines  # noqa: E402
from storage import make_report  # noqa: E402  (bench/storage.py: a realistic report)

from dashfleet_core.config import Settings  # noqa: E402
from dashfleet_core.models import Finding, Health  # noqa: E402
from dashfleet_core.plugins import make_plugin_manager  # noqa: E402
from dashfleet_core.storage import open_storage  # noqa: E402

OK = Health(score=100, status="ok")
WARN = Health(score=55, status="critical", findings=[
    Finding(metric="cpu.percent", value=97.0, threshold=90.0, severity="warn", message="CPU 97% (warn at 90%)", source="threshold"),
    Finding(metric="disk.percent", value=96.0, threshold=95.0, severity="critical", message="disk 96% (critical at 95%)", source="threshold")])


def timed(func, repeat: int, before=None) -> float:
    """Median milliseconds of `func`; `before` runs untimed before each call."""
    times = []
    for _ in range(repeat):
        if before:
            before()
        t = time.perf_counter()
        func()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def storage_part(name: str, url: str, n: int, repeat: int) -> None:
    from dashfleet_plugins.storage._sql.codecs import StateCache

    rng = random.Random(7)
    settings = Settings()
    with open_storage(settings, make_plugin_manager(), url) as st:
        now = datetime.now(timezone.utc)
        machines = [f"ws-{i:05d}" for i in range(n)]
        st.save_reports([(make_report(m, 1, now, rng), WARN if i % 3 == 0 else OK) for i, m in enumerate(machines)])
        seq = [1]

        def hundred_report():
            seq[0] += 1
            at = now + timedelta(seconds=seq[0])
            st.save_reports([(make_report(m, seq[0], at, rng), OK) for m in rng.sample(machines, n // 10)])

        def forget():
            st._states = StateCache()

        st.machines()
        warm = timed(st.machines, repeat)
        changed = timed(st.machines, repeat, before=hundred_report)
        cold = timed(st.machines, repeat, before=forget)
        previous = timed(lambda: previous_machines(st), repeat)
        assert previous_machines(st) == st.machines() and len(st.machines()) == n
    print(f"1. storage.machines(), {name}, {n:,} machines, median of {repeat}; baseline = the read path before the cache, same run")
    print(f"   previous read path            {previous:7.2f} ms  (baseline)")
    for label, ms in (("cold (every machine changed)", cold), ("10% changed since last read", changed),
                      ("warm (unchanged)", warm)):
        print(f"   {label:<29} {ms:7.2f} ms  ratio {ms / previous:.2f}  (goal < 20 ms: {'meets' if ms < 20 else 'MISSES'})")


def http_part(tmp: Path, n: int, requests: int) -> None:
    config = tmp / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp}/web.db"\n\n[server]\ndata_dir = "{tmp}"\n\n'
                      '[plugins]\nmodules = ["bench_noop_plugin", "bench_fleet_plugin"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "DASHFLEET_"))}
    env.update(DASHFLEET_CONFIG=str(config), FLEET_TOKEN=ingest.TOKEN, PYTHONPATH=str(HERE))
    proc, port = ingest.start_gunicorn("dashfleet_web.app:create_app()", env, tmp)
    paths = ["/api/fleet", "/bench/fleet-cold", "/bench/fleet-uncached", "/bench/noop"]
    try:
        ingest.seed_machines(port, n)
        results: dict[str, list[float]] = {p: [] for p in paths}
        for _ in range(2):  # two rounds of blocks, so drift weighs on every path alike
            for path in paths:
                ingest.median_ms(port, path, 4)  # warm both workers for this path
                results[path].append(ingest.median_ms(port, path, requests // 2))
    finally:
        ingest.stop(proc)
    med = {p: statistics.mean(v) for p, v in results.items()}
    api, cold, old, noop = (med[p] for p in paths)
    print(f"2. GET over HTTP, gunicorn 2 workers, {n:,} machines (+ the server's own), {requests} sequential requests each; "
          f"baseline = /bench/fleet-uncached (the list before the caches), same server")
    print(f"   /bench/fleet-uncached  {old:7.1f} ms  (baseline)")
    print(f"   /bench/fleet-cold      {cold:7.1f} ms  ratio {cold / old:.2f}  (every machine changed since the last read)")
    print(f"   /api/fleet             {api:7.1f} ms  ratio {api / old:.2f}  (goal < 50 ms: {'meets' if api < 50 else 'MISSES'}); "
          f"{api / noop:.1f}x the no-op GET ({noop:.1f} ms)")


def postgresql_part(args) -> None:
    """Part 1 on a fresh schema of $DASHFLEET_PG_DSN, else of a throwaway server (bench/storage.py's)."""
    import uuid

    import psycopg
    from storage import start_postgres

    dsn, stop_pg, pgdir = os.environ.get("DASHFLEET_PG_DSN"), None, None
    if not dsn:
        pgdir = tempfile.mkdtemp(prefix="dashfleet-bench-pg-")
        dsn, stop_pg = start_postgres(pgdir)
    schema = f"bench_fleet_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            storage_part("PostgreSQL", f"{dsn}?options=-csearch_path%3D{schema}", args.machines, args.repeat)
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        if stop_pg:
            stop_pg()
            shutil.rmtree(pgdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30, help="reads timed per storage case")
    parser.add_argument("--requests", type=int, default=100, help="HTTP requests timed per path")
    parser.add_argument("--part", choices=("storage", "http", "both"), default="both")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite",
                        help="for part 1 (PostgreSQL: $DASHFLEET_PG_DSN, else a throwaway server)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dashfleet-fleetlist-"))
    try:
        if args.part in ("storage", "both"):
            if args.backend == "sqlite":
                storage_part("SQLite", f"sqlite:///{tmp}/fleet.db", args.machines, args.repeat)
            else:
                postgresql_part(args)
        if args.part in ("http", "both"):
            http_part(tmp, args.machines, args.requests)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
