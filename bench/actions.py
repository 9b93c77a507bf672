"""What the safety of DashFleet's actions costs, against the naive way of doing the same work.

Prints, measured in this run (the machine is shared, so only the ratios are comparable):

1. Deleting a tree of N small old files: cleanup_temp's sweep (descriptor-based walk, delete by
   name inside the open folder, links skipped) and its path-checked fallback (Windows), each as a
   ratio to a naive `os.walk` + `os.unlink` loop over an identical tree.
2. The same for a dry run (walk and count only) vs a naive `os.walk` + `os.lstat`.
3. Latency of `POST /api/action` (restart_spooler dry run: rate-limit counter, audit row, action
   thread) vs `GET /healthz` (one storage read), medians over the Flask test client on a SQLite
   file, as a ratio.

    .venv/bin/python bench/actions.py [--files 10000] [--rounds 3] [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

OLD = time.time() - 30 * 86400


def make_tree(root: Path, files: int) -> None:
    per_dir = 100
    for i in range(files):
        folder = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            folder.mkdir(parents=True)
        path = folder / f"f{i}.tmp"
        path.write_bytes(b"x" * 64)
        os.utime(path, (OLD, OLD))


def naive_delete(root: Path) -> int:
    n = 0
    for folder, _, names in os.walk(root):
        for name in names:
            os.unlink(os.path.join(folder, name))
            n += 1
    return n


def naive_count(root: Path) -> int:
    n = 0
    for folder, _, names in os.walk(root):
        for name in names:
            os.lstat(os.path.join(folder, name))
            n += 1
    return n


def sweep_once(root: Path, dry_run: bool, fd_walk: bool, context) -> int:
    from dashfleet_core.actions import files
    from dashfleet_plugins.actions._common import sweep

    saved = files.FD_WALK
    files.FD_WALK = fd_walk and saved
    try:
        report = sweep([str(root)], context, dry_run=dry_run, older_than_days=7, remove_empty_dirs=False)
    finally:
        files.FD_WALK = saved
    return report["files"]


def bench_sweep(files: int, rounds: int) -> dict[str, list[float]]:
    from dashfleet_core.actions import ActionContext
    from dashfleet_core.config import Settings

    context = ActionContext(action="cleanup_temp", plugin="cleanup_temp", settings=Settings(),
                            actor="bench", platform="linux", deadline=time.monotonic() + 3600)
    times: dict[str, list[float]] = {k: [] for k in
                                     ("naive_delete", "fd_delete", "path_delete",
                                      "naive_count", "fd_count", "path_count")}
    base = Path(tempfile.mkdtemp(prefix="dashfleet-bench-"))
    try:
        for _ in range(rounds):
            # the same kind of tree for each contender, built fresh, timed in alternation
            for name, run in (("naive_delete", lambda r: naive_delete(r)),
                              ("fd_delete", lambda r: sweep_once(r, False, True, context)),
                              ("path_delete", lambda r: sweep_once(r, False, False, context))):
                root = base / name
                make_tree(root, files)
                t = time.perf_counter()
                done = run(root)
                times[name].append(time.perf_counter() - t)
                assert done == files, (name, done)
                shutil.rmtree(root)
            root = base / "count"
            make_tree(root, files)
            for name, run in (("naive_count", lambda r: naive_count(r)),
                              ("fd_count", lambda r: sweep_once(r, True, True, context)),
                              ("path_count", lambda r: sweep_once(r, True, False, context))):
                t = time.perf_counter()
                done = run(root)
                times[name].append(time.perf_counter() - t)
                assert done == files, (name, done)
            shutil.rmtree(root)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return times


def bench_api(requests: int) -> tuple[float, float]:
    from dashfleet_core.config import load_settings
    from dashfleet_web.app import create_app

    folder = tempfile.mkdtemp(prefix="dashfleet-bench-api-")
    token = secrets.token_urlsafe(32)  # the server refuses a short, guessable ACTION_TOKEN
    try:
        settings = load_settings(None, env={}, overrides={
            "storage.url": f"sqlite:///{folder}/bench.db", "server.data_dir": folder,
            "actions.token": token, "actions.rate_limit_per_minute": 10**9})
        app = create_app(settings, start=False)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        body = {"action": "restart_spooler", "params": {"dry_run": True}}
        action, health = [], []
        for _ in range(requests):
            t = time.perf_counter()
            r = client.post("/api/action", json=body, headers=headers)
            action.append(time.perf_counter() - t)
            assert r.status_code == 200, r.get_json()
            t = time.perf_counter()
            r = client.get("/healthz")
            health.append(time.perf_counter() - t)
            assert r.status_code == 200
        app.extensions["dashfleet"].storage.close()
        return statistics.median(action), statistics.median(health)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    times = bench_sweep(args.files, args.rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"sweep of {args.files} old 64-byte files in {args.files // 100} folders, median of {args.rounds}")
    print(f"  delete, descriptor walk / naive os.walk+unlink : {med['fd_delete'] / med['naive_delete']:.2f}x"
          f"  (naive {med['naive_delete'] * 1e6 / args.files:.1f} us/file)")
    print(f"  delete, path-checked walk / naive              : {med['path_delete'] / med['naive_delete']:.2f}x")
    print(f"  dry run, descriptor walk / naive os.walk+lstat : {med['fd_count'] / med['naive_count']:.2f}x"
          f"  (naive {med['naive_count'] * 1e6 / args.files:.1f} us/file)")
    print(f"  dry run, path-checked walk / naive             : {med['path_count'] / med['naive_count']:.2f}x")
    action, health = bench_api(args.requests)
    print(f"POST /api/action (restart_spooler dry run) vs GET /healthz, median of {args.requests}, SQLite")
    print(f"  action / healthz : {action / health:.1f}x  (healthz {health * 1e3:.2f} ms, action {action * 1e3:.2f} ms)")


if __name__ == "__main__":
    sys.exit(main())
