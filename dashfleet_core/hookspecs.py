"""Every hook DashFleet calls, with what it takes, what it returns and how results combine.

Registration hooks hand the plugin a ``register`` callback instead of collecting return values, so
the core knows which plugin supplied each object and refuses two objects with the same name
(``dashfleet_core.plugins.Registry``, filled by ``gather``). Every hook is called through
``dashfleet_core.plugins.call_each``, plugin by plugin, so one plugin's failure skips no other.
Event hooks (``startup``, ``shutdown``, ``health_changed``,
``report_stored``) tell plugins about the life of a host; their return values are ignored.

Every ``register_*`` hook gets ``settings``, the validated :class:`dashfleet_core.config.Settings`:
a plugin reads its own ``[plugins.<name>]`` table there, with
``settings.plugin_settings("<name>", Model)``, and hands the result to what it registers. That is
the one way settings reach a plugin, so a bad table stops the start (``ConfigError``, exit 2) in
every host and in ``dashfleet config check``. An implementation may leave ``settings`` out.

Each hook is documented for plugin authors in ``docs/plugin-hooks.md`` and has a test
(``tests/test_hooks_documented.py`` checks both).
"""

from __future__ import annotations

import pluggy

PROJECT = "dashfleet"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration hooks -------------------------------------------------------------------------


@hookspec
def register_collectors(register, settings):
    """Register metric collectors.

    Call ``register(collector)`` once per collector. A collector has a unique ``name``, a list of
    ``metrics`` (:class:`dashfleet_core.models.MetricInfo`: name, unit, description) and a
    ``collect()`` method returning a :class:`dashfleet_core.collectors.Reading` (numeric metrics and
    text facts). ``settings`` is the validated :class:`dashfleet_core.config.Settings`; read your
    own table with ``settings.plugin_settings("<name>", YourModel)`` (an implementation may leave
    the argument out). Called once when the engine is built; return value ignored.
    """


@hookspec
def register_health_checks(register, settings):
    """Register health checks.

    Call ``register(check)`` once per check. A check has a unique ``name`` and a
    ``check(metrics, thresholds)`` method returning a list of
    :class:`dashfleet_core.models.Finding`. The engine scores health from the findings of every
    check. ``settings`` as for ``register_collectors`` (optional in an implementation). Called once
    when the engine is built; return value ignored.
    """


@hookspec
def register_storage(register, settings):
    """Register storage backends.

    Call ``register(scheme, factory)``: ``scheme`` is the URL scheme the backend answers
    (``sqlite``, ``json``, ``postgresql``) and ``factory(url, settings)`` returns an object that
    implements :class:`dashfleet_core.storage.Storage`. ``settings`` as for
    ``register_collectors`` (optional in an implementation). Called once when storage is opened.
    """


@hookspec
def register_exporters(register, settings):
    """Register exporters (CSV, JSONL, ...).

    Call ``register(name, factory)``: ``factory(stream)`` takes an open text stream and returns a
    :class:`dashfleet_core.exporting.ExportSink`: ``write(record: dict)`` and ``close()`` (which
    flushes but does not close the stream: the caller owns it). Records are built by
    :func:`dashfleet_core.exporting.export_record`. ``settings`` as for ``register_collectors``
    (optional in an implementation). Used by ``dashfleet watch --export FORMAT:PATH`` and
    ``dashfleet export --format FORMAT``; return value ignored.
    """


@hookspec
def register_notifiers(register, settings):
    """Register notifiers (webhook, email, ...).

    Call ``register(notifier)``: a notifier has a unique ``name`` and ``send(message)`` taking a
    :class:`dashfleet_core.models.Notification`; it raises on failure so the event is retried.
    Read your settings here (``settings`` as for ``register_collectors``, optional in an
    implementation) and give them to the notifier; a notifier whose ``configured`` attribute is
    false (no URL set, say) stays listed but is not sent to. Called when the alerting service
    starts, by ``dashfleet notify test`` and by ``dashfleet config check``; return value ignored.
    (A ``configure(settings)`` method on the notifier, the former way, is still called.)
    """


@hookspec
def register_actions(register, settings):
    """Register remediation actions.

    Call ``register(action)``: an action has a unique ``name``, a ``description``, the
    ``platforms`` it supports, a ``Params`` model deriving from
    :class:`dashfleet_core.actions.ActionParams` (others are left out at load),
    ``changes_machine`` and ``run(params, context)`` returning a
    :class:`dashfleet_core.models.ActionResult`. Read your settings here (``settings`` as for
    ``register_collectors``, optional in an implementation) and give them to the action. Called
    when an action service is built (server start, ``dashfleet actions``, ``dashfleet action
    run``); return value ignored.
    """


@hookspec
def register_commands(cli, settings):
    """Add commands to the ``dashfleet`` command line.

    ``cli`` is the top-level ``click.Group``; add commands or groups to it. ``settings`` as for
    ``register_collectors`` (optional in an implementation): the config the command line loaded.
    Called once when the CLI starts; return value ignored.
    """


@hookspec
def register_routes(app, settings):
    """Add routes to the web server.

    ``app`` is the Flask application being built by ``dashfleet_web.create_app``; register
    blueprints on it. ``settings`` as for ``register_collectors`` (optional in an
    implementation): the server's. Called once per application; return value ignored.
    """


# --- event hooks --------------------------------------------------------------------------------


@hookspec
def startup(engine):
    """A host has built its engine and is about to start work.

    ``engine`` is the :class:`dashfleet_core.engine.Engine`. Called once per host process; return
    value ignored. An exception here is logged and does not stop the host.
    """


@hookspec
def shutdown(engine):
    """A host is stopping (SIGTERM, Ctrl-C, end of a command).

    Called once; return value ignored. Release what ``startup`` acquired.
    """


@hookspec
def report_stored(report, health, org):
    """The server stored a report (not a duplicate).

    ``report`` is a :class:`dashfleet_core.models.Report`, ``health`` the server's
    :class:`dashfleet_core.models.Health` for it, ``org`` the id of the organisation the report
    landed in (``"default"`` for the seed's agents): the same ``machine_id`` in two organisations
    is two machines. A plugin may leave ``org`` out of its signature. Called after the save was
    committed; keep it fast (queue slow work). Return value ignored.
    """


@hookspec
def health_changed(event):
    """A machine's health changed: status up or down, silent, or back.

    ``event`` is a :class:`dashfleet_core.models.Event`, already stored. Called outside the request
    that caused it; return value ignored.
    """
