/* `/fleet`: every machine; sort by any column, filter by text and status, refresh every 5 s
   without losing either (the view is also remembered across visits).

   Below 700 px the same table shows as stacked cards (style.css): one DOM for both layouts, only
   the CSS differs. So in table layout the table stays a real table (th scope, aria-sort, the
   column headers sort), a refresh builds the rows once whatever the width (no second card list to
   keep in step: the card layout costs what the table costs, bench/fleet_page.py), and resizing or
   turning a phone needs no re-render. Card-only parts are in every row but shown only there: the
   cell labels (drawn by CSS from custom properties set once per render, not per cell) and a "Details" button that opens a card's CPU, memory
   and disk cells. Which cards are open, and which control had the focus, survive the refresh. */
"use strict";

const VIEW_KEY = "dashfleet.fleet.view";
const STATUS_RANK = { ok: 0, warn: 1, critical: 2 };
let fleetDoc = null;
let view = { key: "status", dir: "desc", text: "", status: "" };
const openCards = new Set();  /* machine ids whose card shows its details */

function loadView() {
  try { view = Object.assign(view, JSON.parse(localStorage.getItem(VIEW_KEY) || "{}")); } catch (e) { /* keep defaults */ }
}

function saveView() {
  try { localStorage.setItem(VIEW_KEY, JSON.stringify(view)); } catch (e) { /* not remembered */ }
}

function sortValue(m, key) {
  switch (key) {
    case "hostname": return (m.hostname || m.machine_id).toLowerCase();
    case "status": return m.expired ? 3 : STATUS_RANK[m.status];
    case "score": return m.score;
    case "reason": return findingText(m.top_reason).toLowerCase();
    case "cpu": return m.metrics["cpu.percent"];
    case "ram": return m.metrics["memory.percent"];
    case "disk": return m.metrics["disk.percent"];
    case "seen": return Date.parse(m.last_seen);
    default: return 0;
  }
}

/* The machines shown, sorted by the view's column, missing values last, ties by name. Each sort
   value and name is computed once per machine, not once per comparison. */
function sortMachines(machines) {
  const names = formatter("Collator", {});
  const missing = (v) => v === undefined || v === null;
  const sign = view.dir === "asc" ? 1 : -1;
  const rows = machines.map((m) => ({ m, value: sortValue(m, view.key), name: m.hostname || m.machine_id }));
  rows.sort((a, b) => {
    if (missing(a.value) || missing(b.value)) return missing(a.value) - missing(b.value);
    const order = a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
    return sign * order || names.compare(a.name, b.name);
  });
  return rows.map((row) => row.m);
}

function matches(m) {
  if (view.status === "expired" && !m.expired) return false;
  if (view.status && view.status !== "expired" && (m.expired || m.status !== view.status)) return false;
  if (!view.text) return true;
  const needle = view.text.toLowerCase();
  return [m.hostname, m.machine_id, m.os, findingText(m.top_reason)]
    .some((field) => (field || "").toLowerCase().includes(needle));
}

/* The card layout's cell labels, in the reader's language: custom properties on the table that
   style.css draws before each cell (`content: var(--label-cpu)`), set once per render. */
function setCardLabels(table) {
  ["score", "cpu", "ram", "disk", "seen"].forEach((key) => {
    table.style.setProperty("--label-" + key, JSON.stringify(t("col." + key) + ": "));
  });
}

function machineRow(m, details) {
  const name = el("a", { href: "/fleet/" + encodeURIComponent(m.machine_id), text: m.hostname || m.machine_id, cls: "host", agent: true });
  const nameCell = el("td", { cls: "name" }, [name]);
  if (m.hostname && m.hostname !== m.machine_id) nameCell.appendChild(el("div", { cls: "muted mono small", text: m.machine_id, agent: true }));
  const badge = el("span");
  statusBadge(badge, m.status, false);
  const statusCell = el("td", { cls: "status" }, [badge]);
  if (m.expired) statusCell.appendChild(el("span", { cls: "tag expired", i18n: "status.expired" }));
  if (m.maintenance_until) {
    statusCell.appendChild(el("div", { cls: "maint small", text: t("fleet.maintenance", { time: fmtTime(m.maintenance_until) }) }));
  }
  const open = openCards.has(m.machine_id);
  const more = el("button", { cls: "more", text: details });
  more.type = "button";
  more.setAttribute("aria-expanded", String(open));
  const row = el("tr", { cls: (m.expired ? "expired" : "") + (open ? " open" : "") }, [
    nameCell, statusCell,
    el("td", { cls: "num score", text: m.score }),
    el("td", { cls: "reason", text: findingText(m.top_reason), agent: true }),
    el("td", { cls: "num detail cpu", text: fmtNumber(m.metrics["cpu.percent"]) }),
    el("td", { cls: "num detail ram", text: fmtNumber(m.metrics["memory.percent"]) }),
    el("td", { cls: "num detail disk", text: fmtNumber(m.metrics["disk.percent"]) }),
    el("td", { cls: "seen", text: fmtAgo(m.last_seen), title: fmtTime(m.last_seen) }),
    el("td", { cls: "more-cell" }, [more]),
  ]);
  row.dataset.machineId = m.machine_id;
  return row;
}

/* The control in the fleet list that has the focus, as (machine id, its class), so the same
   control of the rebuilt row gets it back after a refresh. */
function focusedInList(tbody) {
  const active = document.activeElement;
  if (!active || !tbody.contains(active)) return null;
  const row = active.closest("tr");
  return row ? { id: row.dataset.machineId, cls: active.className.split(" ")[0] } : null;
}

function refocus(tbody, where) {
  if (!where || !where.cls) return;
  const row = Array.from(tbody.rows).find((r) => r.dataset.machineId === where.id);
  const target = row && row.querySelector("." + where.cls);
  if (target) target.focus({ preventScroll: true });
}

function renderFleet() {
  document.querySelectorAll("#fleet-table th").forEach((th) => {
    const sorted = th.dataset.key === view.key;
    if (sorted) th.setAttribute("aria-sort", view.dir === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
    const next = sorted && view.dir === "asc" ? "desc" : "asc";  /* what a press does (see the click handler) */
    th.querySelector("button").setAttribute("aria-label", t("a11y.sort." + next, { column: t(th.querySelector("button").dataset.i18n) }));
  });
  document.getElementById("sort-key").value = view.key;
  document.getElementById("sort-dir").value = view.dir;
  if (!fleetDoc) return;
  const shown = sortMachines(fleetDoc.machines.filter(matches));
  setCardLabels(document.getElementById("fleet-table"));
  const details = t("fleet.details");
  const rows = document.createDocumentFragment();
  shown.forEach((m) => rows.appendChild(machineRow(m, details)));
  const tbody = document.querySelector("#fleet-table tbody");
  const focused = focusedInList(tbody);
  tbody.replaceChildren(rows);  /* one DOM change, not one per row */
  refocus(tbody, focused);
  document.getElementById("fleet-count").textContent = t("fleet.count", { shown: shown.length, total: fleetDoc.count });
  document.getElementById("fleet-empty").hidden = fleetDoc.count > 0;
  const maint = document.getElementById("fleet-maintenance");
  maint.hidden = !fleetDoc.maintenance_all_until;
  if (fleetDoc.maintenance_all_until) maint.textContent = t("fleet.maintenance.all", { time: fmtTime(fleetDoc.maintenance_all_until) });
}

document.addEventListener("DOMContentLoaded", () => {
  loadView();
  const filter = document.getElementById("filter");
  const status = document.getElementById("status-filter");
  filter.value = view.text;
  status.value = view.status;
  let typing = null;  /* re-render once the typing pauses, not on every key of a large fleet */
  filter.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { view.text = filter.value.trim(); saveView(); renderFleet(); }, 150);
  });
  status.addEventListener("change", () => { view.status = status.value; saveView(); renderFleet(); });
  document.querySelectorAll("#fleet-table th button").forEach((button) => {
    button.addEventListener("click", () => {
      const key = button.parentElement.dataset.key;
      view.dir = view.key === key && view.dir === "asc" ? "desc" : "asc";
      view.key = key;
      saveView();
      renderFleet();
    });
  });
  const sortKey = document.getElementById("sort-key");
  const sortDir = document.getElementById("sort-dir");
  const sortBy = () => { view.key = sortKey.value; view.dir = sortDir.value; saveView(); renderFleet(); };
  sortKey.addEventListener("change", sortBy);
  sortDir.addEventListener("change", sortBy);
  /* one listener for every card's Details button (rows are rebuilt on each refresh) */
  document.querySelector("#fleet-table tbody").addEventListener("click", (event) => {
    const button = event.target.closest("button.more");
    if (!button) return;
    const row = button.closest("tr");
    const open = !row.classList.contains("open");
    if (open) openCards.add(row.dataset.machineId); else openCards.delete(row.dataset.machineId);
    row.classList.toggle("open", open);
    button.setAttribute("aria-expanded", String(open));
  });
  const watch = new StatusWatch();
  poll(async () => {
    fleetDoc = await getJSON("/api/fleet");
    renderFleet();
    announce(watch.changes(fleetDoc.machines));
    const health = fleetCounts(fleetDoc.machines);
    showFleetHealth(health.counts, health.worst);
  }, 5000);
  document.addEventListener("dashfleet:lang", renderFleet);
});
