"""`dashfleet plugin new`: write a complete, pip-installable plugin package to start from.

The files come from `templates/common/` and `templates/<kind>/` (package data, `string.Template`
syntax: `$name`, `$module`, ...), so what a new plugin looks like is edited as files, not as
strings in code. Every kind's package has the `dashfleet` entry point, a pydantic settings model
read with `settings.plugin_settings(...)` in its `register_*` hook, a README and tests on the fixtures of
`dashfleet_core.testing` that pass as generated (tests/test_scaffold.py installs and runs them).
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Iterable

from .. import __version__

log = logging.getLogger(__name__)

# kind -> the package description (what the generated plugin does as written).
KINDS: dict[str, str] = {
    "collector": "A DashFleet collector: counts the entries of a folder.",
    "health": "A DashFleet health check: warns when a metric is above a limit.",
    "action": "A DashFleet action: reports the free space of a folder's disk.",
    "notifier": "A DashFleet notifier: POSTs each notification as JSON to a URL.",
    "exporter": "A DashFleet exporter: one line per record, metrics as name=value.",
}

NAME_RX = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$")
MAX_NAME = 40

# template file -> where it goes in the package ({module}, {plugin} filled in); usage.md is
# not a file of its own: it becomes the kind's part of README.md.
COMMON_FILES = {"pyproject.toml.tmpl": "pyproject.toml", "README.md.tmpl": "README.md",
                "__init__.py.tmpl": "{module}/__init__.py"}
KIND_FILES = {"plugin.py.tmpl": "{module}/plugin.py", "test.py.tmpl": "tests/test_{plugin}.py"}


class ScaffoldError(ValueError):
    """The request cannot be written as asked; the message says what to change."""


@dataclass(frozen=True)
class Names:
    """Every name a plugin called `name` gets: `disk-age` -> disk_age, dashfleet-disk-age, ..."""

    name: str  # the plugin name: entry point, [plugins.<name>], object and metric prefix
    dist: str  # the distribution (pip) name
    module: str  # the import package
    class_name: str

    @classmethod
    def of(cls, raw: str) -> "Names":
        if not NAME_RX.match(raw) or len(raw) > MAX_NAME:
            raise ScaffoldError(
                f"{raw!r} cannot be a plugin name: use at most {MAX_NAME} lower-case letters and "
                f"digits, words joined by '_' or '-', starting with a letter (e.g. disk_age)")
        name = raw.replace("-", "_")
        return cls(name=name, dist="dashfleet-" + name.replace("_", "-"), module="dashfleet_" + name,
                   class_name="".join(word.capitalize() for word in name.split("_")))


def _template(kind: str, file: str) -> Template:
    return Template((resources.files(__name__) / "templates" / kind / file).read_text(encoding="utf-8"))


def render(names: Names, kind: str) -> dict[str, str]:
    """{relative path: text} of the package for `names` and `kind` (nothing is written)."""
    if kind not in KINDS:
        raise ScaffoldError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    values = {**asdict(names), "kind": kind, "description": KINDS[kind],
              "dashfleet_version": __version__}
    values["usage"] = _template(kind, "usage.md.tmpl").substitute(values).strip()
    files = {}
    for folder, table in (("common", COMMON_FILES), (kind, KIND_FILES)):
        for source, target in table.items():
            path = target.format(module=names.module, plugin=names.name)
            files[path] = _template(folder, source).substitute(values)
    return files


def new_plugin(raw_name: str, kind: str, target: Path | None = None, *,
               taken: Iterable[str] = ()) -> tuple[Names, Path, list[Path]]:
    """Write the package into `target` (default `./dashfleet-<name>`), which must not hold files.

    `taken` are plugin names already in use (built-ins, installed plugins): a second plugin of
    the same name would be refused at start-up, so it is refused here. Returns the names, the
    package folder and the files written; on an error nothing is left behind.
    """
    names = Names.of(raw_name)
    if names.name in set(taken) | {"dashfleet"}:
        raise ScaffoldError(f"a plugin named {names.name!r} already exists (see `dashfleet plugins`); "
                            f"choose another name")
    files = render(names, kind)
    folder = (target if target is not None else Path(names.dist)).expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ScaffoldError(f"{folder} already exists and is not an empty folder; choose another "
                            f"--dir (nothing was written)")
    created = not folder.exists()
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for relative, text in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            written.append(path)
    except OSError as exc:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            for path in written:
                path.unlink(missing_ok=True)
        raise ScaffoldError(f"cannot write {folder}: {exc.strerror or exc}; choose a writable --dir") from None
    log.info("wrote %s plugin %r to %s", kind, names.name, folder)
    return names, folder, written
