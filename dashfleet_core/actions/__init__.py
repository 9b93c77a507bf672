"""Remediation actions: the contract plugins implement, the service that runs them safely, and
the helpers actions use to touch the machine.

DashFleet never runs arbitrary commands. An action is a named, typed entry in a closed catalogue,
registered by a plugin through ``register_actions`` (:mod:`.contract`); every attempt goes through
:class:`ActionService` (:mod:`.service`: checks, time limit, one audit row each); actions run
programs with :func:`run_command` (:mod:`.commands`: a fixed argument list, no shell) and touch
files only inside the folders they own with the ``*_owned`` helpers (:mod:`.files`: never
following a link out). Plugin authors import everything from here: ``from dashfleet_core.actions
import ActionParams, BaseAction, walk_owned``.
"""

from .commands import MAX_OUTPUT_CHARS, SAFE_POSIX_PATH, CommandResult, find_program, run_command
from .contract import (
    ACTION_NAME_PATTERN,
    PLATFORMS,
    Action,
    ActionContext,
    ActionParams,
    ActionRefused,
    ActionTimeout,
    BaseAction,
    current_platform,
)
from .files import (
    Entry,
    PathEscape,
    StaleEntry,
    confirm_inside,
    open_owned_file,
    owned_folder,
    remove_owned_dir,
    remove_owned_file,
    walk_owned,
)
from .service import RATE_NAMESPACE, ActionService, CatalogueEntry, cli_actor

__all__ = [
    "ACTION_NAME_PATTERN",
    "MAX_OUTPUT_CHARS",
    "PLATFORMS",
    "RATE_NAMESPACE",
    "SAFE_POSIX_PATH",
    "Action",
    "ActionContext",
    "ActionParams",
    "ActionRefused",
    "ActionService",
    "ActionTimeout",
    "BaseAction",
    "CatalogueEntry",
    "CommandResult",
    "Entry",
    "PathEscape",
    "StaleEntry",
    "cli_actor",
    "confirm_inside",
    "current_platform",
    "find_program",
    "open_owned_file",
    "owned_folder",
    "remove_owned_dir",
    "remove_owned_file",
    "run_command",
    "walk_owned",
]
