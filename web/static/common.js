/* Helpers shared by the pages. Data from agents only ever reaches the DOM through textContent
   (el() below); no page builds HTML from strings. Text also has its control and bidi characters
   shown as visible stand-ins (visibleText), and elements showing agent text are isolated with
   dir="auto" (agentText / el's `agent` option), so "\u202eevil" cannot reverse what it sits in. */
"use strict";

const METRIC_KEYS = {
  "cpu.percent": "metric.cpu", "memory.percent": "metric.ram", "disk.percent": "metric.disk",
  "uptime.seconds": "metric.uptime",
};

/* C0/C1 controls, DEL, the Unicode line separators and the bidi formatting characters: the same
   set as dashfleet_core/text.py, with the same stand-ins (ESC -> U+241B, U+202E -> "<U+202E>"). */
const HIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function visibleText(value) {
  return String(value).replace(HIDDEN_CHARS, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return "\u2421";
    return "<U+" + code.toString(16).toUpperCase().padStart(4, "0") + ">";
  });
}

/* Show agent text in an existing element: visible controls, isolated direction. */
function agentText(node, value) {
  node.dir = "auto";
  node.textContent = visibleText(value === undefined || value === null ? "" : value);
  return node;
}

/* Build an element: el("td", {cls: "num", text: value, title: ..., href: ..., agent: true}, [children]).
   `agent: true` marks text an agent sent (names, facts, messages): it gets dir="auto". */
function el(tag, opts, children) {
  const node = document.createElement(tag);
  const o = opts || {};
  if (o.cls) node.className = o.cls;
  if (o.agent) node.dir = "auto";
  if (o.text !== undefined && o.text !== null) node.textContent = visibleText(o.text);
  if (o.i18n) { node.dataset.i18n = o.i18n; node.textContent = t(o.i18n); }
  if (o.href) node.setAttribute("href", o.href);
  if (o.title) node.title = o.title;
  (children || []).forEach((child) => { if (child) node.appendChild(child); });
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    const err = new Error(message);
    err.status = response.status;
    throw err;
  }
  return response.json();
}

function showError(err) {
  const box = document.getElementById("error");
  if (!box) return;
  if (err) {
    box.textContent = t("error.fetch", { error: err.message || String(err) });
    box.hidden = false;
  } else {
    box.hidden = true;
  }
}

/* Call `load` now and every `ms`; errors show a banner and the next round tries again. */
function poll(load, ms) {
  let timer = null;
  const round = async () => {
    try { await load(); showError(null); } catch (err) { showError(err); }
    timer = setTimeout(round, ms);
  };
  round();
  return () => clearTimeout(timer);
}

/* Intl formatters cost far more to build than to use (the fleet page formats thousands of values
   per refresh), so each is built once per language and options. */
const FORMATTERS = new Map();

function formatter(kind, options) {
  const key = kind + " " + currentLang() + " " + JSON.stringify(options);
  let made = FORMATTERS.get(key);
  if (!made) {
    made = new Intl[kind](currentLang(), options);
    FORMATTERS.set(key, made);
  }
  return made;
}

function fmtNumber(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return formatter("NumberFormat", { maximumFractionDigits: digits === undefined ? 1 : digits }).format(v);
}

function fmtPct(v) { return v === null || v === undefined ? "–" : fmtNumber(v, 1) + " %"; }

function fmtTime(iso) {
  if (!iso) return "–";
  return formatter("DateTimeFormat", { dateStyle: "short", timeStyle: "medium" }).format(new Date(iso));
}

function fmtClock(ms, withDate) {
  const opts = withDate ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
                        : { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  return formatter("DateTimeFormat", opts).format(new Date(ms));
}

function fmtAgo(iso) {
  if (!iso) return "–";
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  const rtf = formatter("RelativeTimeFormat", { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) return rtf.format(seconds, "second");
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), "hour");
  return rtf.format(Math.round(seconds / 86400), "day");
}

function fmtUptime(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  let s = Math.floor(seconds);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const parts = [];
  if (d) parts.push(d + " " + t("unit.d"));
  if (d || h) parts.push(h + " " + t("unit.h"));
  parts.push(m + " " + t("unit.min"));
  if (!d) parts.push(s + " " + t("unit.s"));
  return parts.join(" ");
}

function metricLabel(name) { return METRIC_KEYS[name] ? t(METRIC_KEYS[name]) : name; }

/* A finding in the reader's language when it is a threshold breach; the plugin's own message
   (shown as text) otherwise. */
function findingText(f) {
  if (!f) return "";
  if (f.metric && f.value !== null && f.threshold !== null) {
    const key = f.value < f.threshold ? "finding.below" : "finding.above";
    return t(key, { metric: metricLabel(f.metric), value: fmtNumber(f.value), threshold: fmtNumber(f.threshold),
                    severity: t("severity." + f.severity) });
  }
  return f.message;
}

function statusBadge(node, status, expired) {
  const key = expired ? "expired" : status;
  node.className = "badge " + key;
  node.dataset.i18n = "status." + key;
  node.textContent = t("status." + key);
}

function findingsList(ul, findings, emptyKey) {
  clear(ul);
  if (!findings.length) { ul.appendChild(el("li", { cls: "muted", i18n: emptyKey })); return; }
  findings.forEach((f) => {
    ul.appendChild(el("li", { cls: "finding " + f.severity }, [
      el("span", { cls: "badge " + f.severity, text: t("status." + f.severity) }),
      document.createTextNode(" "),
      el("span", { text: findingText(f), agent: true }),
    ]));
  });
}

/* Axis, grid and legend colours from the theme (style.css), set before each draw: a page repaints
   its charts on "dashfleet:theme" with chart.update(). */
const themedChart = {
  id: "dashfleetTheme",
  beforeUpdate(chart) {
    const text = themeColor("--muted");
    const grid = themeColor("--line");
    Object.values(chart.options.scales).forEach((scale) => {
      scale.ticks.color = text;
      scale.grid.color = grid;
      scale.border.color = grid;
    });
    chart.options.plugins.legend.labels.color = themeColor("--ink");
  },
};

/* A line chart of percentages against time (ms) with Chart.js (vendored, no CDN). It follows the
   width of its box (responsive; the box sets the height, style.css). */
function percentChart(canvas, withDate) {
  return new Chart(canvas, {
    plugins: [themedChart],
    type: "line",
    data: { datasets: [] },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      elements: { point: { radius: 0 }, line: { borderWidth: 2, tension: 0.2 } },
      scales: {
        x: { type: "linear", ticks: { maxTicksLimit: 8, callback: (v) => fmtClock(v, withDate) } },
        y: { min: 0, max: 100, ticks: { callback: (v) => v + " %" } },
      },
      plugins: { tooltip: { callbacks: { title: (items) => items.length ? fmtClock(items[0].parsed.x, true) : "" } } },
    },
  });
}

const SERIES = [
  { key: "cpu", metric: "cpu.percent", cssVar: "--series-cpu" },
  { key: "ram", metric: "memory.percent", cssVar: "--series-ram" },
  { key: "disk", metric: "disk.percent", cssVar: "--series-disk" },
];

/* A series' line colour in the current theme. */
function seriesColor(series) { return themeColor(series.cssVar); }
