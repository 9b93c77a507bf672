"""cleanup_temp: delete files older than N days from the user's and the system's temp folders.

Only regular files go; links are neither followed nor deleted, so nothing outside the temp folders
can be reached. The folders can be replaced with `[plugins.cleanup_temp] folders = [...]`.
"""

from __future__ import annotations

import os
import sys
import tempfile

from pydantic import BaseModel, ConfigDict, Field

from dashfleet_core import hookimpl
from dashfleet_core.actions import ActionContext, ActionParams, BaseAction
from dashfleet_core.models import ActionResult

from ._common import human_bytes, sweep


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folders: list[str] | None = None


class Params(ActionParams):
    older_than_days: int = Field(default=7, ge=0, le=3650,
                                 description="Only files not modified for this many days")


def default_folders() -> list[str]:
    """The user's temp folder and the system's, for this platform."""
    folders = [tempfile.gettempdir()]
    if sys.platform.startswith("win"):
        folders.append(os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "Temp"))
    else:
        folders += ["/tmp", "/var/tmp"]
    return folders


class CleanupTemp(BaseAction):
    name = "cleanup_temp"
    description = "Delete files older than older_than_days from the user and system temp folders"
    platforms = ("windows", "linux", "macos")
    changes_machine = True
    Params = Params
    options: Options  # [plugins.cleanup_temp], read in register_actions

    def run(self, params: Params, context: ActionContext) -> ActionResult:
        folders = self.options.folders or default_folders()
        report = sweep(folders, context, dry_run=params.dry_run, older_than_days=params.older_than_days)
        verb = "would free" if params.dry_run else "freed"
        summary = (f"{verb} {human_bytes(report['bytes'])} in {report['files']} file(s) older than "
                   f"{params.older_than_days} day(s) from {len([f for f in report['folders'] if not f.get('missing')])} "
                   f"temp folder(s)")
        if report["errors"]:
            summary += f"; {len(report['errors'])} file(s) could not be deleted (in use or no permission)"
        return self.result(True, summary, params, bytes_freed=0 if params.dry_run else report["bytes"],
                           **report)


@hookimpl
def register_actions(register, settings):
    register(CleanupTemp(settings.plugin_settings("cleanup_temp", Options)))
