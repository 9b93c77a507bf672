"""The action contract: what a plugin registers through ``register_actions``, and what it gets.

An action is a named, typed entry in a closed catalogue. Its parameters are an
:class:`ActionParams` model (strict types, unknown names refused, ``dry_run`` built in), and
:func:`contract_problem` is the check every registered action passes before it can run, so a
broken or loosely typed third-party action is left out at load instead of failing (or guessing)
on a machine.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..config import Settings
from ..models import ActionResult
from .commands import MAX_OUTPUT_CHARS, CommandResult, run_command

PLATFORMS = ("windows", "linux", "macos")
ACTION_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def current_platform() -> str:
    """`windows`, `linux`, `macos`, or `sys.platform` for anything else (never supported)."""
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    return sys.platform


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
    Params: type[ActionParams]

    def run(self, params: Any, context: "ActionContext") -> ActionResult: ...


class BaseAction:
    """Convenience base: set the class attributes and write `run`.

    `options` are the plugin's settings, which its `register_actions(register, settings)` read
    (``Action(settings.plugin_settings("<plugin name>", Model))``); `run` finds them in
    `self.options`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    platforms: ClassVar[tuple[str, ...]] = PLATFORMS
    changes_machine: ClassVar[bool] = True
    Params: ClassVar[type[ActionParams]] = ActionParams

    def __init__(self, options: Any = None) -> None:
        self.options = options

    def run(self, params: Any, context: "ActionContext") -> ActionResult:  # pragma: no cover
        raise NotImplementedError

    def result(self, ok: bool, summary: str, params: Any = None, **details: Any) -> ActionResult:
        """Build this action's result; `dry_run` is taken from `params`."""
        return ActionResult(action=self.name, ok=ok, summary=summary, details=details,
                            dry_run=bool(getattr(params, "dry_run", False)))


class ActionTimeout(Exception):
    """The action used up its time limit; raised by `ActionContext.check_time`."""


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
        validated against `model`, on every run.

        Deprecated, kept for third-party actions written before settings reached
        `register_actions`: read them there instead, `settings.plugin_settings("<name>", Model)`,
        and give them to the action, so a bad table stops the start rather than failing a run."""
        self.log.debug("action %r reads its settings through context.options(), the former way: "
                       "read them in register_actions(register, settings) instead", self.action)
        return self.settings.plugin_settings(self.plugin, model)

    def run_command(self, argv: Sequence[str], *, timeout: float | None = None,
                    max_output: int = MAX_OUTPUT_CHARS) -> CommandResult:
        """`run_command` bounded by what is left of the action's time limit."""
        left = self.remaining()
        return run_command(argv, timeout=left if timeout is None else min(timeout, left),
                           max_output=max_output)


def contract_problem(name: str, action: Any) -> str | None:
    """Why `action` (registered as `name`) cannot join the catalogue, or None if it can."""
    if not ACTION_NAME_PATTERN.match(name):
        return "its name must be lower-case letters, digits and _ (at most 64), starting with a letter"
    if not isinstance(getattr(action, "description", None), str) or not action.description.strip():
        return "it has no description"
    platforms = getattr(action, "platforms", None)
    if not platforms or isinstance(platforms, str) or not set(platforms) <= set(PLATFORMS):
        return f"'platforms' must be a non-empty list of {', '.join(PLATFORMS)}"
    problem = _params_problem(getattr(action, "Params", None))
    if problem:
        return problem
    if not isinstance(getattr(action, "changes_machine", None), bool):
        return "'changes_machine' must be True or False"
    if not callable(getattr(action, "run", None)):
        return "it has no run(params, context) method"
    return None


def _params_problem(params: Any) -> str | None:
    """A plain pydantic model would coerce "5" to 5 and lose dry_run on a machine-changing action."""
    why = "strict types, unknown parameters refused, dry_run built in"
    if not isinstance(params, type):
        return f"'Params' must be a class deriving from dashfleet_core.actions.ActionParams ({why})"
    if not issubclass(params, ActionParams):
        return (f"'Params' ({params.__name__}) must derive from dashfleet_core.actions.ActionParams "
                f"({why}), not from {params.__mro__[1].__name__}: write class "
                f"{params.__name__}(ActionParams)")
    config = params.model_config
    if config.get("strict") is not True or config.get("extra") != "forbid":
        return (f"'Params' ({params.__name__}) must keep ActionParams' strict=True and "
                f"extra='forbid' (a parameter of the wrong type or with an unknown name is refused, "
                f"never guessed): remove them from its model_config")
    return None
