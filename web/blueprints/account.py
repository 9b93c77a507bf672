"""The login pages: `/login` (password, then the second factor when the user has one), the
second-factor enrolment a user must do first when `[server] require_2fa` applies to them,
`/logout`, and `/setup/<token>` (the first server admin).

Every form posts normally (no JavaScript needed) and carries a CSRF token: before there is a
session, the signed double submit of `web.login_csrf`; `/logout` the session's own token. A login
that passed the password but not yet the second factor lives server-side as a session marked
`mfa_pending` (cookie `dashfleet_login`, never accepted as a login by `web.access`) for at most
PENDING_MINUTES. A finished login always gets a NEW session id (no fixation). Failed attempts are
throttled per username and per client address (`web.login_throttle`), and every attempt is audited.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import quote

from flask import Blueprint, make_response, redirect, render_template, request

from dashfleet_core.accounts.passwords import dummy_verify, password_problem, verify_password
from dashfleet_core.accounts.totp import provisioning_uri, qr_svg
from dashfleet_core.accounts.users import normalise_username
from dashfleet_core.models import DEFAULT_ORG, utcnow

from .. import login_csrf, login_throttle
from ..access import OPEN, SESSION_COOKIE, check_csrf, principal, requires
from ..account_audit import ANONYMOUS, first_org, record
from ..app import get_fleet
from ..auth import ApiError
from ..client_address import client_address
from ..sessions_web import (PENDING_COOKIE, account_errors, clear_cookie, needs_second_factor, safe_next,
                            header_document, secure_cookies, set_session_cookie)

bp = Blueprint("account", __name__)

PENDING_MINUTES = 10
MAX_USERNAME = 200
MAX_PASSWORD = 1024


def _accounts():
    return get_fleet().accounts


def _page(mode: str, status: int = 200, *, error: str = "", error_key: str = "", **values):
    """Render the login template in one of its modes, with a pre-session CSRF token."""
    token, fresh = login_csrf.token_for_form(get_fleet().storage)
    body = render_template("login.html", page="login", mode=mode, csrf_token=token, error=error,
                           error_key=error_key, **values)
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return login_csrf.set_cookie(response, fresh, secure_cookies())


def _locked(exc: login_throttle.LockedOut, nxt: str):
    minutes = max(1, (exc.retry_after + 59) // 60)
    response = _page("password", 429, next=nxt, error_key="login.locked", minutes=minutes,
                     error=f"Too many failed logins for this {exc.what}: try again in {minutes} min.")
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _finish(user, nxt: str, **audit_params):
    """A new session for the user (new id), the cookie, and the redirect to `nxt`."""
    accounts = _accounts()
    org = first_org(user)
    sid, _ = accounts.sessions.create(user.username, user.epoch, org)
    try:
        old = principal()
    except ApiError:  # a wrong bearer credential beside the form: nothing to end
        old = None
    if old is not None and old.session_id:
        accounts.sessions.delete(old.session_id)
    record(org, f"user:{user.username}", "login", "ok", {"username": user.username, **audit_params})
    response = redirect(nxt, code=303)
    set_session_cookie(response, sid)
    clear_cookie(response, PENDING_COOKIE)
    return response


def _pending():
    """(session, user) of a half-done login of this browser, or (None, None)."""
    accounts = _accounts()
    session = accounts.sessions.get(request.cookies.get(PENDING_COOKIE, ""))
    if session is None or not session.mfa_pending:
        return None, None
    if utcnow() - session.created_at > timedelta(minutes=PENDING_MINUTES):
        accounts.sessions.delete(session.key)
        return None, None
    user = accounts.users.get(session.username)
    if user is None or user.epoch != session.epoch:
        return None, None
    return session, user


def _throttled(username: str, nxt: str):
    """Take the attempt's throttle slots: (attempt, None) or (None, the 429 page)."""
    try:
        return login_throttle.begin(get_fleet().storage, username, client_address()), None
    except login_throttle.LockedOut as exc:
        user = _accounts().users.get(username)
        record(first_org(user), ANONYMOUS, "login", "locked", {"username": username[:64]},
               locked=exc.what, retry_after=exc.retry_after)
        return None, _locked(exc, nxt)


# --- password ------------------------------------------------------------------------------------

@bp.get("/login")
@requires(OPEN)
def login_form():
    nxt = safe_next(request.args.get("next"))
    return _page("password", next=nxt, no_users=not _accounts().users.any())


@bp.post("/login")
@requires(OPEN)
def login_submit():
    storage = get_fleet().storage
    login_csrf.check(storage)
    nxt = safe_next(request.form.get("next"))
    username = request.form.get("username", "").strip()[:MAX_USERNAME]
    password = request.form.get("password", "")
    attempt, refused = _throttled(username, nxt)
    if refused is not None:
        return refused
    accounts = _accounts()
    user = accounts.users.get(username)
    if user is None or len(password) > MAX_PASSWORD:
        dummy_verify(password[:MAX_PASSWORD])  # the same cost as a real check: no oracle on usernames
        ok = False
    else:
        ok = verify_password(password, user.password_hash)
    if not ok:
        record(first_org(user), ANONYMOUS, "login", "failed", {"username": username[:64]},
               reason="wrong username or password")
        return _page("password", 401, next=nxt, username=username, error_key="login.wrong",
                     error="Wrong username or password.")
    attempt.succeeded()
    if not user.server_admin and not user.roles:
        record(first_org(user), ANONYMOUS, "login", "refused", {"username": user.username},
               reason="the user belongs to no organisation")
        return _page("password", 403, next=nxt, error_key="login.no_org",
                     error="This account belongs to no organisation: ask an admin to add it to one.")
    second = accounts.second_factor
    if second.enabled(user) or needs_second_factor(user):
        sid, _ = accounts.sessions.create(user.username, user.epoch, first_org(user), mfa_pending=True)
        step = "/login/code" if second.enabled(user) else "/login/enrol"
        record(first_org(user), ANONYMOUS, "login", "password_ok", {"username": user.username},
               next_step="second factor" if second.enabled(user) else "enrol a second factor")
        response = redirect(f"{step}?next={_quote(nxt)}", code=303)
        return set_session_cookie(response, sid, PENDING_COOKIE)
    return _finish(user, nxt)


def _quote(path: str) -> str:
    return quote(path, safe="/")


# --- second factor -------------------------------------------------------------------------------

@bp.get("/login/code")
@requires(OPEN)
def code_form():
    nxt = safe_next(request.args.get("next"))
    session, user = _pending()
    if user is None or not _accounts().second_factor.enabled(user):
        return redirect(f"/login?next={_quote(nxt)}", code=303)
    return _page("code", next=nxt)


@bp.post("/login/code")
@requires(OPEN)
def code_submit():
    accounts = _accounts()
    login_csrf.check(get_fleet().storage)
    nxt = safe_next(request.form.get("next"))
    session, user = _pending()
    if user is None or not accounts.second_factor.enabled(user):
        return redirect(f"/login?next={_quote(nxt)}", code=303)
    attempt, refused = _throttled(user.username, nxt)
    if refused is not None:
        return refused
    kind = accounts.second_factor.verify(user.username, request.form.get("code", "")[:100])
    if kind is None:
        record(first_org(user), ANONYMOUS, "login", "failed", {"username": user.username},
               reason="wrong second-factor code")
        return _page("code", 401, next=nxt, error_key="login.wrong_code",
                     error="That code is not right: type the 6 digits the app shows now, or a recovery code.")
    attempt.succeeded()
    accounts.sessions.delete(session.key)
    return _finish(accounts.users.require(user.username), nxt, second_factor=kind)


@bp.get("/login/enrol")
@requires(OPEN)
def enrol_form():
    nxt = safe_next(request.args.get("next"))
    session, user = _pending()
    if user is None:
        return redirect(f"/login?next={_quote(nxt)}", code=303)
    if _accounts().second_factor.enabled(user):
        return redirect(f"/login/code?next={_quote(nxt)}", code=303)
    return _enrol_page(user, nxt)


def _enrol_page(user, nxt: str, status: int = 200, **extra):
    second = _accounts().second_factor
    pending = (user.totp or {}).get("pending")
    if pending:
        uri = provisioning_uri(pending, user.username)
        secret = pending
    else:
        with account_errors():
            begun = second.begin(user.username)
        secret, uri = begun["secret"], begun["otpauth_uri"]
    qr = "data:image/svg+xml;base64," + base64.b64encode(qr_svg(uri).encode()).decode()
    return _page("enrol", status, next=nxt, secret=secret, qr=qr, **extra)


@bp.post("/login/enrol")
@requires(OPEN)
def enrol_submit():
    accounts = _accounts()
    login_csrf.check(get_fleet().storage)
    nxt = safe_next(request.form.get("next"))
    session, user = _pending()
    if user is None:
        return redirect(f"/login?next={_quote(nxt)}", code=303)
    attempt, refused = _throttled(user.username, nxt)
    if refused is not None:
        return refused
    try:
        with account_errors():
            codes = accounts.second_factor.confirm(user.username, request.form.get("code", "")[:100])
    except ApiError as exc:
        record(first_org(user), ANONYMOUS, "totp.enrol", "failed", {"username": user.username}, error=exc.message)
        return _enrol_page(user, nxt, 422 if exc.status == 422 else exc.status, error_key="login.wrong_code",
                           error=exc.message)
    attempt.succeeded()
    record(first_org(user), f"user:{user.username}", "totp.enrol", "ok", {"username": user.username})
    accounts.sessions.delete(session.key)
    finished = _finish(accounts.users.require(user.username), nxt, second_factor="enrolled")
    response = _page("codes", next=nxt, codes=codes)
    for cookie in finished.headers.getlist("Set-Cookie"):
        response.headers.add("Set-Cookie", cookie)
    return response


# --- logout --------------------------------------------------------------------------------------

@bp.post("/logout")
@requires(OPEN)
def logout():
    who = principal()
    response = redirect("/login", code=303)
    if who is not None and who.session_id:
        check_csrf(who)
        _accounts().sessions.delete(who.session_id)
        user = _accounts().users.get(who.user or "")
        record(first_org(user) if user else who.org, who.actor, "logout", "ok", {"username": who.user})
    clear_cookie(response, SESSION_COOKIE)
    return response


# --- first server admin --------------------------------------------------------------------------

@bp.get("/setup/<token>")
@requires(OPEN)
def setup_form(token: str):
    if not _accounts().setup_links.valid(token):
        return _page("setup_gone", 410)
    return _page("setup", token=token)


@bp.post("/setup/<token>")
@requires(OPEN)
def setup_submit(token: str):
    accounts = _accounts()
    login_csrf.check(get_fleet().storage)
    links = accounts.setup_links
    if not links.valid(token):
        record(DEFAULT_ORG, ANONYMOUS, "user.setup", "refused", reason="used, expired or unknown setup link")
        return _page("setup_gone", 410)
    username = request.form.get("username", "").strip()[:MAX_USERNAME]
    password = request.form.get("password", "")
    if password != request.form.get("password2", password):
        return _page("setup", 422, token=token, username=username, error_key="setup.mismatch",
                     error="The two passwords differ: type the same one twice.")
    try:
        with account_errors():
            name = normalise_username(username)
    except ApiError as exc:
        return _page("setup", 422, token=token, username=username, error=exc.message)
    problem = password_problem(password, name)
    if problem:  # checked before the link is used up, so a weak password does not waste it
        return _page("setup", 422, token=token, username=username, error=problem)
    if not links.claim(token):
        return _page("setup_gone", 410)
    with account_errors():
        user = accounts.users.add(name, password, org=DEFAULT_ORG, role="admin", server_admin=True)
    record(DEFAULT_ORG, f"user:{user.username}", "user.setup", "ok",
           {"username": user.username, "role": "admin", "server_admin": True})
    if needs_second_factor(user):
        sid, _ = accounts.sessions.create(user.username, user.epoch, DEFAULT_ORG, mfa_pending=True)
        return set_session_cookie(redirect("/login/enrol?next=/fleet", code=303), sid, PENDING_COOKIE)
    return _finish(user, "/fleet", via="setup link")


@bp.app_context_processor
def _account_in_pages() -> dict:
    """`account` for the page header: the logged-in user, their organisations (the switcher), and
    the session's CSRF token (the logout form, and `<meta name="csrf-token">` for the scripts)."""
    try:
        who = principal()
    except ApiError:
        who = None
    if who is None or not who.user:
        return {"account": None if who is None else {"user": None, "csrf_token": None}}
    return {"account": header_document(who)}
