"""What the tab's title and favicon cost on the pages other than `/fleet` (issue 16): `GET
/api/summary` (counts by status, the worst one) against `GET /api/fleet` (the whole list, which
those pages would otherwise have to fetch) on the same gunicorn server (2 workers, SQLite), with
2,000 machines, and the no-op GET of bench/bench_noop_plugin.py as the floor. Sequential requests on
new connections; medians of two rounds of blocks, so drift weighs on every path alike.

    .venv/bin/python bench/fleet_summary.py [--machines 2000] [--requests 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.request import urlopen

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ingest  # noqa: E402  (bench/ingest.py: gunicorn, raw HTTP and seeding helpers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=100, help="requests timed per path")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dashfleet-bench-summary-"))
    try:
        config = tmp / "dashfleet.toml"
        config.write_text(f'[storage]\nurl = "sqlite:///{tmp}/web.db"\n\n[server]\ndata_dir = "{tmp}"\n'
                          'public_read = true\nreport_self = false\n\n[plugins]\nmodules = ["bench_noop_plugin"]\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "DASHFLEET_"))}
        env.update(DASHFLEET_CONFIG=str(config), FLEET_TOKEN=ingest.TOKEN, PYTHONPATH=str(HERE))
        proc, port = ingest.start_gunicorn("dashfleet_web.app:create_app()", env, tmp)
        paths = ["/api/fleet", "/api/summary", "/bench/noop"]
        try:
            ingest.seed_machines(port, args.machines)
            sizes = {p: len(urlopen(f"http://127.0.0.1:{port}{p}", timeout=30).read()) for p in paths}
            results: dict[str, list[float]] = {p: [] for p in paths}
            for _ in range(2):
                for path in paths:
                    ingest.median_ms(port, path, 4)  # warm both workers for this path
                    results[path].append(ingest.median_ms(port, path, args.requests // 2))
        finally:
            ingest.stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {p: statistics.mean(v) for p, v in results.items()}
    fleet, summary, noop = (med[p] for p in paths)
    print(f"GET over HTTP, gunicorn 2 workers, SQLite, {args.machines:,} machines, {args.requests} sequential "
          "requests each (median of two blocks)")
    print(f"   /api/fleet    {fleet:7.1f} ms  {sizes['/api/fleet']:>9,} bytes  (baseline: what another page would "
          "fetch without the summary)")
    print(f"   /api/summary  {summary:7.1f} ms  {sizes['/api/summary']:>9,} bytes  ratio {summary / fleet:.2f} (time), "
          f"{sizes['/api/summary'] / sizes['/api/fleet']:.5f} (bytes)")
    print(f"   /bench/noop   {noop:7.1f} ms  (floor)")


if __name__ == "__main__":
    main()
