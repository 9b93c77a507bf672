"""Slow clients against the ways to serve DashFleet (issue 12, item 6), and what each costs.

1. Latency under attack: N connections each trickling a request one byte every `--every` s, either
   in the body (headers sent whole, `Content-Length` never reached) or in the headers (never ended).
   With 0 and N of each open, sequential probes of `GET /healthz` and `POST /api/fleet/report`, each
   on a new connection with a 5 s client timeout: how many succeeded, and their median latency.
   Servers: `dashfleet web` (waitress: the systemd unit's command), gunicorn 2 sync workers behind
   nginx with deploy/nginx/dashfleet.conf (TLS; skipped without nginx), gunicorn 2 sync workers
   alone, and the previous `dashfleet web` (Werkzeug's threaded server, rebuilt here).
   A server that failed 3 probes of a kind in a row is not probed further: the rest count as failed.
2. Ingest throughput (single reports, `--clients` processes, raw HTTP, one connection per request)
   of `dashfleet web` vs the previous Werkzeug one and vs gunicorn 2 sync workers: all three
   running, taking turns for `--rounds` rounds; the median round of each, and the ratios. Also the
   server's CPU time per report (all its processes), which the machine's other load moves less.

    .venv/bin/python bench/slow_clients.py [--slow 50] [--every 2] [--probes 10] [--seconds 5] [--rounds 3] [--clients 4]

The slow-client and nginx helpers are also what tests/test_slow_clients.py attacks with.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import ingest  # noqa: E402  (bench/ingest.py: raw HTTP, load generator, gunicorn)

NGINX_CONF = REPO / "deploy" / "nginx" / "dashfleet.conf"
CLIENT_TIMEOUT = 5.0


class SlowClients:
    """`count` connections to 127.0.0.1:`port`, each sending its request one byte every `every` s
    from one background thread. `kind` "body": whole headers of a POST, then the body byte by byte;
    "header": a request line, then header bytes that never end. `tls`: wrap each in TLS first."""

    def __init__(self, port: int, count: int, kind: str = "body", every: float = 2.0,
                 tls: ssl.SSLContext | None = None) -> None:
        if kind not in ("body", "header"):
            raise ValueError(f"kind is 'body' or 'header', not {kind!r}")
        self.port, self.count, self.kind, self.every, self.tls = port, count, kind, every, tls
        self.socks: list[socket.socket] = []
        self.closed = 0  # connections the server closed (a send failed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, name=f"slow-{kind}", daemon=True)

    def __enter__(self) -> "SlowClients":
        if self.kind == "body":
            first = (b"POST /api/fleet/report HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n[")
        else:
            first = b"POST /api/fleet/report HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=CLIENT_TIMEOUT)
            if self.tls:
                sock = self.tls.wrap_socket(sock, server_hostname="127.0.0.1")
            sock.sendall(first)
            self.socks.append(sock)
        self._thread.start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(self.every):
            for sock in list(self.socks):
                try:
                    sock.sendall(b" " if self.kind == "body" else b"a")
                except OSError:
                    self.socks.remove(sock)
                    self.closed += 1
                    sock.close()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


# --- nginx in front of gunicorn: the shipped config, on free ports in a folder ----------------------


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), as (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def render_nginx(folder: Path, http_port: int, https_port: int, upstream_port: int,
                 cert: Path, key: Path) -> Path:
    """deploy/nginx/dashfleet.conf with its ports, certificate and upstream moved to 127.0.0.1
    test values, inside a minimal nginx.conf whose paths all live in `folder`; returns that file."""
    site = NGINX_CONF.read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen [::]:443 ssl;": "",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "/etc/ssl/dashfleet/fullchain.pem": str(cert),
        "/etc/ssl/dashfleet/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        if old not in site:
            raise AssertionError(f"{NGINX_CONF} no longer has {old!r}: update render_nginx")
        site = site.replace(old, new)
    (folder / "dashfleet.conf").write_text(site)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / sub).mkdir(exist_ok=True)
    main = folder / "nginx.conf"
    user = "user root root;\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {folder}/body;\n"
        f"  proxy_temp_path {folder}/proxy;\n  fastcgi_temp_path {folder}/fastcgi;\n"
        f"  uwsgi_temp_path {folder}/uwsgi;\n  scgi_temp_path {folder}/scgi;\n"
        f"  include {folder}/dashfleet.conf;\n}}\n")
    return main


def start_nginx(folder: Path, upstream_port: int) -> tuple[subprocess.Popen, int, Path]:
    """nginx with the shipped site config in front of 127.0.0.1:`upstream_port`, TLS on a free
    port; returns (process, https port, CA file to verify it with)."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    cert, key = make_cert(folder)
    https_port = ingest.free_port()
    conf = render_nginx(folder, ingest.free_port(), https_port, upstream_port, cert, key)
    with open(folder / "nginx.out", "ab") as out:  # the child keeps its own copy of the file
        proc = subprocess.Popen([binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=out)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited {proc.returncode}: {(folder / 'nginx.out').read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
            return proc, https_port, cert
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("nginx did not listen within 20 s")


# --- the servers --------------------------------------------------------------------------------


def bench_env(folder: Path, **server) -> dict:
    """Environment for a server on a fresh SQLite database in `folder` (token: ingest.TOKEN)."""
    lines = [f'[storage]\nurl = "sqlite:///{folder}/dashfleet.db"\n\n[server]\ndata_dir = "{folder}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in server.items()]
    (folder / "dashfleet.toml").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "DASHFLEET_")) and k not in ("HOST", "PORT")}
    env.update(DASHFLEET_CONFIG=str(folder / "dashfleet.toml"), FLEET_TOKEN=ingest.TOKEN)
    return env


def _wait(proc: subprocess.Popen, port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            if ingest.send(port, ingest.http_request("GET", "/healthz")) == 200:
                return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{what} did not answer within 30 s")


def start_web(folder: Path, env: dict) -> tuple[subprocess.Popen, int]:
    """`dashfleet web`, as the systemd unit runs it (settings from the environment)."""
    port = ingest.free_port()
    exe = Path(sys.executable).with_name("dashfleet")
    with open(folder / "web.log", "ab") as log:
        proc = subprocess.Popen([str(exe), "web"], cwd=folder, env=dict(env, PORT=str(port), HOST="127.0.0.1"),
                                stdout=subprocess.DEVNULL, stderr=log)
    _wait(proc, port, "dashfleet web")
    return proc, port


def start_werkzeug(folder: Path, env: dict) -> tuple[subprocess.Popen, int]:
    """The previous `dashfleet web`: the same app and jobs on Werkzeug's threaded server."""
    port = ingest.free_port()
    with open(folder / "werkzeug.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, __file__, "--serve-werkzeug", str(port)], cwd=folder, env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
    _wait(proc, port, "werkzeug")
    return proc, port


def serve_werkzeug(port: int) -> None:
    import logging

    from werkzeug.serving import make_server

    from dashfleet_core.config import load_settings
    from dashfleet_core.fleet import Fleet
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_web.app import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    settings = load_settings(None)
    fleet = Fleet(settings, make_plugin_manager(settings))
    server = make_server("127.0.0.1", port, create_app(fleet=fleet, start=False), threaded=True)
    server.daemon_threads = True
    fleet.start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        fleet.stop()


# --- the measures -------------------------------------------------------------------------------


def probe(base: str, what: str, seq: int, verify: str | bool) -> float | None:
    """One request on a new connection; its latency in ms, or None if it failed or timed out."""
    import requests

    t0 = time.perf_counter()
    try:
        if what == "healthz":
            r = requests.get(base + "/healthz", timeout=CLIENT_TIMEOUT, verify=verify)
            ok = r.status_code == 200
        else:
            r = requests.post(base + "/api/fleet/report", json=ingest.report(f"probe-{seq % 10}", seq),
                              headers={"Authorization": f"Bearer {ingest.TOKEN}"},
                              timeout=CLIENT_TIMEOUT, verify=verify)
            ok = r.status_code in (200, 201)
    except Exception:  # noqa: BLE001 - any failure is a failed probe
        return None
    return (time.perf_counter() - t0) * 1000 if ok else None


def probes(base: str, n: int, seq0: int, verify: str | bool = True) -> str:
    """`n` probes of each kind; "ok/n, median ms" per kind (stops a kind after 3 failures in a row)."""
    out = []
    for what in ("healthz", "report"):
        times, failed, streak = [], 0, 0
        for i in range(n):
            t = probe(base, what, seq0 + i, verify)
            if t is None:
                failed, streak = failed + 1, streak + 1
                if streak == 3:
                    failed += n - i - 1
                    break
            else:
                times.append(t)
                streak = 0
        median = f"{statistics.median(times):7.1f} ms" if times else "      – ms"
        gave_up = " (gave up after 3 failures in a row)" if streak == 3 else ""
        out.append(f"{what} {len(times):>2}/{n} ok, median {median}{gave_up}")
    return " | ".join(out)


def attack(name: str, port: int, base: str, args, tls: ssl.SSLContext | None = None,
           verify: str | bool = True) -> None:
    print(f"  {name}")
    seq = int(time.time() * 1000)
    print(f"    {'no slow connections':<44} {probes(base, args.probes, seq, verify)}")
    for label, kinds in ((f"{args.slow} slow-body", ("body",)), (f"{args.slow} slow-header", ("header",)),
                         (f"{args.slow} slow-body + {args.slow} slow-header", ("body", "header"))):
        seq += 1000
        try:
            groups = [SlowClients(port, args.slow, kind, args.every, tls).__enter__() for kind in kinds]
        except OSError as exc:
            print(f"    {label + ' connections':<44} could not open them: {exc}")
            continue
        try:
            time.sleep(args.every + 0.5)  # every slow connection has sent at least once more
            result = probes(base, args.probes, seq, verify)
            closed = sum(g.closed for g in groups)
        finally:
            for g in groups:
                g.__exit__(None, None, None)
        print(f"    {label + ' connections':<44} {result}  (slow ones closed by the server: {closed})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=50, help="slow connections of each kind")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between two bytes of a slow client")
    parser.add_argument("--probes", type=int, default=10, help="probes of each kind per situation")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per server")
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes for throughput")
    parser.add_argument("--serve-werkzeug", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_werkzeug:
        serve_werkzeug(args.serve_werkzeug)
        return

    tmp = Path(tempfile.mkdtemp(prefix="dashfleet-slow-"))
    print(f"bench/slow_clients.py: {args.slow} slow connections of each kind, one byte every {args.every:g} s; "
          f"{args.probes} probes of each kind, client timeout {CLIENT_TIMEOUT:g} s; SQLite in {tmp}; "
          f"{os.cpu_count()} CPUs shared with the clients; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    running: list[subprocess.Popen] = []

    def fresh(name: str) -> tuple[Path, dict]:
        folder = tmp / name
        folder.mkdir()
        return folder, bench_env(folder, report_self=False)

    try:
        print("1. latency under slow clients (successes within 5 s, median of the successes)")
        folder, env = fresh("web")
        proc, port = start_web(folder, env)
        running.append(proc)
        attack("dashfleet web (waitress)", port, f"http://127.0.0.1:{port}", args)
        ingest.stop(proc)

        if nginx_binary():
            folder, env = fresh("nginx")
            gunicorn, gport = ingest.start_gunicorn("dashfleet_web.app:create_app()", env, folder)
            running.append(gunicorn)
            nginx, nport, cert = start_nginx(folder, gport)
            running.append(nginx)
            tls = ssl.create_default_context(cafile=str(cert))
            attack("gunicorn --workers 2 (sync) behind nginx (deploy/nginx/dashfleet.conf, TLS)", nport,
                   f"https://127.0.0.1:{nport}", args, tls=tls, verify=str(cert))
            ingest.stop(nginx)
            ingest.stop(gunicorn)
        else:
            print("  gunicorn behind nginx: skipped, nginx is not installed")

        folder, env = fresh("gunicorn")
        proc, port = ingest.start_gunicorn("dashfleet_web.app:create_app()", env, folder)
        running.append(proc)
        attack("gunicorn --workers 2 (sync) alone (the previous README's production line)", port,
               f"http://127.0.0.1:{port}", args)
        ingest.stop(proc)

        folder, env = fresh("werkzeug")
        proc, port = start_werkzeug(folder, env)
        running.append(proc)
        attack("previous dashfleet web (Werkzeug threaded)", port, f"http://127.0.0.1:{port}", args)
        ingest.stop(proc)

        print(f"2. ingest throughput: single reports over 1,000 machines, {args.clients} client processes, "
              f"one connection per request; {args.rounds} rounds of {args.seconds:g} s per server, the servers "
              "taking turns (the machine is shared: the median round counts)")
        starters = (("dashfleet web (waitress)", start_web), ("previous dashfleet web (Werkzeug)", start_werkzeug),
                    ("gunicorn --workers 2 (sync)",
                     lambda f, e: ingest.start_gunicorn("dashfleet_web.app:create_app()", e, f)))
        ports, pids = {}, {}
        for i, (name, start) in enumerate(starters):
            folder, env = fresh(f"load{i}")
            proc, ports[name] = start(folder, env)
            pids[name] = proc.pid
            running.append(proc)
            ingest.seed_machines(ports[name], 1000, "pc-")
        rounds: dict[str, list[float]] = {name: [] for name in ports}
        cpu: dict[str, list[float]] = {name: [] for name in ports}
        for name, port in ports.items():
            ingest.SERVER_PID = pids[name]
            ingest.load(port, "report", 1.0, args.clients, machines=1000)  # warm-up
        for _ in range(args.rounds):
            for name, port in ports.items():
                ingest.SERVER_PID = pids[name]  # `load` measures the server's CPU (process and children)
                rounds[name].append(ingest.load(port, "report", args.seconds, args.clients, machines=1000))
                cpu[name].append(ingest.SERVER_CPU["reportx1"] * 1e6)
        rates = {name: statistics.median(r) for name, r in rounds.items()}
        costs = {name: statistics.median(c) for name, c in cpu.items()}
        name0 = "dashfleet web (waitress)"
        for name, rate in rates.items():
            each = ", ".join(f"{r:.0f}" for r in rounds[name])
            print(f"   {name:<36} {rate:6.0f} reports/s (rounds: {each}); ratio {rates[name0] / rate:.2f} | "
                  f"server CPU {costs[name]:5.0f} us per report; ratio {costs[name0] / costs[name]:.2f}")
        print("   (ratio: dashfleet web's figure / this server's)")
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
