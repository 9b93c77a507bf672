/* `/settings`: a person's own account (password, two-factor) and, for admins, the organisation's
   API keys, users and agent links; organisations for server admins. Every change goes through the
   JSON API with the session's CSRF token; everything the server sends reaches the DOM as text.
   A secret (a new key, a link, recovery codes) is shown once, then removed from the page. */
"use strict";

const settings = { csrf: "", keys: [], users: [], links: [], orgs: [], me: "" };

/* --- talking to the API --------------------------------------------------------------------- */

async function api(method, url, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = settings.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, cache: "no-store", credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {  // the session ended (logout elsewhere, password changed, removed)
    window.location.assign("/login?next=" + encodeURIComponent("/settings"));
    throw new Error(t("settings.signed_out"));
  }
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    const err = new Error(message);
    err.status = response.status;
    throw err;
  }
  return response.status === 204 ? null : response.json();
}

/* The session's CSRF token can change (a password change starts a new session): read it again. */
async function refreshSession() {
  const session = await api("GET", "/api/session");
  if (session.csrf_token) settings.csrf = session.csrf_token;
  return session;
}

/* --- small helpers ---------------------------------------------------------------------------- */

const $ = (id) => document.getElementById(id);

/* A status line under a form, from a translation key. Without params it follows a change of
   language (data-i18n); with them it stays as said. */
function say(id, kind, key, params) {
  const node = $(id);
  node.className = "status " + kind;
  if (params) delete node.dataset.i18n;
  else node.dataset.i18n = key;
  node.textContent = t(key, params);
  node.hidden = false;
}

function sayError(id, err) {
  const node = $(id);
  node.className = "status bad";
  delete node.dataset.i18n;
  node.textContent = visibleText(err.message || String(err));
  node.hidden = false;
}

function quiet(id) { $(id).hidden = true; }

/* Run a form's submit handler with its button disabled, errors shown under it. */
function onSubmit(formId, statusId, handler) {
  const form = $(formId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    quiet(statusId);
    try {
      await handler(form);
    } catch (err) {
      sayError(statusId, err);
    } finally {
      button.disabled = false;
    }
  });
}

/* Show a secret once: `boxId` holds it in `textId` until "Done", which wipes it. */
function showOnce(boxId, textId, secret) {
  $(textId).textContent = secret;
  $(boxId).hidden = false;
  $(boxId).scrollIntoView({ block: "nearest" });
}

function wireOnce(boxId, textId, copyId, doneId) {
  $(copyId).addEventListener("click", () => copyText($(textId).textContent, $(copyId)));
  $(doneId).addEventListener("click", () => { $(textId).textContent = ""; $(boxId).hidden = true; });
}

/* Copy to the clipboard; where the browser allows no clipboard (plain http on another host),
   select the text so the person can copy it themselves. */
async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.dataset.i18n = "settings.common.copied";
  } catch (e) {
    const target = button.closest(".once").querySelector(".secret, .codes");
    if (target) window.getSelection().selectAllChildren(target);
    button.dataset.i18n = "settings.common.select";
  }
  button.textContent = t(button.dataset.i18n);
  setTimeout(() => { button.dataset.i18n = "settings.common.copy"; button.textContent = t("settings.common.copy"); }, 3000);
}

/* Ask before something that cannot be undone, in the page's own dialog. */
function confirmThen(key, params, run) {
  const dialog = $("confirm");
  $("confirm-text").textContent = t(key, params);
  const ok = $("confirm-ok");
  const cancel = $("confirm-cancel");
  const done = (go) => {
    ok.onclick = null; cancel.onclick = null;
    dialog.close();
    if (go) run();
  };
  ok.onclick = () => done(true);
  cancel.onclick = () => done(false);
  // Escape closes the dialog too (the browser's own "cancel"); either way focus goes back to
  // the button that opened it, or to the page's main region when that button went away
  const opener = document.activeElement;
  dialog.addEventListener("close", () => {
    ok.onclick = null; cancel.onclick = null;
    const back = opener && opener.isConnected ? opener : document.getElementById("main");
    if (back) back.focus();
  }, { once: true });
  dialog.showModal();
  cancel.focus();  /* the safe choice first: Enter right away does not destroy anything */
}

/* Base64 of a text's UTF-8 bytes (btoa alone takes only Latin-1). */
function base64(text) {
  let binary = "";
  new TextEncoder().encode(text).forEach((byte) => { binary += String.fromCharCode(byte); });
  return btoa(binary);
}

function cell(text, opts) { return el("td", Object.assign({ text }, opts || {})); }

function timeCell(iso, emptyKey) {
  return iso ? el("td", { text: fmtTime(iso), title: iso }) : el("td", { cls: "muted", i18n: emptyKey || "settings.common.never" });
}

function button(key, cls, onClick, about) {
  const b = el("button", { cls, i18n: key });
  b.type = "button";
  b.addEventListener("click", onClick);
  if (about !== undefined) named(b, key, about);
  return b;
}

/* A control in a table row says which row it acts on ("Revoke: agents of Paris"): a screen reader
   listing the page's buttons would otherwise hear the same "Revoke" for every key. */
function named(node, key, about) {
  node.setAttribute("aria-label", t("a11y.row.action", { action: t(key), name: visibleText(about) }));
}

/* --- your account: password ------------------------------------------------------------------ */

function wirePassword() {
  onSubmit("password-form", "password-status", async (form) => {
    const current = form.elements.current.value;
    const fresh = form.elements.new.value;
    if (fresh !== form.elements.repeat.value) {
      say("password-status", "bad", "settings.password.mismatch");
      return;
    }
    const answer = await api("POST", "/api/session/password", { current, new: fresh });
    form.reset();
    // the server started a new session (the others ended): its CSRF token from now on
    if (answer && answer.csrf_token) settings.csrf = answer.csrf_token;
    else await refreshSession();
    say("password-status", "good", "settings.password.changed");
  });
}

/* --- your account: two-factor ---------------------------------------------------------------- */

function showTotp(state) {
  $("totp-off").hidden = state !== "off";
  $("totp-enrol").hidden = state !== "enrol";
  $("totp-codes").hidden = state !== "codes";
  $("totp-on").hidden = state !== "on";
}

function wireTotp(enabled) {
  showTotp(enabled ? "on" : "off");
  $("totp-start").addEventListener("click", async () => {
    quiet("totp-status");
    try {
      const enrol = await api("POST", "/api/session/totp");
      $("totp-qr").src = "data:image/svg+xml;base64," + base64(enrol.qr_svg);
      $("totp-secret").textContent = enrol.secret;
      showTotp("enrol");
      $("totp-confirm-form").elements.code.focus();
    } catch (err) {
      sayError("totp-status", err);
    }
  });
  $("totp-cancel").addEventListener("click", () => {
    $("totp-secret").textContent = "";
    $("totp-qr").removeAttribute("src");
    showTotp("off");
  });
  onSubmit("totp-confirm-form", "totp-status", async (form) => {
    const answer = await api("POST", "/api/session/totp/confirm", { code: form.elements.code.value.trim() });
    form.reset();
    $("totp-secret").textContent = "";
    $("totp-qr").removeAttribute("src");
    const list = $("totp-code-list");
    clear(list);
    (answer.recovery_codes || []).forEach((code) => list.appendChild(el("li", { text: code })));
    $("totp-codes-saved").checked = false;
    $("totp-codes-done").disabled = true;
    showTotp("codes");
  });
  $("totp-codes-saved").addEventListener("change", (e) => { $("totp-codes-done").disabled = !e.target.checked; });
  $("totp-codes-copy").addEventListener("click", () => {
    const codes = [...$("totp-code-list").children].map((li) => li.textContent).join("\n");
    copyText(codes, $("totp-codes-copy"));
  });
  $("totp-codes-print").addEventListener("click", () => window.print());
  $("totp-codes-done").addEventListener("click", () => {
    clear($("totp-code-list"));
    showTotp("on");
    say("totp-status", "good", "settings.totp.enabled");
  });
  onSubmit("totp-remove-form", "totp-status", async (form) => {
    await api("DELETE", "/api/session/totp", { password: form.elements.password.value });
    form.reset();
    showTotp("off");
    say("totp-status", "good", "settings.totp.removed");
  });
}

/* --- API keys -------------------------------------------------------------------------------- */

const orgPath = () => "/api/orgs/" + encodeURIComponent(document.body.dataset.org);

async function loadKeys() {
  settings.keys = (await api("GET", orgPath() + "/keys")).keys || [];
  renderKeys();
}

function renderKeys() {
  const body = $("keys-table").querySelector("tbody");
  clear(body);
  settings.keys.forEach((key) => {
    const row = el("tr", {}, [
      cell(key.name || "–", { agent: true }), cell(key.id, { cls: "mono" }), cell(key.scopes.join(", ")),
      timeCell(key.created_at), timeCell(key.last_used_at), timeCell(key.expires_at, "settings.keys.no_expiry"),
      el("td", {}, [button("settings.keys.revoke", "danger small", () => confirmThen(
        "settings.keys.revoke.confirm", { name: key.name || key.id }, () => revokeKey(key)), key.name || key.id)]),
    ]);
    row.dataset.keyId = key.id;
    body.appendChild(row);
  });
  $("keys-empty").hidden = settings.keys.length > 0;
}

async function revokeKey(key) {
  try {
    await api("DELETE", orgPath() + "/keys/" + encodeURIComponent(key.id));
    say("key-status", "good", "settings.keys.revoked", { name: key.name || key.id });
    await loadKeys();
  } catch (err) {
    sayError("key-status", err);
  }
}

function wireKeys() {
  wireOnce("key-once", "key-secret", "key-copy", "key-once-done");
  $("key-form").elements.expires.min = new Date(Date.now() + 86400000).toISOString().slice(0, 10);
  onSubmit("key-form", "key-status", async (form) => {
    const scopes = [...form.querySelectorAll("input[name=scope]:checked")].map((box) => box.value);
    if (!scopes.length) {
      say("key-status", "bad", "settings.keys.no_scope");
      return;
    }
    const body = { name: form.elements.name.value.trim(), scopes };
    if (form.elements.expires.value) body.expires_at = form.elements.expires.value + "T23:59:59Z";
    const made = await api("POST", orgPath() + "/keys", body);
    form.reset();
    showOnce("key-once", "key-secret", made.secret);
    await loadKeys();
  });
}

/* --- users ----------------------------------------------------------------------------------- */

async function loadUsers() {
  settings.users = (await api("GET", orgPath() + "/users")).users || [];
  renderUsers();
}

function roleSelect(user) {
  const select = el("select");
  ["viewer", "operator", "admin"].forEach((role) => {
    const option = el("option", { i18n: "settings.role." + role });
    option.value = role;
    select.appendChild(option);
  });
  select.value = user.role;
  named(select, "settings.users.role", user.username);
  select.disabled = user.username === settings.me;  // no admin demotes themselves by a slip
  select.addEventListener("change", async () => {
    try {
      await api("PATCH", orgPath() + "/users/" + encodeURIComponent(user.username), { role: select.value });
      say("user-status", "good", "settings.users.role_changed", { user: user.username });
      await loadUsers();
    } catch (err) {
      select.value = user.role;
      sayError("user-status", err);
    }
  });
  return select;
}

function renderUsers() {
  const body = $("users-table").querySelector("tbody");
  clear(body);
  settings.users.forEach((user) => {
    const name = el("td", { text: user.username, cls: "mono" });
    if (user.server_admin) name.appendChild(el("span", { cls: "tag", i18n: "settings.users.server_admin" }));
    const remove = user.username === settings.me ? el("td") : el("td", {}, [
      button("settings.users.remove", "danger small", () => confirmThen(
        "settings.users.remove.confirm", { user: user.username }, () => removeUser(user)), user.username)]);
    const row = el("tr", {}, [
      name, el("td", {}, [roleSelect(user)]),
      el("td", { i18n: user.totp ? "settings.users.totp.on" : "settings.users.totp.off" }), timeCell(user.created_at), remove,
    ]);
    row.dataset.username = user.username;
    body.appendChild(row);
  });
}

async function removeUser(user) {
  try {
    await api("DELETE", orgPath() + "/users/" + encodeURIComponent(user.username));
    say("user-status", "good", "settings.users.removed", { user: user.username });
    await loadUsers();
  } catch (err) {
    sayError("user-status", err);
  }
}

function wireUsers() {
  onSubmit("user-form", "user-status", async (form) => {
    const body = { username: form.elements.username.value.trim(), role: form.elements.role.value };
    if (form.elements.password.value) body.password = form.elements.password.value;
    await api("POST", orgPath() + "/users", body);
    form.reset();
    say("user-status", "good", "settings.users.added", { user: body.username });
    await loadUsers();
  });
}

/* --- agent links ----------------------------------------------------------------------------- */

async function loadLinks() {
  settings.links = (await api("GET", "/api/agent/links")).links || [];
  renderLinks();
}

function renderLinks() {
  const body = $("links-table").querySelector("tbody");
  clear(body);
  settings.links.forEach((link) => {
    const row = el("tr", {}, [
      cell(link.path, { cls: "mono", agent: true }), el("td", { i18n: link.enroll ? "settings.common.yes" : "settings.common.no" }),
      cell(link.created_by || "–", { cls: "mono" }), timeCell(link.created_at), timeCell(link.expires_at),
      el("td", {}, [button("settings.links.revoke", "danger small", () => confirmThen(
        "settings.links.revoke.confirm", { path: link.path }, () => revokeLink(link)), link.path)]),
    ]);
    row.dataset.linkId = link.id;
    body.appendChild(row);
  });
  $("links-empty").hidden = settings.links.length > 0;
}

async function revokeLink(link) {
  try {
    await api("DELETE", "/api/agent/links/" + encodeURIComponent(link.id));
    say("link-status", "good", "settings.links.revoked", { path: link.path });
    await loadLinks();
  } catch (err) {
    sayError("link-status", err);
  }
}

function wireLinks() {
  wireOnce("link-once", "link-url", "link-copy", "link-once-done");
  onSubmit("link-form", "link-status", async (form) => {
    const made = await api("POST", "/api/agent/link", {
      path: form.elements.path.value.trim(), ttl: Number(form.elements.ttl.value),
      enroll: form.elements.enroll.checked,
    });
    form.reset();
    showOnce("link-once", "link-url", made.url || new URL(made.link, window.location.origin).href);
    await loadLinks();
  });
}

/* --- organisations (server admins) ----------------------------------------------------------- */

async function loadOrgs() {
  settings.orgs = (await api("GET", "/api/orgs")).orgs || [];
  renderOrgs();
}

function renderOrgs() {
  const body = $("orgs-table").querySelector("tbody");
  clear(body);
  settings.orgs.forEach((org) => {
    const row = el("tr", {}, [cell(org.id, { cls: "mono" }), cell(org.name, { agent: true }), timeCell(org.created_at, "settings.common.unknown")]);
    row.dataset.orgId = org.id;
    body.appendChild(row);
  });
}

function wireOrgs() {
  wireOnce("org-once", "org-key", "org-copy", "org-once-done");
  onSubmit("org-form", "org-status", async (form) => {
    const made = await api("POST", "/api/orgs", { name: form.elements.name.value.trim() });
    form.reset();
    say("org-status", "good", "settings.orgs.created", { name: made.org.name, id: made.org.id });
    showOnce("org-once", "org-key", made.api_key);
    await loadOrgs();
  });
}

/* --- start ----------------------------------------------------------------------------------- */

function renderAll() {
  if ($("keys")) { renderKeys(); renderUsers(); renderLinks(); }
  if ($("orgs")) renderOrgs();
}

document.addEventListener("DOMContentLoaded", async () => {
  settings.csrf = document.querySelector('meta[name="csrf-token"]').content;
  settings.me = document.body.dataset.user;
  $("confirm").addEventListener("cancel", () => { $("confirm-ok").onclick = null; });
  wirePassword();
  const loads = [];
  if ($("keys")) {
    wireKeys(); wireUsers(); wireLinks();
    loads.push(["key-status", loadKeys], ["user-status", loadUsers], ["link-status", loadLinks]);
  }
  if ($("orgs")) {
    wireOrgs();
    loads.push(["org-status", loadOrgs]);
  }
  document.addEventListener("dashfleet:lang", renderAll);
  try {
    const session = await refreshSession();
    wireTotp(Boolean(session.totp));
  } catch (err) {
    sayError("totp-status", err);
  }
  await Promise.all(loads.map(([statusId, load]) => load().catch((err) => sayError(statusId, err))));
  document.body.dataset.ready = "1";
});
