"""`dashfleet notify test [--notifier NAME]`: send a test message through each configured notifier,
so a wrong URL or SMTP password shows up now rather than during the first outage."""

from __future__ import annotations

import click

from . import _context, config_option


@click.group()
def notify() -> None:
    """Notifiers (webhook, email, ...)."""


@notify.command("test")
@click.option("--notifier", "only", default=None, metavar="NAME",
              help="Only this notifier (default: every configured one).")
@config_option
def notify_test(only: str | None, config_path: str | None) -> None:
    """Send a test message; exit 1 if a notifier failed, 2 if none is configured."""
    from ..alerting.delivery import load_notifiers
    from ..config import ConfigError
    from ..models import Event, Notification, utcnow
    from ..plugins import gather

    ctx = _context.load(config_path)
    notifiers = load_notifiers(ctx.pm, ctx.settings)
    if only is not None:
        if only not in notifiers:
            known = gather(ctx.pm, "register_notifiers", "notifier", settings=ctx.settings).names()
            state = "is not configured" if only in known else "does not exist"
            raise ConfigError(
                f"{ctx.settings.source}: notifier {only!r} {state}; configured: "
                f"{', '.join(notifiers) or 'none'}; known: {', '.join(known) or 'none'} "
                "(the webhook needs WEBHOOK_URL or [plugins.webhook] url; email needs "
                "[plugins.email] host and to)")
        notifiers = {only: notifiers[only]}
    if not notifiers:
        raise ConfigError(
            f"{ctx.settings.source}: no notifier is configured: set WEBHOOK_URL (or [plugins.webhook] url) "
            "or [plugins.email] host and to, or APPRISE_URLS")
    public = ctx.settings.server.public_url or f"http://{ctx.settings.server.host}:{ctx.settings.server.port}"
    event = Event(machine_id="dashfleet-test", kind="status_changed", previous="ok", status="warn",
                  score=80, at=utcnow(), message="test message",
                  details={"reasons": ["this is a test message from `dashfleet notify test`"],
                           "link": f"{public.rstrip('/')}/fleet"})
    message = Notification(
        title="[TEST] DashFleet notifications work",
        text="This is a test message from `dashfleet notify test`. If you can read it, DashFleet "
             "alerts will reach you here.", events=[event], link=event.details["link"], test=True)
    failed = 0
    for name, notifier in notifiers.items():
        try:
            notifier.send(message)
        except Exception as exc:
            failed += 1
            click.echo(f"{name}: FAILED: {type(exc).__name__}: {exc}", err=True)
        else:
            click.echo(f"{name}: sent")
    if failed:
        raise SystemExit(1)


def add_commands(cli: click.Group) -> None:
    cli.add_command(notify)
