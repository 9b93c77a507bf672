"""What the `dashfleet` and `dashfleet-desktop` specs share: the project's modules PyInstaller
cannot see (found with pkgutil or entry points at run time), its data files and the metadata that
carries its entry points. Imported by the .spec files (SPECPATH is on sys.path there)."""

from __future__ import annotations

import importlib.util

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata


def importable(name: str) -> bool:
    """True when `name` can be imported in the build environment (optional hosts, drivers)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def hosts() -> list[str]:
    """The hosts whose `dashfleet.commands` entry points the installed metadata names: each one is
    bundled, so the frozen `dashfleet` offers the same commands as `pip install dashfleet`."""
    found = ["dashfleet_web", "dashfleet_agent"]
    if importable("dashfleet_desktop") and importable("tkinter"):
        found.append("dashfleet_desktop")
    return found


def hidden_imports() -> list[str]:
    """Every module of the project and of the libraries it loads by name at run time."""
    names: list[str] = []
    for package in ["dashfleet_core", "dashfleet_plugins", *hosts()]:
        # dashfleet_core.testing is the pytest plugin for plugin authors: no use in a binary.
        names += collect_submodules(package, filter=lambda n: not n.startswith("dashfleet_core.testing"))
    # APScheduler finds its triggers and executors through entry points; waitress is imported
    # by dashfleet_web.server inside a function.
    names += collect_submodules("apscheduler") + collect_submodules("waitress")
    return names


def datas() -> list[tuple[str, str]]:
    """Templates, static files (Chart.js included), scaffold templates, the hosts' data files, and
    the metadata whose entry points name the hosts' commands and the third-party plugins."""
    found = copy_metadata("dashfleet") + copy_metadata("apscheduler")
    for package in ["dashfleet_core", *hosts()]:  # the desktop host's strings too, when bundled
        found += collect_data_files(package)
    return found


# Test tools, and the drivers a build environment may hold but the binaries do not ship
# (PostgreSQL, apprise: `pip install 'dashfleet[postgresql]'` where they are needed).
EXCLUDED = ["pytest", "_pytest", "playwright", "schemathesis", "hypothesis", "aiosmtpd", "psycopg",
            "psycopg_pool", "psycopg_binary", "apprise", "gunicorn", "dashfleet_core.testing"]
