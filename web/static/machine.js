/* `/fleet/<machine_id>`: one machine's facts, findings, charts over a chosen range, and events. */
"use strict";

const machineId = document.body.dataset.machineId;
const base = "/api/fleet/" + encodeURIComponent(machineId);
let machineDoc = null;
let historyDoc = null;
let eventsDoc = null;
let machineChart = null;

function renderMachine() {
  const m = machineDoc;
  if (!m) return;
  agentText(document.getElementById("m-name"), m.hostname || m.machine_id);
  statusBadge(document.getElementById("m-badge"), m.status, false);
  document.getElementById("m-score").textContent = m.score + "/100";
  document.getElementById("m-seen").textContent = t("machine.seen", { time: fmtAgo(m.last_seen) });
  document.getElementById("m-expired").hidden = !m.expired;
  const maint = document.getElementById("m-maintenance");
  maint.hidden = !m.maintenance;
  if (m.maintenance) {
    maint.replaceChildren(document.createTextNode(t("fleet.maintenance", { time: fmtTime(m.maintenance.until) })));
    if (m.maintenance.reason) maint.append(" · ", el("bdi", { text: m.maintenance.reason }));
  }
  const body = document.querySelector("#facts tbody");
  clear(body);
  const row = (label, value, labelIsKey) => {
    const th = el("th", labelIsKey ? { i18n: label } : { text: label, cls: "mono", agent: true });
    th.scope = "row";
    body.appendChild(el("tr", {}, [th, el("td", { text: value, agent: true })]));
  };
  row("machine.id", m.machine_id, true);
  row("machine.os", m.os || "–", true);
  row("machine.agent", m.agent_version || "–", true);
  row("machine.first", fmtTime(m.first_seen), true);
  row("metric.uptime", fmtUptime(m.metrics["uptime.seconds"]), true);
  if (m.spool_dropped) row("machine.dropped", m.spool_dropped, true);
  Object.keys(m.facts).sort().forEach((key) => row(key, m.facts[key], false));
  findingsList(document.getElementById("m-findings"), m.findings, "live.none");
}

function renderChart() {
  if (!historyDoc) return;
  const range = Number(document.getElementById("range").value);
  if (!machineChart) machineChart = percentChart(document.getElementById("m-chart"), range > 86400 / 2);
  machineChart.options.scales.x.ticks.callback = (v) => fmtClock(v, range > 86400 / 2);
  machineChart.options.scales.x.min = Date.parse(historyDoc.since);
  machineChart.options.scales.x.max = Date.parse(historyDoc.until);
  machineChart.data.datasets = SERIES.map((s) => ({
    label: t("chart.avg", { metric: metricLabel(s.metric) }), borderColor: seriesColor(s), backgroundColor: seriesColor(s),
    data: historyDoc.buckets.filter((b) => s.metric in b.avg).map((b) => ({ x: Date.parse(b.start), y: b.avg[s.metric] })),
  }));
  machineChart.update();
  const shown = (s) => historyDoc.buckets.filter((b) => s.metric in b.avg);
  chartSummary(document.getElementById("m-chart-summary"), SERIES.map((s) => ({
    label: metricLabel(s.metric), values: shown(s).map((b) => b.avg[s.metric]),
    mins: shown(s).map((b) => b.min[s.metric]), maxs: shown(s).map((b) => b.max[s.metric]),
  })), t("a11y.period." + range));
  document.getElementById("m-chart-empty").hidden = historyDoc.buckets.length > 0;
}

function renderEvents() {
  const ul = document.getElementById("events");
  clear(ul);
  const events = (eventsDoc && eventsDoc.events) || [];
  if (!events.length) { ul.appendChild(el("li", { cls: "muted", i18n: "machine.noevents" })); return; }
  events.forEach((e) => {
    const badge = el("span");
    // "silent" events carry the status tracked before the machine went quiet (usually ok),
    // which would read as the machine being fine: the kind says it all.
    if (e.status && e.kind !== "silent") statusBadge(badge, e.status, false);
    ul.appendChild(el("li", { cls: "event" }, [
      el("time", { text: fmtTime(e.at) }), el("strong", { text: " " + t("event." + e.kind) + " " }),
      badge, document.createTextNode(e.message ? " " : ""), el("span", { cls: "muted", text: e.message || "", agent: true }),
    ]));
  });
}

async function loadHistory() {
  const seconds = Number(document.getElementById("range").value);
  const until = new Date();
  const since = new Date(until.getTime() - seconds * 1000);
  const q = new URLSearchParams({ since: since.toISOString(), until: until.toISOString(), points: "300",
                                  metrics: SERIES.map((s) => s.metric).join(",") });
  historyDoc = await getJSON(base + "/history?" + q.toString());
  renderChart();
}

async function loadEvents() {
  eventsDoc = await getJSON(base + "/events?limit=50");
  renderEvents();
}

document.addEventListener("DOMContentLoaded", () => {
  const range = document.getElementById("range");
  try { range.value = localStorage.getItem("dashfleet.machine.range") || range.value; } catch (e) { /* default */ }
  range.addEventListener("change", () => {
    try { localStorage.setItem("dashfleet.machine.range", range.value); } catch (e) { /* not remembered */ }
    loadHistory().catch(showError);
  });
  const watch = new StatusWatch();
  poll(async () => {
    machineDoc = await getJSON(base);
    renderMachine();
    announce(watch.changes([machineDoc]));
    await loadHistory();
    await loadEvents();
  }, 10000);
  document.addEventListener("dashfleet:lang", () => { renderMachine(); renderChart(); renderEvents(); });
  document.addEventListener("dashfleet:theme", renderChart);
  // operate controls (shown by session.js to operators and admins only)
  const maintenance = async (method, body) => {
    try {
      await sendJSON(method, base + "/maintenance", body);
      machineDoc = await getJSON(base);
      renderMachine();
      await loadEvents();
      showError(null);
    } catch (err) { showError(err); }
  };
  document.getElementById("m-maint-start").addEventListener("click", () => maintenance("POST", { minutes: 60 }));
  document.getElementById("m-maint-end").addEventListener("click", () => maintenance("DELETE"));
});
