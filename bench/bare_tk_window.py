"""The baseline of bench/desktop.py: a bare Tk window that updates the same widgets as the desktop
app (four values, score and status, findings, a three-line history chart) from raw psutil, every
INTERVAL seconds. No engine, no plugins, no scheduler thread.

    python bench/bare_tk_window.py INTERVAL
"""

from __future__ import annotations

import sys
import time
import tkinter as tk
from collections import deque

import psutil

W, H = 420, 130


def main() -> None:
    interval_ms = int(float(sys.argv[1]) * 1000)
    root = tk.Tk()
    root.title("bare")
    labels = {k: tk.Label(root, text="–") for k in ("cpu", "ram", "disk", "uptime", "score", "status", "findings")}
    for label in labels.values():
        label.pack()
    chart = tk.Canvas(root, width=W, height=H, bg="white")
    chart.pack()
    history: deque = deque(maxlen=300)
    psutil.cpu_percent(interval=None)

    def refresh() -> None:
        cpu = psutil.cpu_percent(interval=None)
        ram = psutil.virtual_memory().percent
        disk = psutil.disk_usage("/").percent
        uptime = time.time() - psutil.boot_time()
        findings = [f"CPU at {cpu:.0f}"] if cpu >= 80 else []
        labels["cpu"].configure(text=f"{cpu:.1f} %")
        labels["ram"].configure(text=f"{ram:.1f} %")
        labels["disk"].configure(text=f"{disk:.1f} %")
        labels["uptime"].configure(text=f"{int(uptime // 3600)} h {int(uptime % 3600 // 60)} min")
        labels["score"].configure(text=f"{100 - 20 * len(findings)}/100")
        labels["status"].configure(text="warn" if findings else "ok", bg="#e65100" if findings else "#2e7d32")
        labels["findings"].configure(text="\n".join(findings) or "No problem found.")
        history.append((time.time(), cpu, ram, disk))
        chart.delete("all")
        if len(history) > 1:
            t0, t1 = history[0][0], history[-1][0]
            for i, colour in ((1, "#1565c0"), (2, "#6a1b9a"), (3, "#00838f")):
                points = []
                for sample in history:
                    points += [4 + (W - 8) * (sample[0] - t0) / max(t1 - t0, 1e-9), 4 + (H - 8) * (1 - sample[i] / 100)]
                chart.create_line(*points, fill=colour, width=2)
        root.after(interval_ms, refresh)

    root.after(0, refresh)
    root.mainloop()


if __name__ == "__main__":
    main()
