"""Reads with a dashboard session vs the open `public_read` dashboard (issue 14): `GET /api/fleet` and
the `/fleet` page on one gunicorn server (2 workers, SQLite, 500 machines), the same run, in
alternating blocks (ABBA) so drift on the shared machine weighs on both alike.

The server has `[server] public_read = true`; a request without a cookie is the anonymous reader of
`default`, a request with the `dashfleet_session` cookie is an operator of `default` whose session is
looked up in storage on every request (nothing about it is cached in the worker). Each block sends
sequential requests on new connections (gunicorn's sync workers close each one); the figures are
the median latency and the server's CPU per request (master + workers, from psutil).

Ratio = requests/s with the session / requests/s with public_read (1 / median latency), goal >= 0.9.

    .venv/bin/python bench/auth_reads.py [--machines 500] [--requests 600] [--block 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import ingest  # noqa: E402  (bench/ingest.py: gunicorn, raw HTTP and seeding helpers)

PATHS = ("/api/fleet", "/fleet")
MODES = ("session", "public_read")


def raw_get(path: str, cookie: str | None) -> bytes:
    head = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if cookie:
        head.append(f"Cookie: dashfleet_session={cookie}")
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def block(port: int, raw: bytes, n: int) -> tuple[list[float], float]:
    """(latencies in ms, server CPU seconds) of n sequential requests."""
    times = []
    cpu0 = ingest.server_cpu()
    for _ in range(n):
        t0 = time.perf_counter()
        status = ingest.send(port, raw)
        times.append((time.perf_counter() - t0) * 1000)
        assert status == 200, status
    return times, ingest.server_cpu() - cpu0


def make_session(config: Path) -> str:
    """An operator of `default` and a live session, written into the server's storage."""
    from dashfleet_core.config import load_settings
    from dashfleet_core.fleet import Fleet

    fleet = Fleet(load_settings(config, env={}))
    try:
        user = fleet.accounts.users.add("bench-operator", "a long bench passphrase", org="default", role="operator")
        sid, _ = fleet.accounts.sessions.create(user.username, user.epoch, "default")
    finally:
        fleet.stop()
    return sid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=500)
    parser.add_argument("--requests", type=int, default=600, help="requests per path and mode")
    parser.add_argument("--block", type=int, default=20, help="requests per block; modes alternate block by block")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dashfleet-authreads-"))
    config = tmp / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp}/web.db"\n\n[server]\ndata_dir = "{tmp}"\n'
                      'public_read = true\nreport_self = false\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "DASHFLEET_", "ACTION_"))}
    env.update(DASHFLEET_CONFIG=str(config), FLEET_TOKEN=ingest.TOKEN)
    sid = make_session(config)
    proc, port = ingest.start_gunicorn("dashfleet_web.app:create_app()", env, tmp)
    times: dict[tuple[str, str], list[float]] = {(p, m): [] for p in PATHS for m in MODES}
    cpu: dict[tuple[str, str], float] = {(p, m): 0.0 for p in PATHS for m in MODES}
    try:
        ingest.seed_machines(port, args.machines)
        # the cookie really is a session (an unknown one would fall back to public_read): the
        # audit needs scope operate, which the session has and the anonymous reader has not
        assert ingest.send(port, raw_get("/api/audit", sid)) == 200
        assert ingest.send(port, raw_get("/api/audit", None)) == 401
        for path in PATHS:
            for mode in MODES:
                block(port, raw_get(path, sid if mode == "session" else None), 20)  # warm both workers
            for n in range(args.requests // args.block):
                # ABBA: each mode goes first as often as second, so drift and order weigh alike
                for mode in (MODES if n % 2 == 0 else MODES[::-1]):
                    took, used = block(port, raw_get(path, sid if mode == "session" else None), args.block)
                    times[(path, mode)] += took
                    cpu[(path, mode)] += used
    finally:
        ingest.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Reads with a session vs public_read: gunicorn 2 workers, SQLite, {args.machines} machines, "
          f"{args.requests} sequential requests per path and mode in alternating blocks of {args.block}")
    for path in PATHS:
        med = {m: statistics.median(times[(path, m)]) for m in MODES}
        per = {m: cpu[(path, m)] * 1000 / len(times[(path, m)]) for m in MODES}
        ratio = med["public_read"] / med["session"]
        print(f"   {path:<11} public_read {med['public_read']:6.2f} ms ({per['public_read']:5.2f} ms CPU/request)   "
              f"session {med['session']:6.2f} ms ({per['session']:5.2f} ms CPU/request)   "
              f"ratio {ratio:.2f} (goal >= 0.9: {'meets' if ratio >= 0.9 else 'MISSES'}), "
              f"CPU ratio {per['public_read'] / per['session']:.2f}")


if __name__ == "__main__":
    main()
