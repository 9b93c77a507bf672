/* `/history`: this server's machine over time (up to 300 stored samples) and the last 20 rows. */
"use strict";

let historyChart = null;
let lastHistory = null;

function renderHistory() {
  const doc = lastHistory;
  if (!doc) return;
  const samples = doc.samples;
  document.getElementById("history-count").textContent = t("history.count", { n: samples.length });
  if (!historyChart) historyChart = percentChart(document.getElementById("history-chart"), false);
  historyChart.data.datasets = SERIES.map((s) => ({
    label: metricLabel(s.metric), borderColor: seriesColor(s), backgroundColor: seriesColor(s),
    data: samples.filter((row) => row[s.key] !== null).map((row) => ({ x: Date.parse(row.collected_at), y: row[s.key] })),
  }));
  historyChart.update();
  chartSummary(document.getElementById("history-chart-summary"), SERIES.map((s) => ({
    label: metricLabel(s.metric), values: samples.map((row) => row[s.key]).filter((v) => v !== null),
  })), t("a11y.period.samples", { n: samples.length }));
  const body = document.querySelector("#history-table tbody");
  clear(body);
  samples.slice(-20).reverse().forEach((row) => {
    const badge = el("span");
    if (row.status) statusBadge(badge, row.status, false);
    body.appendChild(el("tr", {}, [
      el("td", { text: fmtTime(row.collected_at) }), el("td", { cls: "num", text: fmtNumber(row.cpu) }),
      el("td", { cls: "num", text: fmtNumber(row.ram) }), el("td", { cls: "num", text: fmtNumber(row.disk) }),
      el("td", { cls: "num", text: row.score === null ? "–" : row.score }), el("td", {}, [badge]),
    ]));
  });
  document.getElementById("history-empty").hidden = samples.length > 0;
}

document.addEventListener("DOMContentLoaded", () => {
  poll(async () => { lastHistory = await getJSON("/api/history?limit=300"); renderHistory(); }, 10000);
  document.addEventListener("dashfleet:lang", renderHistory);
  document.addEventListener("dashfleet:theme", renderHistory);
});
