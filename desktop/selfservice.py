"""Self-service actions from the window: the catalogue this machine's config allows, parameters
typed in text fields made into typed values, and the run itself.

A run goes through the core's ActionService exactly as `dashfleet action run` does (allow-list,
strict parameters, time limit, rate limit) and leaves one audit row in the configured storage; the
caller is recorded as `desktop:<os user>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dashfleet_core.actions import ActionRefused, ActionService, CatalogueEntry, cli_actor

from .i18n import Translator


def desktop_actor() -> str:
    """Who runs an action from the window: `desktop:<os user>` in the audit log."""
    return "desktop:" + cli_actor().partition(":")[2]


def available(settings: Any, pm: Any) -> list[CatalogueEntry]:
    """The actions this machine may run from the window: allowed by `[actions] allowed` and
    supported on this platform."""
    service = ActionService(settings, pm, storage=None)
    return [entry for entry in service.catalogue() if entry.allowed and entry.supported]


def fields(entry: CatalogueEntry) -> dict[str, dict[str, Any]]:
    """The parameters shown as text fields (dry run has its own check box)."""
    return {name: spec for name, spec in entry.params.items() if name != "dry_run"}


class ParamError(ValueError):
    """A parameter typed in the window is not of its type; the message says which and why."""


def parse_params(entry: CatalogueEntry, texts: dict[str, str], t: Translator) -> dict[str, Any]:
    """Typed parameters from the window's text fields: an empty field keeps the default; numbers
    and true/false are read as such, as the schema says. The ActionService still validates
    the result strictly (ranges, unknown names)."""
    params: dict[str, Any] = {}
    for name, spec in fields(entry).items():
        text = (texts.get(name) or "").strip()
        if not text:
            continue
        kind = spec.get("type")
        try:
            if kind == "integer":
                params[name] = int(text)
            elif kind == "number":
                params[name] = float(text.replace(",", "."))
            elif kind == "boolean":
                if text.lower() not in ("true", "false"):
                    raise ValueError
                params[name] = text.lower() == "true"
            elif kind == "string":
                params[name] = text
            else:  # a union or other shape: read JSON when it parses, else text (as the CLI does)
                try:
                    params[name] = json.loads(text)
                except ValueError:
                    params[name] = text
        except ValueError:
            want = {"integer": "actions.want_int", "number": "actions.want_number"}.get(kind, "actions.want_bool")
            raise ParamError(t("actions.bad_param", name=name, problem=t(want))) from None
    return params


@dataclass
class Outcome:
    """What the window says after a run."""

    action: str
    ok: bool
    dry_run: bool
    summary: str
    refused: bool = False


def run(settings: Any, pm: Any, name: str, params: dict[str, Any], dry_run: bool) -> Outcome:
    """Run one action through the ActionService with the configured storage for its audit row
    (blocking: the window calls this on the engine's scheduler, never on the Tk thread)."""
    from dashfleet_core.storage import open_storage

    values = dict(params)
    if dry_run:
        values["dry_run"] = True
    with open_storage(settings, pm) as storage:
        service = ActionService(settings, pm, storage)
        try:
            result = service.run(name, values, actor=desktop_actor())
        except ActionRefused as refused:
            return Outcome(action=name, ok=False, dry_run=dry_run, summary=refused.message, refused=True)
    return Outcome(action=result.action, ok=result.ok, dry_run=result.dry_run, summary=result.summary)
