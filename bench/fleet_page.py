"""The fleet page in a real browser: how long one refresh of `/fleet` takes (sort, build the rows,
the browser's layout) with N machines, as a ratio to the bare DOM work of the same table in the
same page and run (N rows of 8 plain text cells, no formatting, no sorting).

A `dashfleet web` on 127.0.0.1 with N machines stored, Debian's Chromium headless through
Playwright (the test extras), median of 7 refreshes after the first.

Then the phone layout (issue 16): the same refresh in card layout (a 390 px viewport) against the
table layout (1440 px), alternating in the same page, median of 7 each after the first; the ratio
card / table is the figure (goal: at most 1.2x).

    .venv/bin/python bench/fleet_page.py [--machines 2000]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ingest import free_port, report  # noqa: E402  (the same realistic report as the ingest bench)

CHROMIUM = os.environ.get("DASHFLEET_CHROMIUM", "/usr/bin/chromium")
SETTLE = "() => new Promise((done) => requestAnimationFrame(() => { document.body.offsetHeight; done(); }))"
REFRESH = "() => { const t = performance.now(); renderFleet(); document.body.offsetHeight; return performance.now() - t; }"
BARE = """() => {
  const t = performance.now();
  const rows = document.createDocumentFragment();
  for (const m of fleetDoc.machines) {
    const tr = document.createElement("tr");
    for (const v of [m.hostname, m.status, m.score, m.machine_id, m.metrics["cpu.percent"],
                     m.metrics["memory.percent"], m.metrics["disk.percent"], m.last_seen]) {
      const td = document.createElement("td");
      td.textContent = String(v);
      tr.appendChild(td);
    }
    rows.appendChild(tr);
  }
  document.querySelector("#fleet-table tbody").replaceChildren(rows);
  document.body.offsetHeight;
  return performance.now() - t;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=2000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="dashfleet-page-"))
    config = tmp / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp}/dashfleet.db"\n\n[server]\ndata_dir = "{tmp}"\n'
                      "report_self = false\npublic_read = true\n")  # reads closed since issue 14: this times the page, not a login
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "DASHFLEET_"))}
    env.update(FLEET_TOKEN="bench")
    server = subprocess.Popen([str(Path(sys.executable).parent / "dashfleet"), "web", "--port", str(port),
                               "--config", str(config)], env=env, cwd=tmp,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(base + "/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        now = datetime.now(timezone.utc).isoformat()
        for start in range(0, args.machines, 500):
            batch = []
            for i in range(start, min(args.machines, start + 500)):
                doc = report(f"pc-{i:05d}", 1)
                doc["collected_at"] = now
                doc["metrics"]["cpu.percent"] = float(i % 100)
                batch.append(doc)
            r = requests.post(base + "/api/fleet/report", json=batch, headers={"Authorization": "Bearer bench"})
            r.raise_for_status()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_context(bypass_csp=True).new_page()  # bypass: to time it from here
            page.goto(base + "/fleet")
            page.wait_for_function(f"() => document.querySelectorAll('#fleet-table tbody tr').length >= {args.machines}",
                                   timeout=120_000)
            ours, bare = [], []
            for _ in range(8):
                ours.append(page.evaluate(REFRESH))
                bare.append(page.evaluate(BARE))
            cards, table = [], []
            for _ in range(8):  # alternating, so a slower moment of the shared machine hits both
                for width, height, into in ((390, 844, cards), (1440, 900, table)):
                    page.set_viewport_size({"width": width, "height": height})
                    page.evaluate(SETTLE)
                    into.append(page.evaluate(REFRESH))
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    ours_ms, bare_ms = statistics.median(ours[1:]), statistics.median(bare[1:])
    print(f"bench/fleet_page.py: /fleet with {args.machines} machines, Chromium headless, {os.cpu_count()} CPUs")
    print(f"   one refresh (sort, rows, layout): median {ours_ms:.0f} ms; bare DOM table of the same rows "
          f"{bare_ms:.0f} ms; ratio {ours_ms / bare_ms:.2f}x")
    cards_ms, table_ms = statistics.median(cards[1:]), statistics.median(table[1:])
    print(f"   card layout (390 px) median {cards_ms:.0f} ms; table layout (1440 px) median {table_ms:.0f} ms; "
          f"ratio {cards_ms / table_ms:.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
