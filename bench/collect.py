"""What one DashFleet collection cycle costs, against raw psutil making the same calls.

Prints, measured in this run (the machine is shared, so only the ratios are comparable):

1. CPU time per cycle, the four core collectors (cpu, memory, disk, uptime): a full engine cycle
   (collect, score, build the report) vs a raw psutil loop making the same psutil calls.
2. The same for every built-in collector (+ network, processes, battery, temperatures).
3. Wall time per cycle (median) for both.
4. Steady RSS of a process running engine cycles on its scheduler vs a process that only imports
   the dependencies (psutil, pydantic, apscheduler, requests, pluggy), each in its own subprocess.

The raw loop and the engine alternate in blocks inside one process so drift hits both alike.

    .venv/bin/python bench/collect.py [--cycles 400] [--blocks 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CORE = ["cpu", "memory", "disk", "uptime"]
SYSTEM_VOLUME = os.environ.get("SystemDrive", "C:") + "\\" if sys.platform == "win32" else "/"


# --- raw psutil baselines: the calls the collectors make, into a plain dict ----------------------


# The collectors re-list volumes and scan processes once a period (60 s by default), checking
# each volume is still mounted every cycle; the raw loop makes the same calls on the same schedule.
RELIST_SECONDS = 60.0
_last: dict[str, float] = {}
_volumes: list[str] = []


def _due(what: str) -> bool:
    now = time.monotonic()
    if now - _last.get(what, -RELIST_SECONDS) >= RELIST_SECONDS:
        _last[what] = now
        return True
    return False


def _mountpoints(psutil) -> list[str]:
    if _due("partitions"):
        _volumes[:] = [p.mountpoint for p in psutil.disk_partitions(all=False)
                       if p.mountpoint != SYSTEM_VOLUME and "cdrom" not in p.opts]
    return _volumes


def raw_core(psutil) -> dict:
    m = {}
    per_core = psutil.cpu_percent(interval=None, percpu=True)
    m["cpu.percent"] = sum(per_core) / len(per_core)
    for i, v in enumerate(per_core):
        m[i] = v
    m["cpu.count"] = psutil.cpu_count()
    if hasattr(os, "getloadavg"):
        m["l1"], m["l5"], m["l15"] = os.getloadavg()
    vm, sw = psutil.virtual_memory(), psutil.swap_memory()
    m["mem"], m["used"], m["avail"], m["total"], m["swap"], m["swu"] = (
        vm.percent, vm.used, vm.available, vm.total, sw.percent, sw.used)
    du = psutil.disk_usage(SYSTEM_VOLUME)
    m["disk"], m["free"], m["dtotal"] = du.percent, du.free, du.total
    for mountpoint in _mountpoints(psutil):
        if os.path.ismount(mountpoint):
            try:
                m[mountpoint] = psutil.disk_usage(mountpoint).percent
            except OSError:
                pass
    boot = psutil.boot_time()
    m["up"], m["boot"] = time.time() - boot, boot
    return m


def raw_all(psutil) -> dict:
    m = raw_core(psutil)
    n = psutil.net_io_counters()
    m["net"] = (n.bytes_sent, n.bytes_recv, n.errin, n.errout, n.dropin + n.dropout)
    m["procs"] = len(psutil.pids())
    if _due("processes"):  # the collector scans for top consumers once a scan period
        rows = [(p.info["cpu_percent"], p.info["memory_info"], p.info["name"], p.pid)
                for p in psutil.process_iter(["name", "cpu_percent", "memory_info"])]
        m["top"] = max(rows, key=lambda r: r[0] or 0) if rows else None
    if hasattr(psutil, "sensors_battery"):
        m["bat"] = psutil.sensors_battery()
    if hasattr(psutil, "sensors_temperatures"):
        m["temp"] = psutil.sensors_temperatures()
    return m


# --- CPU / wall time ---------------------------------------------------------------------------


def time_block(func, cycles: int) -> tuple[float, list[float]]:
    walls = []
    cpu0 = time.process_time()
    for _ in range(cycles):
        t0 = time.perf_counter()
        func()
        walls.append(time.perf_counter() - t0)
    return (time.process_time() - cpu0) / cycles, walls


def compare(label: str, enabled: list[str] | None, raw, cycles: int, blocks: int) -> dict:
    import psutil

    from dashfleet_core.config import load_settings
    from dashfleet_core.engine import Engine
    from dashfleet_core.plugins import make_plugin_manager

    overrides = {"plugins.enabled": enabled} if enabled else {}
    settings = load_settings(None, env={}, overrides=overrides)
    # built-ins only: installed third-party plugins would add calls the raw loop does not make
    engine = Engine(settings, make_plugin_manager(settings, entrypoints=False))
    seq = iter(range(10**9))

    def engine_cycle():
        engine.cycle("bench-machine", next(seq))

    def raw_cycle():
        raw(psutil)

    for _ in range(20):  # warm up both (first cycles prime psutil and caches)
        engine_cycle()
        raw_cycle()
    eng_cpu, raw_cpu, eng_wall, raw_wall = [], [], [], []
    for _ in range(blocks):
        c, w = time_block(raw_cycle, cycles)
        raw_cpu.append(c)
        raw_wall += w
        c, w = time_block(engine_cycle, cycles)
        eng_cpu.append(c)
        eng_wall += w
    r, e = statistics.median(raw_cpu), statistics.median(eng_cpu)
    report, _ = engine.cycle("bench-machine", 0)
    return {
        "label": label,
        "collectors": engine.collectors.names(),
        "metrics": len(report.metrics),
        "raw_cpu_us": r * 1e6,
        "engine_cpu_us": e * 1e6,
        "ratio": e / r,
        "raw_wall_us": statistics.median(raw_wall) * 1e6,
        "engine_wall_us": statistics.median(eng_wall) * 1e6,
    }


# --- RSS, each in its own process ----------------------------------------------------------------

BASELINE_IMPORTS = (
    "import psutil, pluggy, requests\n"
    "from pydantic import BaseModel\n"
    "from apscheduler.schedulers.background import BackgroundScheduler\n"
)

ENGINE_PROCESS = """
import threading, psutil
from dashfleet_core.config import load_settings
from dashfleet_core.engine import Engine
from dashfleet_core.plugins import make_plugin_manager
settings = load_settings(None, env={}, overrides=OVERRIDES)
engine = Engine(settings, make_plugin_manager(settings, entrypoints=False))
done, count = threading.Event(), [0]
def job():
    engine.cycle("bench-machine", count[0])
    count[0] += 1
    if count[0] >= CYCLES:
        done.set()
engine.every(0.01, job, "bench")
engine.start()
done.wait(600)
engine.stop()
"""

PRINT_RSS = "import psutil, json; print(json.dumps(psutil.Process().memory_info().rss))"


def rss_of(code: str) -> int:
    out = subprocess.run([sys.executable, "-c", code + "\n" + PRINT_RSS], capture_output=True,
                         text=True, check=True, env={**os.environ, "DASHFLEET_CONFIG": os.devnull})
    return int(out.stdout.strip().splitlines()[-1])


def rss(enabled: list[str] | None, cycles: int) -> dict:
    overrides = {"plugins.enabled": enabled} if enabled else {}
    base = statistics.median(rss_of(BASELINE_IMPORTS) for _ in range(3))
    engine_code = (ENGINE_PROCESS.replace("OVERRIDES", repr(overrides))
                   .replace("CYCLES", str(cycles)))
    eng = statistics.median(rss_of(engine_code) for _ in range(3))
    return {"baseline_mb": base / 2**20, "engine_mb": eng / 2**20, "delta_mb": (eng - base) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=400, help="cycles per timed block")
    ap.add_argument("--blocks", type=int, default=5, help="alternating raw/engine blocks")
    ap.add_argument("--rss-cycles", type=int, default=300, help="cycles before RSS is read")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    import logging
    logging.basicConfig(level=logging.ERROR)

    results = {
        "core": compare("core four (cpu, memory, disk, uptime)", CORE, raw_core, args.cycles, args.blocks),
        "all": compare("all built-in collectors", None, raw_all, max(args.cycles // 4, 20), args.blocks),
        "rss_core": rss(CORE, args.rss_cycles),
        "rss_all": rss(None, args.rss_cycles),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"cpus={os.cpu_count()} python={sys.version.split()[0]} cycles/block={args.cycles} blocks={args.blocks}")
    for key in ("core", "all"):
        r = results[key]
        print(f"\n{r['label']}: {len(r['collectors'])} collectors, {r['metrics']} metrics")
        print(f"  CPU time per cycle: raw psutil {r['raw_cpu_us']:.0f} us, engine {r['engine_cpu_us']:.0f} us"
              f"  -> ratio {r['ratio']:.2f}x")
        print(f"  wall time per cycle (median): raw {r['raw_wall_us']:.0f} us, engine {r['engine_wall_us']:.0f} us")
    for key, label in (("rss_core", "core four"), ("rss_all", "all built-ins")):
        r = results[key]
        print(f"\nsteady RSS, {label}, after {args.rss_cycles} scheduled cycles: engine {r['engine_mb']:.1f} MB, "
              f"dependencies only {r['baseline_mb']:.1f} MB -> +{r['delta_mb']:.1f} MB")


if __name__ == "__main__":
    main()
