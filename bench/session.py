"""What a dashboard login costs a read: `GET /api/fleet` and the `/fleet` page with a session cookie
vs anonymous `[server] public_read`, on the same server in the same run (gunicorn, 2 workers, SQLite,
200 machines), in alternating rounds so the shared machine's drift hits both alike. The session is
read from storage on every request (nothing is cached in a worker: a revoked session must be refused
at once), so the ratio is the price of that read. Goal: >= 0.9.

    .venv/bin/python bench/session.py [--seconds 3] [--rounds 5] [--clients 2]
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

BIN = Path(sys.executable).parent


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(folder: Path) -> str:
    """200 machines and a viewer with a live session; returns the session id."""
    from dashfleet_core.accounts import Accounts
    from dashfleet_core.config import load_settings
    from dashfleet_core.fleet import Fleet
    from dashfleet_core.models import Report, utcnow

    settings = load_settings(folder / "dashfleet.toml", env={})
    fleet = Fleet(settings)
    now = utcnow()
    items = []
    for i in range(200):
        rep = Report(machine_id=f"ws-{i:03d}", hostname=f"ws-{i:03d}", os="Windows 11", agent_version="0.1.0",
                     seq=1, collected_at=now - timedelta(seconds=30),
                     metrics={"cpu.percent": 20.0 + i % 70, "memory.percent": 50.0, "disk.percent": 40.0})
        items.append((rep, fleet.engine.evaluate(rep.metrics)))
    fleet.storage.save_reports(items, received_at=now)
    accounts = Accounts(fleet.storage, settings)
    accounts.users.add("bench", "a long bench password", org="default", role="viewer")
    sid, _ = accounts.sessions.create("bench", 0, "default")
    fleet.stop()
    return sid


def _load(port: int, path: str, headers: dict, seconds: float, clients: int) -> float:
    """Requests per second answered 200 by `clients` threads for `seconds`."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        while time.monotonic() < stop:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            answer.read()
            conn.close()
            if answer.status != 200:
                print(f"{path}: {answer.status} {answer.read()[:200]!r}", file=sys.stderr)
                raise SystemExit(1)
            done[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dashfleet-bench-session-"))
    (folder / "dashfleet.toml").write_text(
        f'[storage]\nurl = "sqlite:///{folder}/dashfleet.db"\n\n[server]\ndata_dir = "{folder}"\n'
        'report_self = false\npublic_read = true\ntoken = "bench-session-fleet-token"\n')
    sid = _seed(folder)
    port = _free_port()
    proc = subprocess.Popen([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                             "--no-control-socket", "dashfleet_web.app:create_app()"], cwd=folder,
                            env={"DASHFLEET_CONFIG": str(folder / "dashfleet.toml"), "PATH": str(BIN)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        session = {"Cookie": f"dashfleet_session={sid}", "Accept": "application/json"}
        public = {"Accept": "application/json"}
        for path in ("/api/fleet", "/fleet"):
            html = {} if path.startswith("/api") else {"Accept": "text/html"}
            _load(port, path, {**public, **html}, 1, args.clients)  # warm up both workers
            ratios, with_session, without = [], [], []
            for _ in range(args.rounds):
                a = _load(port, path, {**session, **html}, args.seconds, args.clients)
                b = _load(port, path, {**public, **html}, args.seconds, args.clients)
                with_session.append(a)
                without.append(b)
                ratios.append(a / b)
            print(f"{path}: session {statistics.median(with_session):.0f} req/s, public_read "
                  f"{statistics.median(without):.0f} req/s, ratio median {statistics.median(ratios):.3f} "
                  f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
