"""cleanup_outlook: empty Outlook's cache folders, never mail data, only while Outlook is closed.

The folders are Outlook's caches (the secure temp folder for opened attachments, the web-view
caches), never the mail stores; as a second guard, mail files (.pst, .ost, .olm, .nst, .msg,
.eml) are kept even if one is found inside a cache folder. Folders and process names can be
replaced with `[plugins.cleanup_outlook] folders = [...]` and `process_names = [...]`.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict

from dashfleet_core import hookimpl
from dashfleet_core.actions import ActionContext, ActionParams, BaseAction
from dashfleet_core.models import ActionResult

from ._common import env_path, home, human_bytes, running_processes, sweep

PROCESS_NAMES = ["OUTLOOK", "olk", "Microsoft Outlook"]
MAIL_EXTENSIONS = (".pst", ".ost", ".olm", ".nst", ".msg", ".eml", ".mbox")


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folders: list[str] | None = None
    process_names: list[str] | None = None


class Params(ActionParams):
    pass


def default_folders(platform: str) -> list[str]:
    if platform == "windows":
        found = [
            env_path("LOCALAPPDATA", "Microsoft", "Windows", "INetCache", "Content.Outlook"),
            env_path("LOCALAPPDATA", "Microsoft", "Olk", "EBWebView", "Default", "Cache"),
            env_path("LOCALAPPDATA", "Microsoft", "Olk", "EBWebView", "Default", "Code Cache"),
            env_path("LOCALAPPDATA", "Microsoft", "Olk", "EBWebView", "Default", "GPUCache"),
        ]
        return [f for f in found if f]
    if platform == "macos":
        return [str(home() / "Library/Caches/com.microsoft.Outlook")]
    return []


def is_mail_data(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in MAIL_EXTENSIONS


class CleanupOutlook(BaseAction):
    name = "cleanup_outlook"
    description = "Empty Outlook's cache folders, never mail data (only while Outlook is not running)"
    platforms = ("windows", "macos")
    changes_machine = True
    Params = Params
    options: Options  # [plugins.cleanup_outlook], read in register_actions

    def run(self, params: Params, context: ActionContext) -> ActionResult:
        options = self.options
        folders = options.folders or default_folders(context.platform)
        running = running_processes(options.process_names or PROCESS_NAMES)
        if running:
            return self.result(False, f"Outlook is running ({', '.join(running)}): ask the user to quit "
                                      f"it, then try again", params, running=running, folders=folders)
        report = sweep(folders, context, dry_run=params.dry_run, keep=is_mail_data)
        present = [f for f in report["folders"] if not f.get("missing")]
        if not present:
            return self.result(True, "no Outlook cache folder on this machine: nothing to do", params, **report)
        verb = "would free" if params.dry_run else "freed"
        summary = (f"{verb} {human_bytes(report['bytes'])} in {report['files']} file(s) from "
                   f"{len(present)} Outlook cache folder(s)")
        if report["kept"]:
            summary += f"; kept {report['kept']} mail file(s) found there"
        return self.result(True, summary, params,
                           bytes_freed=0 if params.dry_run else report["bytes"], **report)


@hookimpl
def register_actions(register, settings):
    register(CleanupOutlook(settings.plugin_settings("cleanup_outlook", Options)))
