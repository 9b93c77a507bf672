"""The action service: the only way an action runs, with its checks, time limit and audit.

Every attempt goes through :class:`ActionService`, which applies, in order: the caller's
authorisation, a rate limit per authorised caller (``storage.incr``), the catalogue (unknown names
are refused), the allow-list (``[actions] allowed``), strict parameter validation (unknown or
mistyped parameters are refused, never ignored), the platform check, and a time limit
(``[actions] timeout_seconds``). Each attempt leaves exactly one audit row, whether it was
refused, ran, or crashed. Actions that break the contract are left out when the service is built.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from ..config import Settings
from ..echo import MAX_FIELDS, clip, clip_all
from ..models import DEFAULT_ORG, ActionResult, AuditEntry
from ..plugins import gather
from .contract import Action, ActionContext, ActionRefused, ActionTimeout, contract_problem, current_platform

log = logging.getLogger(__name__)

RATE_NAMESPACE = "action_rate"
_SECRET_KEY = re.compile(r"token|password|passwd|secret|api_?key|credential", re.IGNORECASE)


@dataclass
class CatalogueEntry:
    """One action as `dashfleet actions` and the API describe it."""

    name: str
    description: str
    platforms: list[str]
    changes_machine: bool
    plugin: str
    allowed: bool
    supported: bool
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class ActionService:
    """The only way an action runs: checks, time limit and audit around `Action.run`.

    `storage` holds the rate-limit counters and the audit log. `platform` defaults to this
    machine's; tests pass another one to exercise the platform check.
    """

    def __init__(self, settings: Settings, pm: Any, storage: Any, *, platform: str | None = None) -> None:
        self.settings = settings
        self.storage = storage
        self.platform = platform or current_platform()
        self.rejected: dict[str, str] = {}
        # Actions running in this process: one run of an action at a time, and an action that
        # overran its time limit must finish before it can be started again.
        self._running: set[str] = set()
        self._running_lock = threading.Lock()
        # isolate: a third-party plugin whose hook raises is left out, not fatal to the server.
        registry = gather(pm, "register_actions", "action", isolate=True, settings=settings)
        self.actions: dict[str, Action] = {}
        self.owner: dict[str, str] = {}
        for plugin, problem in getattr(registry, "failures", {}).items():
            self.rejected[f"<plugin {plugin}>"] = f"register_actions failed: {problem}"
        for name, action in registry.items():
            problem = contract_problem(name, action)
            if problem:
                # A broken third-party action must not take the server down; it is left out, loudly.
                log.warning("action %r from plugin %r left out: %s", name, registry.owner[name], problem)
                self.rejected[name] = f"plugin {registry.owner[name]!r}: {problem}"
                continue
            self.actions[name] = action
            self.owner[name] = registry.owner[name]

    # --- the catalogue -----------------------------------------------------------------------

    def is_allowed(self, name: str) -> bool:
        """`[actions] allowed` unset: every registered action; set: only those listed."""
        allowed = self.settings.actions.allowed
        return allowed is None or name in allowed

    def catalogue(self) -> list[CatalogueEntry]:
        return [
            CatalogueEntry(
                name=name,
                description=a.description,
                platforms=list(a.platforms),
                changes_machine=bool(a.changes_machine),
                plugin=self.owner[name],
                allowed=self.is_allowed(name),
                supported=self.platform in a.platforms,
                params=_params_schema(a.Params),
            )
            for name, a in sorted(self.actions.items())
        ]

    # --- one attempt -------------------------------------------------------------------------

    def run(
        self,
        name: Any,
        params: Any = None,
        *,
        actor: str,
        org: str = DEFAULT_ORG,
        authorize: Callable[[], None] | None = None,
    ) -> ActionResult:
        """Check, run and audit one attempt. Returns the action's result (which may say it failed)
        or raises :class:`ActionRefused`; whatever happens (refused, invalid, run, or an exception
        from anywhere in here) exactly one audit row is written.

        `authorize` runs first; it raises ActionRefused to refuse (the web host throttles refused
        credentials per client address itself). The rate limit then counts authorised calls only,
        so a stranger's wrong guesses never use up the real caller's budget.
        """
        shown_name = name if isinstance(name, str) else repr(name)[:64]
        shown_params = _redact(params) if isinstance(params, dict) else {}
        audited = False
        try:
            try:
                if authorize is not None:
                    authorize()
                self._check_rate(actor, org)
                action = self._lookup(name)
                valid = self._validate(action, params)
                if self.platform in action.platforms:
                    self._claim(action.name)
            except ActionRefused as refused:
                audited = True
                self._audit(org, actor, shown_name, shown_params, "refused",
                            {"status": refused.status, "error": refused.message})
                raise
            shown_params = _redact(valid.model_dump(mode="json"))
            if self.platform not in action.platforms:
                result = ActionResult(
                    action=name, ok=False, dry_run=bool(getattr(valid, "dry_run", False)),
                    summary=f"{name} is not supported on {self.platform} "
                            f"(it runs on {', '.join(action.platforms)})",
                    details={"platform": self.platform, "supported_platforms": list(action.platforms)},
                )
                audited = True
                self._audit(org, actor, name, shown_params, "unsupported", _audit_result(result))
                return result
            result, outcome = self._execute(action, valid, actor)
            audited = True
            self._audit(org, actor, name, shown_params, outcome, _audit_result(result))
            return result
        except BaseException as exc:
            if not audited:  # a crash before any row: still one row, saying what broke
                audited = True
                log.error("action attempt %r by %s crashed: %s: %s", shown_name, actor, type(exc).__name__, exc)
                self._audit(org, actor, shown_name, shown_params, "error",
                            {"error": f"the attempt failed on the server ({type(exc).__name__})"})
            raise

    def _claim(self, name: str) -> None:
        with self._running_lock:
            if name in self._running:
                raise ActionRefused(409, f"{name} is already running on this server; wait for it "
                                         f"to finish (see GET /api/audit) and try again")
            self._running.add(name)

    def _release(self, name: str) -> None:
        with self._running_lock:
            self._running.discard(name)

    def _check_rate(self, actor: str, org: str) -> None:
        limit = self.settings.actions.rate_limit_per_minute
        now = datetime.now(timezone.utc)
        window = now.replace(second=0, microsecond=0)
        count = self.storage.incr(RATE_NAMESPACE, f"{actor}|{window:%Y%m%d%H%M}", org=org,
                                  expires_at=window + timedelta(minutes=1))
        if count > limit:
            retry = 60 - now.second
            raise ActionRefused(
                429, f"rate limit: at most {limit} action calls a minute per caller; "
                     f"try again in {retry} s", retry_after=retry)

    def _lookup(self, name: Any) -> Action:
        available = sorted(self.actions)
        if not isinstance(name, str) or name not in self.actions:
            what = f"unknown action {clip(name)!r}" if isinstance(name, str) else "'action' must be a name (a string)"
            raise ActionRefused(400, f"{what}; available actions: {', '.join(available)}",
                                available=available)
        if not self.is_allowed(name):
            allowed = sorted(n for n in available if self.is_allowed(n))
            raise ActionRefused(
                403, f"action {name!r} is not in the allow-list; an administrator can add it to "
                     f"[actions] allowed in dashfleet.toml", allowed=allowed)
        return self.actions[name]

    def _validate(self, action: Action, params: Any) -> BaseModel:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ActionRefused(422, "'params' must be a JSON object of parameter names to values",
                                fields=["params"])
        known = _param_names(action.Params)
        unknown = clip_all(sorted(str(k) for k in params if k not in known))
        if unknown:
            raise ActionRefused(
                422, f"unknown parameter(s) for {action.name}: {', '.join(unknown)}; "
                     f"it takes: {', '.join(sorted(known)) or 'none'}", fields=unknown)
        try:
            return action.Params.model_validate(params)
        except ValidationError as exc:
            problems = []
            fields = []
            for err in exc.errors(include_url=False)[:MAX_FIELDS]:
                loc = clip(".".join(str(p) for p in err["loc"]) or "params")
                fields.append(loc)
                problems.append(f"{loc}: {clip(err['msg'], 200)}")
            raise ActionRefused(422, f"bad parameter(s) for {action.name}: {'; '.join(problems)}",
                                fields=fields) from None

    def _execute(self, action: Action, params: BaseModel, actor: str) -> tuple[ActionResult, str]:
        timeout = self.settings.actions.timeout_seconds
        context = ActionContext(action=action.name, plugin=self.owner[action.name],
                                settings=self.settings, actor=actor,
                                platform=self.platform, deadline=time.monotonic() + timeout)
        dry_run = bool(getattr(params, "dry_run", False))
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = action.run(params, context)
            except ActionTimeout as exc:
                box["timeout"] = exc
            except Exception as exc:  # the action's bug is reported, not raised into the host
                log.warning("action %r failed: %s", action.name, exc, exc_info=True)
                box["error"] = exc
            finally:
                self._release(action.name)

        started = time.monotonic()
        # A thread, so that an action that ignores its deadline still cannot hold the caller past
        # the limit. Commands it started are bounded by run_command's own timeout.
        worker = threading.Thread(target=target, name=f"action-{action.name}", daemon=True)
        worker.start()
        worker.join(timeout)
        elapsed = round(time.monotonic() - started, 3)
        if worker.is_alive() or "timeout" in box:
            return ActionResult(
                action=action.name, ok=False, dry_run=dry_run, duration_seconds=elapsed,
                summary=f"{action.name} did not finish within its time limit of {timeout:g} s "
                        f"([actions] timeout_seconds)",
                details={"timeout_seconds": timeout}), "timeout"
        if "error" in box:
            exc = box["error"]
            return ActionResult(
                action=action.name, ok=False, dry_run=dry_run, duration_seconds=elapsed,
                summary=f"{action.name} failed: {type(exc).__name__}: {exc}",
                details={"exception": type(exc).__name__}), "error"
        result = box.get("result")
        if not isinstance(result, ActionResult):
            return ActionResult(
                action=action.name, ok=False, dry_run=dry_run, duration_seconds=elapsed,
                summary=f"{action.name} returned {type(result).__name__}, not an ActionResult "
                        f"(a bug in plugin {self.owner.get(action.name)!r})"), "error"
        result = result.model_copy(update={"duration_seconds": elapsed, "action": action.name,
                                           "dry_run": result.dry_run or dry_run})
        return result, ("ok" if result.ok else "failed")

    def _audit(self, org: str, actor: str, action: str, params: dict[str, Any], outcome: str,
               details: dict[str, Any]) -> None:
        self.storage.add_audit(AuditEntry(org=org, actor=actor, action=action[:128], params=params,
                                          outcome=outcome, details=details))


def cli_actor() -> str:
    """Who runs an action from the command line: `cli:<os user>`."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (some containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}"


def _param_names(model: type[BaseModel]) -> set[str]:
    names = set()
    for fname, info in model.model_fields.items():
        names.add(fname)
        if isinstance(info.alias, str):
            names.add(info.alias)
    return names


def _params_schema(model: type[BaseModel]) -> dict[str, Any]:
    """name -> {type, default, description} for the catalogue; simpler than full JSON schema."""
    schema = model.model_json_schema()
    out: dict[str, Any] = {}
    for fname, prop in schema.get("properties", {}).items():
        entry = {k: prop[k] for k in ("type", "default", "description", "minimum", "maximum",
                                      "enum") if k in prop}
        out[fname] = entry
    return out


def _redact(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as the audit log keeps them: secrets masked, long values cut."""
    out: dict[str, Any] = {}
    for key, value in list(params.items())[:32]:
        key = str(key)[:64]
        if _SECRET_KEY.search(key):
            out[key] = "***"
            continue
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            text = json.dumps(repr(value))
        out[key] = value if len(text) <= 256 else text[:256] + "..."
    return out


def _audit_result(result: ActionResult) -> dict[str, Any]:
    return {"ok": result.ok, "summary": result.summary[:1000], "dry_run": result.dry_run,
            "duration_seconds": result.duration_seconds}
