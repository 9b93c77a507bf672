"""Single-report ingest with an organisation's report key vs with the FLEET_TOKEN, same server,
same run, alternating (so drift on the shared machine hits both alike): reports/s ratio (goal >=
0.95) and the server's CPU per report for each.

A key costs one storage read per request (its record, looked up by the id inside the key) and a
SHA-256, where the FLEET_TOKEN is one constant-time comparison; this measures what that adds to a
whole report (parse, validate, score, store). Both credentials report to 1,000 existing machines of
their organisation, on SQLite under gunicorn (2 sync workers), from N client processes sending raw
HTTP/1.1 requests.

On a shared machine the rates swing between identical runs, so a second part measures the same in
one process (the app's test client): CPU time per report for each credential, alternating blocks
of reports, with SQLite `synchronous=normal` there (the kernel's CPU time in each commit's fsync
swings with the disk's other load and drowns a difference of a few microseconds); and the check
alone, a key's lookup and digest against the FLEET_TOKEN's comparison.

    .venv/bin/python bench/auth.py [--seconds 5] [--rounds 3] [--clients 4] [--blocks 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ingest
from ingest import report, send, start_gunicorn, stop

HERE = Path(__file__).resolve().parent
FLEET_TOKEN = "bench-fleet-token-of-bench-auth"
ACTION_TOKEN = "bench-action-token-of-bench-auth"
MACHINES = 1000


def request(method: str, path: str, secret: str, body: bytes = b"") -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
            f"Authorization: Bearer {secret}"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def call(port: int, method: str, path: str, secret: str, payload=None) -> dict:
    """One request whose JSON answer we need (setting up): the body of a 2xx answer."""
    import socket

    body = json.dumps(payload).encode() if payload is not None else b""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request(method, path, secret, body))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head[9:12])
    if not 200 <= status < 300:
        raise SystemExit(f"{method} {path} answered {status}: {rest[:300]!r}")
    return json.loads(rest) if rest else {}


def _client(args) -> tuple[int, int]:
    """One load-generator process: single reports with `secret` for `seconds`; (2xx, others)."""
    port, secret, seconds, index = args
    ok = bad = 0
    seq = index * 10**12 + int(time.time() * 1000) % 10**9 * 1000  # unique across rounds
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        body = json.dumps(report(f"pc-{(seq * 7919) % MACHINES}", seq)).encode()
        status = send(port, request("POST", "/api/fleet/report", secret, body))
        seq += 1
        if 200 <= status < 300:
            ok += 1
        else:
            bad += 1
    return ok, bad


def load(port: int, secret: str, seconds: float, clients: int) -> tuple[float, float]:
    """(reports/s answered 2xx, server CPU microseconds per report)."""
    with mp.Pool(clients) as pool:
        before = ingest.server_cpu()
        results = pool.map(_client, [(port, secret, seconds, i) for i in range(clients)])
        spent = ingest.server_cpu() - before
    ok, bad = sum(r[0] for r in results), sum(r[1] for r in results)
    if bad:
        raise SystemExit(f"{bad} reports were not answered 2xx; server log: {ingest.LOG}")
    return ok / seconds, spent / max(ok, 1) * 1e6


def seed(port: int, secret: str) -> None:
    for start in range(0, MACHINES, 50):
        batch = [report(f"pc-{i}", i) for i in range(start, min(MACHINES, start + 50))]
        call(port, "POST", "/api/fleet/report", secret, batch)


def in_process(blocks: int, per_block: int = 300) -> None:
    """CPU seconds per report in one process, FLEET_TOKEN vs a report key, alternating blocks."""
    sys.path.insert(0, str(HERE.parent))
    from dashfleet_core.config import load_settings
    from dashfleet_core.fleet import Fleet
    from dashfleet_web.app import create_app

    tmp = Path(tempfile.mkdtemp(prefix="dashfleet-bench-auth-inproc-"))
    settings = load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{tmp}/dashfleet.db?synchronous=normal", "server.data_dir": str(tmp),
        "server.report_self": False,
        "server.token": FLEET_TOKEN, "actions.token": ACTION_TOKEN})
    fleet = Fleet(settings)
    try:
        client = create_app(fleet=fleet, start=False).test_client()
        fleet.accounts.orgs.create("Bench")
        key = fleet.accounts.keys.create("bench", name="agents", scopes=["report"])[1]
        seq = {FLEET_TOKEN: 0, key: 0}

        def block(secret: str) -> float:
            bodies = []
            for _ in range(per_block):
                seq[secret] += 1
                bodies.append(json.dumps(report(f"pc-{(seq[secret] * 7919) % MACHINES}", seq[secret])).encode())
            headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
            start = time.process_time()
            for body in bodies:
                if client.post("/api/fleet/report", data=body, headers=headers).status_code != 201:
                    raise SystemExit("a report was refused in process")
            return (time.process_time() - start) / per_block * 1e6

        from dashfleet_web.auth import tokens_match

        checks = 20000
        start = time.process_time()
        for _ in range(checks):
            fleet.accounts.keys.verify(key)
        verify_us = (time.process_time() - start) / checks * 1e6
        start = time.process_time()
        for _ in range(checks):
            tokens_match(FLEET_TOKEN, FLEET_TOKEN)
        compare_us = (time.process_time() - start) / checks * 1e6

        block(FLEET_TOKEN), block(key)  # warm-up
        cpu: dict[str, list[float]] = {"token": [], "key": []}
        for i in range(blocks):
            for name in (("token", "key") if i % 2 == 0 else ("key", "token")):
                cpu[name].append(block(FLEET_TOKEN if name == "token" else key))
    finally:
        fleet.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    token, keyed = statistics.median(cpu["token"]), statistics.median(cpu["key"])
    print(f"in one process ({blocks} alternating blocks of {per_block} reports each, CPU time per report, median; "
          "SQLite synchronous=normal)")
    print(f"   FLEET_TOKEN {token:6.0f} us   report key {keyed:6.0f} us   key/token {keyed / token:.3f} "
          f"(throughput ratio {token / keyed:.3f}, goal >= 0.95)")
    print(f"   the check alone: a key's lookup and digest {verify_us:.1f} us, the FLEET_TOKEN comparison "
          f"{compare_us:.1f} us: {(verify_us - compare_us) / token * 100:.1f} % of a report's CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (each: token, key, key, token)")
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes")
    parser.add_argument("--blocks", type=int, default=8, help="alternating blocks of the in-process part (0: skip)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="dashfleet-bench-auth-"))
    config = tmp / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp}/dashfleet.db"\n\n[server]\ndata_dir = "{tmp}"\n'
                      "report_self = false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "DASHFLEET_", "ACTION_"))}
    env.update(DASHFLEET_CONFIG=str(config), FLEET_TOKEN=FLEET_TOKEN, ACTION_TOKEN=ACTION_TOKEN,
               PYTHONPATH=str(HERE))
    print(f"bench/auth.py: gunicorn --workers 2 (sync), SQLite in {tmp}, {args.clients} client processes, "
          f"{args.rounds} rounds of token/key/key/token x {args.seconds:g} s, {os.cpu_count()} CPUs shared "
          "with the clients")
    proc, port = start_gunicorn("dashfleet_web.app:create_app()", env, tmp)
    try:
        admin = call(port, "POST", "/api/orgs", ACTION_TOKEN, {"name": "Bench"})["api_key"]
        key = call(port, "POST", "/api/orgs/bench/keys", admin, {"name": "agents", "scopes": ["report"]})["secret"]
        seed(port, FLEET_TOKEN)
        seed(port, key)
        load(port, FLEET_TOKEN, 1.0, args.clients)  # warm-up
        load(port, key, 1.0, args.clients)
        runs: dict[str, list[tuple[float, float]]] = {"token": [], "key": []}
        for _ in range(args.rounds):
            for name in ("token", "key", "key", "token"):
                runs[name].append(load(port, FLEET_TOKEN if name == "token" else key, args.seconds, args.clients))
    except SystemExit:
        print(f"(kept {tmp} for its logs)")
        raise
    finally:
        stop(proc)
    shutil.rmtree(tmp, ignore_errors=True)

    rate = {name: statistics.mean(r for r, _ in values) for name, values in runs.items()}
    cpu = {name: statistics.mean(c for _, c in values) for name, values in runs.items()}
    pairs = [k[0] / t[0] for t, k in zip(runs["token"], runs["key"])]
    print()
    print("single reports, same server, alternating")
    print(f"   FLEET_TOKEN      {rate['token']:8.0f} reports/s   server CPU {cpu['token']:6.0f} us/report   "
          f"(runs: {', '.join(f'{r:.0f}' for r, _ in runs['token'])})")
    print(f"   report key       {rate['key']:8.0f} reports/s   server CPU {cpu['key']:6.0f} us/report   "
          f"(runs: {', '.join(f'{r:.0f}' for r, _ in runs['key'])})")
    cpu_pairs = [k[1] / t[1] for t, k in zip(runs["token"], runs["key"])]
    print(f"   ratio key/token  {rate['key'] / rate['token']:.3f} of the means, {statistics.median(pairs):.3f} median "
          f"of the pairs (goal >= 0.95); per pair: {', '.join(f'{p:.2f}' for p in pairs)}")
    print(f"   server CPU per report key/token {cpu['key'] / cpu['token']:.3f} of the means, "
          f"{statistics.median(cpu_pairs):.3f} median of the pairs; per pair: {', '.join(f'{p:.2f}' for p in cpu_pairs)}")
    if args.blocks:
        print()
        in_process(args.blocks)


if __name__ == "__main__":
    main()
