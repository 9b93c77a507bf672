"""cleanup_teams: empty Microsoft Teams' cache folders, only while Teams is not running.

Only the cache folders are touched (web caches, GPU shader cache, blob cache, temp), never settings,
sign-in state or chats. The folders and the process names can be replaced with
`[plugins.cleanup_teams] folders = [...]` and `process_names = [...]`.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict

from dashfleet_core import hookimpl
from dashfleet_core.actions import ActionContext, ActionParams, BaseAction
from dashfleet_core.models import ActionResult

from ._common import env_path, home, human_bytes, running_processes, sweep

PROCESS_NAMES = ["Teams", "ms-teams", "MSTeams", "Microsoft Teams", "Microsoft Teams (work or school)",
                 "Microsoft Teams classic", "teams-for-linux"]
CACHE_NAMES = ["Cache", "Code Cache", "GPUCache", "Application Cache", "blob_storage", "tmp"]


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folders: list[str] | None = None
    process_names: list[str] | None = None


class Params(ActionParams):
    pass


def default_folders(platform: str) -> list[str]:
    bases: list[str] = []
    if platform == "windows":
        bases = [p for p in (env_path("APPDATA", "Microsoft", "Teams"),) if p]
        new = env_path("LOCALAPPDATA", "Packages", "MSTeams_8wekyb3d8bbwe", "LocalCache", "Microsoft",
                       "MSTeams", "EBWebView", "Default")
        if new:
            bases.append(new)
    elif platform == "macos":
        bases = [str(home() / "Library/Application Support/Microsoft/Teams")]
        extra = [str(home() / "Library/Caches/com.microsoft.teams"),
                 str(home() / "Library/Caches/com.microsoft.teams2")]
        return [os.path.join(b, c) for b in bases for c in CACHE_NAMES] + extra
    elif platform == "linux":
        bases = [str(home() / ".config/Microsoft/Microsoft Teams"), str(home() / ".config/teams-for-linux")]
    return [os.path.join(b, c) for b in bases for c in CACHE_NAMES]


class CleanupTeams(BaseAction):
    name = "cleanup_teams"
    description = "Empty Microsoft Teams' cache folders (only while Teams is not running)"
    platforms = ("windows", "linux", "macos")
    changes_machine = True
    Params = Params
    options: Options  # [plugins.cleanup_teams], read in register_actions

    def run(self, params: Params, context: ActionContext) -> ActionResult:
        options = self.options
        folders = options.folders or default_folders(context.platform)
        running = running_processes(options.process_names or PROCESS_NAMES)
        if running:
            return self.result(False, f"Teams is running ({', '.join(running)}): ask the user to quit "
                                      f"it, then try again", params, running=running, folders=folders)
        report = sweep(folders, context, dry_run=params.dry_run)
        present = [f for f in report["folders"] if not f.get("missing")]
        if not present:
            return self.result(True, "no Teams cache folder on this machine: nothing to do", params, **report)
        verb = "would free" if params.dry_run else "freed"
        return self.result(True, f"{verb} {human_bytes(report['bytes'])} in {report['files']} file(s) "
                                 f"from {len(present)} Teams cache folder(s)", params,
                           bytes_freed=0 if params.dry_run else report["bytes"], **report)


@hookimpl
def register_actions(register, settings):
    register(CleanupTeams(settings.plugin_settings("cleanup_teams", Options)))
