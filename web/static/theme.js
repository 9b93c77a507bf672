/* The colour theme: "auto" (follow the system's prefers-color-scheme), "light" or "dark", chosen with
   the header's #theme select and remembered in localStorage. Loaded without `defer` in <head> so
   the remembered choice is on <html data-theme> before the first paint (no light flash on a dark
   page); the CSP allows no inline script, hence this file. style.css writes every colour once as
   light-dark(light, dark): the browser picks by `color-scheme`, which data-theme pins. */
"use strict";

const THEME_KEY = "dashfleet.theme";
const THEMES = ["auto", "light", "dark"];

function savedTheme() {
  let saved = null;
  try { saved = localStorage.getItem(THEME_KEY); } catch (e) { saved = null; }
  return THEMES.includes(saved) ? saved : "auto";
}

function applyTheme(theme) {
  const root = document.documentElement;
  if (theme === "auto") delete root.dataset.theme; else root.dataset.theme = theme;
}

/* A theme colour as the browser resolved it ("rgb(…)"), for Chart.js, which draws on a canvas and
   cannot use CSS variables: a probe element takes the variable as its colour. */
function themeColor(name) {
  let probe = document.getElementById("theme-probe");
  if (!probe) {
    probe = document.createElement("span");
    probe.id = "theme-probe";
    probe.hidden = true;
    document.body.appendChild(probe);
  }
  probe.style.color = "var(" + name + ")";
  return getComputedStyle(probe).color;
}

function setTheme(theme) {
  if (!THEMES.includes(theme)) return;
  try {
    if (theme === "auto") localStorage.removeItem(THEME_KEY); else localStorage.setItem(THEME_KEY, theme);
  } catch (e) { /* private mode: this page only */ }
  applyTheme(theme);
  document.dispatchEvent(new CustomEvent("dashfleet:theme", { detail: { theme } }));
}

applyTheme(savedTheme());
document.documentElement.classList.add("js");  /* the header menu collapses only when a script can open it */

document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("theme");
  if (select) {
    select.value = savedTheme();
    select.addEventListener("change", () => setTheme(select.value));
  }
  /* the system's scheme changed while the page is open (auto theme): charts repaint */
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      if (savedTheme() === "auto") document.dispatchEvent(new CustomEvent("dashfleet:theme", { detail: { theme: "auto" } }));
    });
  }
});
