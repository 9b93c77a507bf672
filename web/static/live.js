/* `/`: this server's machine, refreshed every 2.5 s from /api/status. */
"use strict";

let lastStatus = null;

function renderLive() {
  const s = lastStatus;
  if (!s) return;
  document.getElementById("host").replaceChildren(el("bdi", { text: s.hostname }), " (", el("bdi", { text: s.machine_id }), ")");
  document.getElementById("updated").textContent = t("live.updated", { time: fmtClock(Date.parse(s.collected_at)) });
  statusBadge(document.getElementById("badge"), s.status, false);
  document.getElementById("score").textContent = s.score;
  [["cpu", s.cpu], ["ram", s.ram], ["disk", s.disk]].forEach(([id, value]) => {
    document.getElementById(id).textContent = fmtPct(value);
    const bar = document.getElementById(id + "-bar");
    bar.style.width = Math.max(0, Math.min(100, value || 0)) + "%";
    bar.className = value >= 90 ? "critical" : value >= 75 ? "warn" : "ok";
    const level = document.getElementById(id + "-level");  /* the bar's colour, said in a word too */
    level.className = "level " + bar.className;
    level.textContent = value === null || value === undefined ? "" : t("status." + bar.className);
  });
  document.getElementById("uptime").textContent = fmtUptime(s.uptime_seconds);
  findingsList(document.getElementById("findings"), s.findings, "live.none");
}

document.addEventListener("DOMContentLoaded", () => {
  let previous = null;  /* the health status of the last refresh: a change is announced, once */
  poll(async () => {
    lastStatus = await getJSON("/api/status");
    renderLive();
    if (previous && previous !== lastStatus.status) announce(t("a11y.live.now", { status: statusWord(lastStatus.status) }));
    previous = lastStatus.status;
  }, 2500);
  document.addEventListener("dashfleet:lang", renderLive);
});
