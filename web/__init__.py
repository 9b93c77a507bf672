"""DashFleet's web host (installed as `dashfleet_web`): the Flask app factory, its blueprints,
templates and static files. `create_app` is the entry point for `dashfleet web`, gunicorn and
waitress."""

from __future__ import annotations


def create_app(config=None, **kwargs):
    """See :func:`dashfleet_web.app.create_app`."""
    from .app import create_app as factory

    return factory(config, **kwargs)
