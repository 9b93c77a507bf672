/* The header's menu button: below 700 px the header's links and controls fold behind it (style.css
   hides #top-menu unless it has .open, and only when <html> has .js, which theme.js sets, so without
   a script the links stay shown). A real <button aria-expanded aria-controls>; Escape closes the
   menu and gives the focus back to the button. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("menu-button");
  const menu = document.getElementById("top-menu");
  if (!button || !menu) return;
  const show = (open) => {
    menu.classList.toggle("open", open);
    button.setAttribute("aria-expanded", String(open));
  };
  button.addEventListener("click", () => show(button.getAttribute("aria-expanded") !== "true"));
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      show(false);
      button.focus();
    }
  });
});
