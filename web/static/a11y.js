/* Accessibility helpers shared by the pages (issue 16):
   - announce(): the page's one polite live region (#announcer), for what changed since the last
     refresh, never for a refresh that changed nothing;
   - StatusWatch: remembers each machine's status between refreshes and words the changes;
   - fleet health in the tab: the worst status of the fleet in the page title and the favicon, from
     the fleet page's own data or, on the other pages, from GET /api/summary (only when the session
     may read the fleet: a page of someone who cannot stays as it is);
   - chartSummary(): a chart's text alternative, per series the latest value and the range;
   - the skip link moves focus into <main>. */
"use strict";

const A11Y_SUMMARY_MS = 15000;
const WORST_ORDER = ["critical", "warn", "expired", "ok"];
const ICON_COLOURS = { ok: "#22c55e", warn: "#f59e0b", critical: "#ef4444", expired: "#9ca3af" };
let fleetWorst = null;  /* {status, n} of the last fleet health shown, or null while unknown */

/* Say `text` once in the live region (emptied first, so the same sentence twice is read twice). */
function announce(text) {
  const region = document.getElementById("announcer");
  if (!region || !text) return;
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

/* A status as a word inside a sentence ("pc-7 is now critical"). */
function statusWord(status) { return t("status." + status).toLocaleLowerCase(currentLang()); }

/* A machine's status as the pages show it: a silent machine is "expired", whatever it last said. */
function shownStatus(m) { return m.expired ? "expired" : m.status; }

/* Each machine's shown status since the previous refresh; `changes` words what is new. The first
   refresh only takes note (nothing "changed" for someone who just opened the page). */
class StatusWatch {
  constructor() { this.seen = null; }

  changes(machines) {
    const now = new Map(machines.map((m) => [m.machine_id, { status: shownStatus(m), name: m.hostname || m.machine_id }]));
    const before = this.seen;
    this.seen = now;
    if (!before) return "";
    const silent = [];
    const moved = [];
    now.forEach((entry, id) => {
      const old = before.get(id);
      if (!old || old.status === entry.status) return;
      (entry.status === "expired" ? silent : moved).push(entry);
    });
    const parts = [];
    if (moved.length > 3) {
      const byStatus = {};
      moved.forEach((e) => { byStatus[e.status] = (byStatus[e.status] || 0) + 1; });
      WORST_ORDER.forEach((s) => {
        if (byStatus[s]) parts.push(t("a11y.now.many", { n: byStatus[s], status: statusWord(s) }));
      });
    } else {
      moved.forEach((e) => parts.push(t("a11y.now.one", { name: visibleText(e.name), status: statusWord(e.status) })));
    }
    if (silent.length === 1) parts.push(t("a11y.silent.one", { name: visibleText(silent[0].name) }));
    if (silent.length > 1) parts.push(t("a11y.silent.many", { n: silent.length }));
    return parts.join(". ");
  }
}

/* Counts by shown status and the worst one present (null for an empty fleet). */
function fleetCounts(machines) {
  const counts = { ok: 0, warn: 0, critical: 0, expired: 0 };
  machines.forEach((m) => { counts[shownStatus(m)] += 1; });
  const worst = WORST_ORDER.find((s) => counts[s] > 0) || null;
  return { counts, worst };
}

function faviconHref(status) {
  const colour = ICON_COLOURS[status];
  const mark = status === "ok" ? "" :
    `<circle cx="24" cy="24" r="8" fill="${colour}" stroke="#111827" stroke-width="2"/>` +
    (status === "critical" ? '<path d="M24 19v6M24 28v1" stroke="#fff" stroke-width="2.5" stroke-linecap="round"/>' : "");
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#111827"/>' +
    `<path d="M6 20h5l3-9 4 14 3-8h5" fill="none" stroke="${status === "ok" ? colour : "#d1d5db"}" stroke-width="3" ` +
    `stroke-linecap="round" stroke-linejoin="round"/>${mark}</svg>`;
  return "data:image/svg+xml," + encodeURIComponent(svg);
}

/* The page title (its own translated title, prefixed with the fleet's worst status) and favicon. */
function renderFleetHealth() {
  const titleEl = document.querySelector("title");
  const own = titleEl && titleEl.dataset.i18n ? t(titleEl.dataset.i18n) : document.title;
  if (!fleetWorst) { document.title = own; return; }
  const word = fleetWorst.status === "ok" ? t("a11y.title.ok") : t("a11y.title." + fleetWorst.status, { n: fleetWorst.n });
  document.title = word + " · " + own;
  const link = document.querySelector('link[rel="icon"]');
  if (link) {
    link.href = faviconHref(fleetWorst.status);
    link.dataset.status = fleetWorst.status;
  }
}

/* Show the fleet's health from a list of machines (the fleet page) or from /api/summary's counts. */
function showFleetHealth(counts, worst) {
  fleetWorst = worst ? { status: worst, n: counts[worst] } : null;
  renderFleetHealth();
}

async function refreshSummary() {
  const doc = await getJSON("/api/summary");
  showFleetHealth({ ok: doc.ok, warn: doc.warn, critical: doc.critical, expired: doc.silent },
                  doc.worst === "silent" ? "expired" : doc.worst);
}

/* Pages other than /fleet (which shows the health from its own refresh) ask for the counts. */
async function watchFleetHealth() {
  if (document.body.dataset.page === "fleet" || typeof dashfleetSession === "undefined") return;
  const session = await dashfleetSession;
  if (!mayDo(session, "read")) return;  /* cannot read the fleet: title and icon stay as they are */
  const round = async () => {
    try { await refreshSummary(); } catch (err) { /* the page's own refresh reports a lost server */ }
    setTimeout(round, A11Y_SUMMARY_MS);
  };
  round();
}

/* "CPU: now 23 %, between 4 % and 61 % over the last 24 hours", one <li> per series with data.
   `series`: [{label, values: [numbers, oldest first]}]; `period`: the translated period words. */
function chartSummary(ul, series, period) {
  const items = series.filter((s) => s.values.length).map((s) => el("li", {
    text: t("a11y.chart.series", {
      metric: s.label, now: fmtNumber(s.values[s.values.length - 1], 0),
      min: fmtNumber(Math.min(...(s.mins || s.values)), 0), max: fmtNumber(Math.max(...(s.maxs || s.values)), 0),
      period,
    }),
  }));
  if (!items.length) items.push(el("li", { i18n: "a11y.chart.none" }));
  ul.replaceChildren(...items);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll('a.skip-link[href="#main"]').forEach((link) => {
    link.addEventListener("click", (event) => {
      const main = document.getElementById("main");
      if (!main) return;
      event.preventDefault();
      main.focus();
    });
  });
  document.addEventListener("dashfleet:lang", renderFleetHealth);
  watchFleetHealth();
});
