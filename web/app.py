"""The Flask app factory: settings, the fleet service, every blueprint, errors and security headers.

`create_app()` with no argument reads the config the usual way (`$DASHFLEET_CONFIG`,
`./dashfleet.toml`, environment overrides), so a WSGI server can call it as it is. The production
command is `dashfleet web` (waitress, see `web/server.py`); for more cores, gunicorn behind the
shipped nginx config (docs/deploy.md), never facing clients itself:

    gunicorn --bind 127.0.0.1:8000 --workers 4 'dashfleet_web.app:create_app()'

One worker per host runs the fleet's scheduled jobs (the holder of a file lock,
`dashfleet_core.job_runner`), and each run takes a storage lease first, so a job runs once per
deployment, not once per worker.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import pkgutil
from pathlib import Path
from typing import Any

from flask import Flask

from dashfleet_core.config import Settings, check_server_tokens, load_settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.plugins import call_each

from . import access, blueprints, client_address, errors, first_admin, jsonbody, metrics, security
from .token_file import resolve_fleet_token

log = logging.getLogger(__name__)

EXTENSION = "dashfleet"


def _settings_from(config: Any) -> Settings:
    """None: the usual config lookup; a Settings: as is; a str/Path: a config file; a dict: dotted
    overrides on top of the usual lookup (`{"server.ttl_seconds": 60}`)."""
    if isinstance(config, Settings):
        return config
    if config is None:
        return load_settings(None)
    if isinstance(config, (str, os.PathLike)):
        return load_settings(Path(config))
    if isinstance(config, dict):
        return load_settings(None, overrides=config)
    raise TypeError(f"create_app(config=...) takes None, Settings, a path or a dict, not {type(config).__name__}")


def create_app(config: Any = None, *, fleet: Fleet | None = None, start: bool = True) -> Flask:
    """Build the web app.

    `fleet`: an existing service to serve (tests, `dashfleet web`); by default one is built from
    the settings. `start`: start the fleet's jobs (retention, self-report, plugins' jobs) now and
    stop them at exit; tests that only use the test client pass `start=False`.
    """
    settings = fleet.settings if fleet is not None else _settings_from(config)
    # Refuse weak tokens before anything is opened or generated (raises ConfigError: exit 2).
    check_server_tokens(settings.server.token, settings.actions.token, settings.source)
    fleet = fleet or Fleet(settings)

    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.request_class = jsonbody.Request  # request.get_json() refuses deep nesting before parsing
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False
    app.json.compact = True
    app.extensions[EXTENSION] = fleet
    app.config["FLEET_TOKEN"] = resolve_fleet_token(settings)
    for warning in check_server_tokens(app.config["FLEET_TOKEN"], settings.actions.token, settings.source):
        log.warning(warning)

    client_address.init_app(app, settings.server.trusted_proxies)
    errors.init_app(app)
    security.init_app(app)
    access.init_app(app)
    metrics.init_app(app)
    for module in _blueprint_modules():
        app.register_blueprint(module.bp)
    # a raising plugin is left out, logged
    call_each(fleet.pm, "register_routes", {"app": app, "settings": settings})

    if start:
        fleet.start()
        atexit.register(fleet.stop)
        first_admin.announce(fleet)
    return app


def _blueprint_modules():
    """Every module of `dashfleet_web.blueprints` that exposes `bp`, in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(blueprints.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{blueprints.__name__}.{info.name}")
        if getattr(module, "bp", None) is not None:
            found.append(module)
    return found


def get_fleet() -> Fleet:
    """The fleet service of the app handling the current request."""
    from flask import current_app

    return current_app.extensions[EXTENSION]
