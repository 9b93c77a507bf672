/* The dashboard's session in the page: the organisation switcher in the header, the CSRF token
   for the scripts' changes, and which controls this user may see. Elements marked
   data-requires="operate" (or "admin") start hidden and are shown only when GET /api/session
   says the role in the current organisation allows it: a viewer never sees them (and the server
   refuses their calls anyway). */
"use strict";

const ROLE_SCOPES = { viewer: ["read"], operator: ["read", "operate"], admin: ["read", "operate", "admin"] };

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/* fetch() for a change: JSON body, the session's CSRF token; an error answer throws its sentence. */
async function sendJSON(method, url, body) {
  const response = await fetch(url, {
    method, cache: "no-store",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    const err = new Error(message);
    err.status = response.status;
    throw err;
  }
  return response.status === 204 ? null : response.json();
}

/* The session document, fetched once per page (other scripts await it too). */
const dashfleetSession = getJSON("/api/session").catch(() => null);

function mayDo(session, scope) {
  return Boolean(session && (ROLE_SCOPES[session.role] || []).includes(scope));
}

document.addEventListener("DOMContentLoaded", async () => {
  const select = document.getElementById("org-switch");
  if (select) {
    select.addEventListener("change", async () => {
      try {
        await sendJSON("POST", "/api/session/org", { org: select.value });
        window.location.reload();
      } catch (err) { showError(err); }
    });
  }
  const session = await dashfleetSession;
  document.querySelectorAll("[data-requires]").forEach((node) => {
    node.hidden = !mayDo(session, node.dataset.requires);
  });
  document.dispatchEvent(new CustomEvent("dashfleet:session", { detail: session }));
});
