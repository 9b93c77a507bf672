"""Remediation actions: the contract plugins implement, and the service that runs them safely.

DashFleet never runs arbitrary commands. An action is a named, typed entry in a closed catalogue,
registered by a plugin through ``register_actions``. Every attempt goes through
:class:`ActionService`, which applies, in order: the caller's authorisation, a rate limit per
authorised caller (``storage.incr``), the catalogue (unknown names are refused), the allow-list (``[actions]
allowed``), strict parameter validation (unknown or mistyped parameters are refused, never
ignored), the platform check, and a time limit (``[actions] timeout_seconds``). Each attempt leaves
exactly one audit row, whether it was refused, ran, or crashed.

The helpers at the end are what actions use to touch the machine: :func:`run_command` (a fixed
argument list, no shell, a timeout, captured output, a clean environment) and the ``*_owned``
path helpers, which walk and delete inside the folders an action owns without ever following a
symbolic link out of them.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import Settings
from ..echo import MAX_FIELDS, clip, clip_all
from ..models import DEFAULT_ORG, ActionResult, AuditEntry

log = logging.getLogger(__name__)

PLATFORMS = ("windows", "linux", "macos")
ACTION_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
RATE_NAMESPACE = "action_rate"
MAX_OUTPUT_CHARS = 64 * 1024
_SECRET_KEY = re.compile(r"token|password|passwd|secret|api_?key|credential", re.IGNORECASE)


def current_platform() -> str:
    """`windows`, `linux`, `macos`, or `sys.platform` for anything else (never supported)."""
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    return sys.platform


# --- the contract --------------------------------------------------------------------------------


class ActionParams(BaseModel):
    """Base for an action's parameters: strict types, unknown names refused, `dry_run` built in.

    Strict mode means `"7"` is not an integer and `"yes"` is not a boolean: a caller that sends the
    wrong type is told so instead of having it guessed.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    dry_run: bool = False


@runtime_checkable
class Action(Protocol):
    """What `register_actions` accepts. Subclassing :class:`BaseAction` is the easy way."""

    name: str
    description: str
    platforms: Sequence[str]
    changes_machine: bool
    Params: type[BaseModel]

    def run(self, params: Any, context: "ActionContext") -> ActionResult: ...


class BaseAction:
    """Convenience base: set the class attributes and write `run`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    platforms: ClassVar[tuple[str, ...]] = PLATFORMS
    changes_machine: ClassVar[bool] = True
    Params: ClassVar[type[BaseModel]] = ActionParams

    def run(self, params: Any, context: "ActionContext") -> ActionResult:  # pragma: no cover
        raise NotImplementedError

    def result(self, ok: bool, summary: str, params: Any = None, **details: Any) -> ActionResult:
        """Build this action's result; `dry_run` is taken from `params`."""
        return ActionResult(action=self.name, ok=ok, summary=summary, details=details,
                            dry_run=bool(getattr(params, "dry_run", False)))


class ActionTimeout(Exception):
    """The action used up its time limit; raised by `ActionContext.check_time`."""


@dataclass
class ActionContext:
    """What an action gets besides its parameters: settings, who asked, the clock, and helpers."""

    action: str
    plugin: str
    settings: Settings
    actor: str
    platform: str
    deadline: float  # time.monotonic() value
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("dashfleet.actions"))

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def check_time(self) -> None:
        """Raise ActionTimeout once the time limit is spent; long loops call this."""
        if time.monotonic() >= self.deadline:
            raise ActionTimeout(f"{self.action} ran out of time")

    def options(self, model: type[BaseModel]) -> Any:
        """The settings of the plugin that registered this action, `[plugins.<plugin name>]`,
        validated against `model` (for the built-ins the plugin and the action share a name)."""
        return self.settings.plugin_settings(self.plugin, model)

    def run_command(self, argv: Sequence[str], *, timeout: float | None = None,
                    max_output: int = MAX_OUTPUT_CHARS) -> "CommandResult":
        """`run_command` bounded by what is left of the action's time limit."""
        left = self.remaining()
        return run_command(argv, timeout=left if timeout is None else min(timeout, left),
                           max_output=max_output)


# --- the service ---------------------------------------------------------------------------------


class ActionRefused(Exception):
    """An attempt refused before the action ran; `status` is the HTTP status the API answers."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


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
        from ..plugins import gather

        self.settings = settings
        self.storage = storage
        self.platform = platform or current_platform()
        self.rejected: dict[str, str] = {}
        # Actions running in this process: one run of an action at a time, and an action that
        # overran its time limit must finish before it can be started again.
        self._running: set[str] = set()
        self._running_lock = threading.Lock()
        # isolate: a third-party plugin whose hook raises is left out, not fatal to the server.
        registry = gather(pm, "register_actions", "action", isolate=True)
        self.actions: dict[str, Any] = {}
        self.owner: dict[str, str] = {}
        for plugin, problem in getattr(registry, "failures", {}).items():
            self.rejected[f"<plugin {plugin}>"] = f"register_actions failed: {problem}"
        for name, action in registry.items():
            problem = _contract_problem(name, action)
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

    def _lookup(self, name: Any) -> Any:
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

    def _validate(self, action: Any, params: Any) -> BaseModel:
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

    def _execute(self, action: Any, params: BaseModel, actor: str) -> tuple[ActionResult, str]:
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


def _contract_problem(name: str, action: Any) -> str | None:
    if not ACTION_NAME_PATTERN.match(name):
        return "its name must be lower-case letters, digits and _ (at most 64), starting with a letter"
    if not isinstance(getattr(action, "description", None), str) or not action.description.strip():
        return "it has no description"
    platforms = getattr(action, "platforms", None)
    if not platforms or isinstance(platforms, str) or not set(platforms) <= set(PLATFORMS):
        return f"'platforms' must be a non-empty list of {', '.join(PLATFORMS)}"
    params = getattr(action, "Params", None)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        return "'Params' must be a pydantic model class"
    if not isinstance(getattr(action, "changes_machine", None), bool):
        return "'changes_machine' must be True or False"
    if not callable(getattr(action, "run", None)):
        return "it has no run(params, context) method"
    return None


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


# --- running commands ----------------------------------------------------------------------------


SAFE_POSIX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _safe_path() -> str:
    if os.name == "nt":
        root = os.environ.get("SystemRoot", r"C:\Windows")
        return os.pathsep.join([rf"{root}\System32", root, rf"{root}\System32\WindowsPowerShell\v1.0"])
    return SAFE_POSIX_PATH


def _clean_env() -> dict[str, str]:
    """The child's environment: system paths and a C locale, none of our secrets."""
    env = {"PATH": _safe_path(), "LANG": "C", "LC_ALL": "C"}
    for key in ("SystemRoot", "SYSTEMROOT", "WINDIR", "TEMP", "TMP", "HOME", "USER", "LOGNAME"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def find_program(name: str) -> str | None:
    """The absolute path of a system program, looked up in the system folders only."""
    return shutil.which(name, path=_safe_path())


@dataclass
class CommandResult:
    """What a command did; `error` says why it did not run or did not finish."""

    argv: list[str]
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0

    def to_dict(self) -> dict[str, Any]:
        return {"argv": self.argv, "returncode": self.returncode, "stdout": self.stdout,
                "stderr": self.stderr, "error": self.error}


def run_command(argv: Sequence[str], *, timeout: float, max_output: int = MAX_OUTPUT_CHARS) -> CommandResult:
    """Run a fixed argument list: no shell, a clean environment, no stdin, output captured and cut
    to `max_output` characters (64 Ki by default), killed after `timeout` seconds. The program is
    looked up in the system folders."""
    if isinstance(argv, (str, bytes)) or not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError("run_command takes a non-empty list of strings (no shell command lines)")
    argv = list(argv)
    program = argv[0] if os.path.isabs(argv[0]) else find_program(argv[0])
    if program is None:
        return CommandResult(argv, None, error=f"{argv[0]} not found in {_safe_path()}")
    if timeout <= 0:
        return CommandResult(argv, None, error="no time left to run it")
    try:
        done = subprocess.run([program, *argv[1:]], shell=False, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, env=_clean_env(), check=False)
    except subprocess.TimeoutExpired as exc:
        return CommandResult(argv, None, _text(exc.stdout, max_output), _text(exc.stderr, max_output),
                             error=f"killed after {timeout:g} s")
    except OSError as exc:
        return CommandResult(argv, None, error=f"cannot run {argv[0]}: {exc.strerror or exc}")
    return CommandResult(argv, done.returncode, _text(done.stdout, max_output),
                         _text(done.stderr, max_output))


def _text(data: bytes | str | None, limit: int = MAX_OUTPUT_CHARS) -> str:
    if data is None:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text if len(text) <= limit else text[:limit] + "\n[output cut]"


# --- staying inside the folders an action owns ---------------------------------------------------
#
# Where the OS allows it (Linux, macOS), the walk holds an open descriptor on each folder, opens
# sub-folders relative to it with O_NOFOLLOW, and deletes by name relative to it: once a folder is
# open, swapping it (or any folder above it) for a link cannot redirect a delete, which matters
# because anyone may write in /tmp while a root-run cleanup walks it. Elsewhere (Windows) the
# path-based fallback re-checks, right before each change, that no part of the path is a link.


class PathEscape(Exception):
    """A path is not where it claims to be (outside the owned folder, or reached through a link)."""


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
FD_WALK = bool(
    _NOFOLLOW and _DIRECTORY
    and os.scandir in os.supports_fd
    and {os.open, os.unlink, os.rmdir, os.stat} <= os.supports_dir_fd
)


def owned_folder(path: str | os.PathLike[str]) -> Path | None:
    """An owned folder as an absolute, link-free path, or None if it does not exist.

    Links are resolved once, here (`/tmp` may itself be a link, as on macOS); below it nothing is
    followed.
    """
    expanded = os.path.expandvars(os.path.expanduser(os.fspath(path)))
    if not os.path.isabs(expanded):
        return None
    real = os.path.realpath(expanded)
    try:
        st = os.lstat(real)
    except OSError:
        return None
    return Path(real) if stat.S_ISDIR(st.st_mode) else None


@dataclass
class Entry:
    """One thing found by `walk_owned`; `kind` is file, dir, link or other (socket, fifo...).

    With descriptor-based walking, `dir_fd` is the open folder that holds it and `name` its name
    there; both are valid only until the walk moves on, so act on an entry inside the loop.
    """

    path: str
    kind: str
    stat: os.stat_result
    name: str = ""
    dir_fd: int | None = None


def walk_owned(root: Path, check_time: Callable[[], None] | None = None) -> Iterator[Entry]:
    """Everything below `root`, depth first, children before their folder.

    Never follows a symbolic link (or Windows junction): a link is reported as `link` and not
    entered. Folders that cannot be read, or that changed into something else during the walk,
    are skipped.
    """
    if FD_WALK:
        try:
            fd = os.open(os.fspath(root), os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
        except OSError:
            return
        try:
            yield from _walk_fd(fd, os.fspath(root), check_time)
        finally:
            os.close(fd)
    else:
        yield from _walk_paths(os.fspath(root), check_time)


def _classify(entry: os.DirEntry, st: os.stat_result) -> str:
    # Windows: junctions and other reparse points are links too (Python 3.11's S_ISLNK misses them).
    reparse = getattr(st, "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_REPARSE_POINT
    if stat.S_ISLNK(st.st_mode) or reparse or _is_junction(entry):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


def _walk_fd(fd: int, folder: str, check_time: Callable[[], None] | None) -> Iterator[Entry]:
    try:
        with os.scandir(fd) as it:
            entries = list(it)
    except OSError:
        return
    for e in entries:
        if check_time is not None:
            check_time()
        try:
            st = os.stat(e.name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        kind = _classify(e, st)
        path = os.path.join(folder, e.name)
        if kind == "dir":
            try:
                child = os.open(e.name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError:  # gone, unreadable, or swapped for a link since the stat
                continue
            try:
                now = os.fstat(child)
                if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                    yield from _walk_fd(child, path, check_time)
                else:
                    continue
            finally:
                os.close(child)
        yield Entry(path, kind, st, e.name, fd)


def _walk_paths(folder: str, check_time: Callable[[], None] | None) -> Iterator[Entry]:
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return
    for e in entries:
        if check_time is not None:
            check_time()
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        kind = _classify(e, st)
        if kind == "dir":
            yield from _walk_paths(e.path, check_time)
        yield Entry(e.path, kind, st, e.name, None)


def _is_junction(entry: os.DirEntry) -> bool:
    is_junction = getattr(entry, "is_junction", None)  # Python 3.12+
    return bool(is_junction and is_junction())


def confirm_inside(root: Path, path: str) -> None:
    """Raise PathEscape unless `path` is strictly below `root` and no folder between them is a
    link now (`root` itself was resolved by `owned_folder`)."""
    root_s = os.fspath(root)
    norm = os.path.normpath(path)
    if os.path.commonpath([root_s, norm]) != root_s or norm == root_s:
        raise PathEscape(f"{path} is not inside {root_s}")
    folder = root_s
    for part in Path(os.path.relpath(os.path.dirname(norm), root_s)).parts:
        if part == ".":
            continue
        folder = os.path.join(folder, part)
        try:
            st = os.lstat(folder)
        except OSError:
            raise PathEscape(f"{path}: {folder} is gone") from None
        if not stat.S_ISDIR(st.st_mode) or getattr(st, "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_REPARSE_POINT:
            raise PathEscape(f"{path} is reached through a link ({folder})")


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def remove_owned_file(root: Path, target: "Entry | str") -> int:
    """Delete one regular file inside `root`; returns its size. Links and others are refused.

    Pass the `Entry` from `walk_owned` (deleted by name in its open folder where the OS allows)
    or a path (checked with `confirm_inside`).
    """
    if isinstance(target, Entry) and target.dir_fd is not None:
        st = os.stat(target.name, dir_fd=target.dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or not _same(st, target.stat):
            raise PathEscape(f"{target.path} is no longer the regular file the walk found")
        os.unlink(target.name, dir_fd=target.dir_fd)  # unlink never follows a link
        return st.st_size
    path = target.path if isinstance(target, Entry) else target
    confirm_inside(root, path)
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise PathEscape(f"{path} is not a regular file")
    os.unlink(path)
    return st.st_size


def remove_owned_dir(root: Path, target: "Entry | str") -> None:
    """Remove one empty folder inside `root` (rmdir: never recursive, never through a link)."""
    if isinstance(target, Entry) and target.dir_fd is not None:
        os.rmdir(target.name, dir_fd=target.dir_fd)
        return
    path = target.path if isinstance(target, Entry) else target
    confirm_inside(root, path)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise PathEscape(f"{path} is not a folder")
    os.rmdir(path)


def open_owned_file(root: Path, target: "Entry | str"):
    """Open a regular file inside `root` for reading, refusing links (O_NOFOLLOW where the OS has it)."""
    flags = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_BINARY", 0)
    if isinstance(target, Entry) and target.dir_fd is not None:
        fd = os.open(target.name, flags, dir_fd=target.dir_fd)
        path = target.path
    else:
        path = target.path if isinstance(target, Entry) else target
        confirm_inside(root, path)
        st = os.lstat(path)  # where O_NOFOLLOW is missing (Windows), refuse a link by looking first
        if not stat.S_ISREG(st.st_mode) or getattr(st, "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_REPARSE_POINT:
            raise PathEscape(f"{path} is not a regular file")
        fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathEscape(f"{path} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
