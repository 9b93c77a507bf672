"""Ingest throughput of `POST /api/fleet/report` on SQLite under gunicorn (2 workers), as ratios to
baselines measured in the same run (the machine is shared, so absolute numbers drift).

1. Single reports (spread over 1,000 existing machines) vs a Flask no-op endpoint on the same server (it reads the same body and answers
   a small JSON): requests/s ratio (goal >= 0.7); also a bare Flask insert of the body into SQLite
   with the same durability, for reference.
2. Batches of 50 reports per request vs single reports: reports/s ratio (goal >= 10), for batches
   mixing 50 machines and for batches from one machine (what an agent flushing its spool sends).
3. Cost per report from 1 to 10,000 distinct machines (all existing before the measure): reports/s
   at each size as a ratio to 1 machine (goal: flat).
4. `GET /api/fleet` with 1,000 machines: median latency (goal < 50 ms), and as a ratio to the
   no-op endpoint's median on the same server.
5. Idle RSS of the gunicorn process tree (master + 2 workers, jobs running) vs a bare Flask app
   under the same gunicorn settings (goal <= 1.3x); also the same bare app importing only
   DashFleet's pydantic models and config (the floor the required dependencies set).

The load generator is N processes on 127.0.0.1 sending raw HTTP/1.1 requests (gunicorn's sync
workers close each connection, so each request opens one).

    .venv/bin/python bench/ingest.py [--seconds 5] [--clients 4] [--threads N] [--only ratio|machines|fleet|memory]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TOKEN = "bench-token"
# a recent time: the server refuses reports older than its retention window (and ahead of its clock)
COLLECTED_AT = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(machine: str, seq: int) -> dict:
    """A realistic report: what the built-in collectors send from a 4-core workstation."""
    return {
        "machine_id": machine, "hostname": machine, "os": "Windows 11", "agent_version": "0.1.0",
        "seq": seq, "collected_at": COLLECTED_AT,
        "metrics": {"cpu.percent": 23.5, "cpu.count": 4, "cpu.core0.percent": 20.0, "cpu.core1.percent": 25.0,
                    "cpu.core2.percent": 21.0, "cpu.core3.percent": 28.0, "memory.percent": 61.2,
                    "memory.used_bytes": 5.1e9, "memory.total_bytes": 8.4e9, "disk.percent": 48.0,
                    "disk.free_bytes": 1.2e11, "uptime.seconds": 86400.0, "net.bytes_sent": 1.0e9,
                    "net.bytes_recv": 3.0e9},
        "facts": {"os.release": "22H2", "cpu.model": "Intel(R) Core(TM) i5-8250U"},
    }


def http_request(method: str, path: str, body: bytes = b"", token: bool = False) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if token:
        head.append(f"Authorization: Bearer {TOKEN}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def send(port: int, raw: bytes) -> int:
    """One request on a new connection; returns the HTTP status."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(raw)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    head = b"".join(chunks)[:12]
    return int(head[9:12]) if head.startswith(b"HTTP/1.") else 0


def _client(args) -> tuple[int, int]:
    """One load-generator process: requests for `seconds`; returns (2xx answers, others)."""
    port, kind, seconds, index, machines, batch = args
    ok = bad = 0
    seq = index * 10**12
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if kind in ("noop", "insert"):
            body = json.dumps(report(f"pc-{seq % machines}", seq)).encode()
            raw = http_request("POST", f"/bench/{kind}", body)
        elif kind == "spool":  # a batch from one agent flushing its spool: one machine, seq in order
            body = json.dumps([report(f"pc-{(seq * 7919) % machines}", seq + i) for i in range(batch)]).encode()
            raw = http_request("POST", "/api/fleet/report", body, token=True)
        else:  # spread over `machines` existing machines; (machine, seq) unique across clients
            body = json.dumps([report(f"pc-{((seq + i) * 7919) % machines}", seq + i) for i in range(batch)]
                              if batch > 1 else report(f"pc-{(seq * 7919) % machines}", seq)).encode()
            raw = http_request("POST", "/api/fleet/report", body, token=True)
        seq += batch
        status = send(port, raw)
        if 200 <= status < 300:
            ok += 1
        else:
            bad += 1
    return ok, bad


LOG: Path | None = None  # the log of the gunicorn running
SERVER_PID = 0  # the gunicorn master of the phase running; `load` reports its workers' CPU per request
SERVER_CPU: dict[str, float] = {}  # kind -> server CPU seconds per request, last load of that kind


def server_cpu() -> float:
    """CPU seconds used so far by the gunicorn master and its workers."""
    import psutil

    root = psutil.Process(SERVER_PID)
    return sum(sum(p.cpu_times()[:2]) for p in (root, *root.children(recursive=True)))


def load(port: int, kind: str, seconds: float, clients: int, machines: int = 1, batch: int = 1) -> float:
    """Requests per second answered 2xx by the server, over `clients` processes."""
    with mp.Pool(clients) as pool:
        before = server_cpu() if SERVER_PID else 0.0
        results = pool.map(_client, [(port, kind, seconds, i, machines, batch) for i in range(clients)])
        spent = server_cpu() - before if SERVER_PID else 0.0
    ok = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    if bad:
        raise SystemExit(f"{kind}: {bad} requests were not answered 2xx; server log: {LOG}")
    SERVER_CPU[f"{kind}x{batch}"] = spent / max(ok, 1)
    return ok / seconds


THREADS = 1  # gunicorn --threads (set by --threads): 1 = sync workers, more = gthread workers


def start_gunicorn(app: str, env: dict, cwd: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                             "--threads", str(THREADS),
                             "--no-control-socket", "--log-level", "warning", app],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(cwd / "gunicorn.log", "ab"))  # a file: a pipe nobody reads can fill and block it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if send(port, http_request("GET", "/healthz")) == 200:
                global SERVER_PID, LOG
                SERVER_PID, LOG = proc.pid, cwd / "gunicorn.log"
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"gunicorn {app} did not start: {(cwd / 'gunicorn.log').read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) summed over a process and its children; PSS counts shared pages once."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = sum(p.memory_info().rss for p in procs)
    try:
        pss = sum(p.memory_full_info().pss for p in procs)
    except (AttributeError, psutil.AccessDenied):
        pss = 0
    return rss, pss


def median_ms(port: int, path: str, n: int) -> float:
    times = []
    raw = http_request("GET", path)
    for _ in range(n):
        t0 = time.perf_counter()
        status = send(port, raw)
        times.append((time.perf_counter() - t0) * 1000)
        assert status == 200, status
    return statistics.median(times)


def seed_machines(port: int, n: int, prefix: str = "fleet-") -> None:
    for start in range(0, n, 50):
        body = json.dumps([report(f"{prefix}{i}", 10**15 + i) for i in range(start, min(n, start + 50))]).encode()
        assert send(port, http_request("POST", "/api/fleet/report", body, token=True)) == 200


PHASES = ("ratio", "machines", "fleet", "memory")  # 1+2, 3, 4, 5 of the module docstring


def main() -> None:
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load phase")
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes")
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full",
                        help="SQLite durability (storage URL option; full is the default: each "
                             "acknowledged report is on disk even after a power cut; normal survives a "
                             "crash of the server process but not of the machine)")
    parser.add_argument("--threads", type=int, default=1,
                        help="gunicorn --threads per worker (1: sync workers; more: gthread)")
    parser.add_argument("--only", choices=PHASES, action="append",
                        help="run only these phases (repeatable); default: all")
    args = parser.parse_args()
    phases = set(args.only or PHASES)
    THREADS = args.threads

    tmp = Path(tempfile.mkdtemp(prefix="dashfleet-bench-"))
    config = tmp / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp}/dashfleet.db?synchronous={args.synchronous}"\n\n[server]\ndata_dir = "{tmp}"\n\n'
                      '[plugins]\nmodules = ["bench_noop_plugin"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "DASHFLEET_"))}
    env.update(DASHFLEET_CONFIG=str(config), FLEET_TOKEN=TOKEN, PYTHONPATH=str(HERE))
    print(f"bench/ingest.py: gunicorn --workers 2 --threads {THREADS} ({'sync' if THREADS == 1 else 'gthread'}), SQLite synchronous={args.synchronous} in {tmp}, {args.clients} client processes, "
          f"{args.seconds:g} s per phase, {os.cpu_count()} CPUs shared with the clients")
    try:
        if "ratio" in phases:
            phase_ratio(env, tmp, args)

        def fresh_server(name: str):
            """gunicorn on a new, empty database (so one phase's data does not weigh on the next)."""
            folder = tmp / name
            folder.mkdir()
            cfg = folder / "dashfleet.toml"
            cfg.write_text(config.read_text().replace(str(tmp), str(folder)))
            return start_gunicorn("dashfleet_web.app:create_app()", dict(env, DASHFLEET_CONFIG=str(cfg)), folder)

        if "machines" in phases:
            phase_machines(fresh_server, args)
        if "fleet" in phases or "memory" in phases:
            phase_fleet_and_memory(fresh_server, env, tmp, phases)
    except SystemExit:
        print(f"(kept {tmp} for its logs)")
        raise
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def phase_ratio(env: dict, tmp: Path, args) -> None:
    """1 and 2: single reports vs the no-op and the bare insert; batched vs single."""
    proc, port = start_gunicorn("dashfleet_web.app:create_app()", env, tmp)
    try:
        load(port, "noop", 1.0, args.clients)  # warm-up
        noop = load(port, "noop", args.seconds, args.clients)
        insert = load(port, "insert", args.seconds, args.clients)
        seed_machines(port, 1000, "pc-")
        single = load(port, "report", args.seconds, args.clients, machines=1000)
        batched = load(port, "report", args.seconds, args.clients, machines=1000, batch=50) * 50
        spooled = load(port, "spool", args.seconds, args.clients, machines=1000, batch=50) * 50
        noop2 = load(port, "noop", args.seconds, args.clients)
    finally:
        stop(proc)
    ceiling = (noop + noop2) / 2
    print()
    print("1. single reports vs no-op endpoint (same server, same run)")
    print(f"   no-op            {ceiling:8.0f} req/s (runs: {noop:.0f}, {noop2:.0f})")
    print(f"   bare insert      {insert:8.0f} req/s   ratio {insert / ceiling:.2f}  (Flask + one SQLite insert, same durability)")
    print(f"   POST report      {single:8.0f} req/s   ratio {single / ceiling:.2f}  (goal >= 0.7); "
          f"{single / insert:.2f} of the bare insert")
    print("2. batched (50 per request) vs single")
    print(f"   batched          {batched:8.0f} reports/s   ratio {batched / single:.1f}x  (goal >= 10x; each batch from 50 machines)")
    print(f"   spool flush      {spooled:8.0f} reports/s   ratio {spooled / single:.1f}x  (each batch from one machine, as an agent sends)")
    cpu = {k: v * 1e6 for k, v in SERVER_CPU.items()}
    print(f"   server CPU per request (master + workers): no-op {cpu['noopx1']:.0f} us, bare insert "
          f"{cpu['insertx1']:.0f} us, report {cpu['reportx1']:.0f} us, batch of 50 {cpu['reportx50']:.0f} us "
          f"({cpu['reportx50'] / 50:.0f} us per report)")


def phase_machines(fresh_server, args) -> None:
    """3: single reports/s at 1, 100, 1,000 and 10,000 distinct machines."""
    print("3. cost per report by number of distinct machines (single reports; a fresh database per size,")
    print("   the machines stored before the measure, so reports update them)")
    by_size = {}
    for machines in (1, 100, 1000, 10_000):
        proc, port = fresh_server(f"machines{machines}")
        try:
            seed_machines(port, machines, "pc-")
            load(port, "report", 1.0, args.clients, machines=machines)  # warm-up
            by_size[machines] = load(port, "report", args.seconds, args.clients, machines=machines)
        finally:
            stop(proc)
        rate = by_size[machines]
        print(f"   {machines:>6} machines {rate:8.0f} reports/s   ratio to 1 machine {rate / by_size[1]:.2f}")


def phase_fleet_and_memory(fresh_server, env: dict, tmp: Path, phases: set[str]) -> None:
    """4: GET /api/fleet at 1,000 machines; 5: idle RSS of that server vs a bare Flask app."""
    proc, port = fresh_server("fleet1000")
    try:
        seed_machines(port, 1000)
        median_ms(port, "/api/fleet", 5)
        if "fleet" in phases:
            fleet_ms = median_ms(port, "/api/fleet", 100)
            noop_ms = median_ms(port, "/bench/noop", 100)
            print("4. GET /api/fleet with 1,000 machines (+ the server's own), 100 sequential requests")
            print(f"   median {fleet_ms:.1f} ms  (goal < 50 ms); no-op GET median {noop_ms:.1f} ms, "
                  f"ratio {fleet_ms / noop_ms:.1f}x")
        time.sleep(3)
        ours, ours_pss = tree_memory(proc.pid)
    finally:
        stop(proc)
    if "memory" not in phases:
        return
    baselines = {}
    for name in ("create_app", "create_app_with_models"):
        bare, port = start_gunicorn(f"bare_flask_app:{name}()", env, tmp)
        try:
            median_ms(port, "/healthz", 20)
            time.sleep(3)
            baselines[name] = tree_memory(bare.pid)
        finally:
            stop(bare)
    (theirs, theirs_pss), (floor, floor_pss) = baselines["create_app"], baselines["create_app_with_models"]
    print("5. idle RSS of the gunicorn tree (master + 2 workers), after the fleet phase (1,000 machines listed)")
    print(f"   DashFleet {ours / 2**20:.1f} MiB, bare Flask {theirs / 2**20:.1f} MiB, "
          f"ratio {ours / theirs:.2f}x  (goal <= 1.3x)")
    print(f"   bare Flask importing DashFleet's pydantic models and config only: {floor / 2**20:.1f} MiB, "
          f"ratio {floor / theirs:.2f}x (the floor before any DashFleet code runs)")
    if ours_pss and theirs_pss:
        print(f"   PSS: DashFleet {ours_pss / 2**20:.1f} MiB, bare Flask {theirs_pss / 2**20:.1f} MiB, "
              f"ratio {ours_pss / theirs_pss:.2f}x; with the models {floor_pss / theirs_pss:.2f}x")

if __name__ == "__main__":
    main()
