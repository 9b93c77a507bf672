"""Apprise notifier: one plugin for Teams, Discord, Telegram, Matrix, ntfy, Pushover and the ~100
other services apprise knows, each given as a URL (https://github.com/caronc/apprise/wiki).

On when `APPRISE_URLS` (space- or comma-separated) or `[plugins.apprise] urls` lists at least one
URL. The URLs carry secrets (tokens, passwords): prefer the environment variable, and they are never
logged. Needs the optional extra: `pip install 'dashfleet[apprise]'`.

The message goes to apprise as clean plain text (`body_format=text`): apprise then escapes it for
each service (Markdown for Teams, HTML for email, Slack's `&lt;`), and DashFleet breaks
`@everyone`/`@here` mentions itself. Discord is the exception: apprise passes plain text to it as it
is and Discord renders it as Markdown, so Discord URLs get DashFleet's own Discord escaping.
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict, Field

from dashfleet_core import hookimpl
from dashfleet_core.config import ConfigError
from dashfleet_core.text import clean, clean_block, defuse_mentions, render

PLUGIN_NAME = "apprise"
ENV = "APPRISE_URLS"


class AppriseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    urls: list[str] = Field(default_factory=list)


class AppriseError(Exception):
    """At least one apprise service did not take the message."""


@contextmanager
def _quiet():
    """apprise loads its service plugins lazily, one of which imports the deprecated imghdr
    (Python 3.11): keep that warning out of the host's logs (and out of `-W error` test runs)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        yield


def _import_apprise():
    with _quiet():
        import apprise
    return apprise


class AppriseNotifier:
    name = PLUGIN_NAME

    def __init__(self, urls: list[str] | None = None) -> None:
        self.urls = list(urls or [])

    @property
    def configured(self) -> bool:
        """No URL in `[plugins.apprise] urls` nor in $APPRISE_URLS: the notifier is off."""
        return bool(self.urls)

    @classmethod
    def from_settings(cls, settings) -> "AppriseNotifier":
        """`[plugins.apprise] urls`, then those of $APPRISE_URLS, each checked now, so a URL
        apprise does not understand stops the start (exit 2)."""
        options = settings.plugin_settings(PLUGIN_NAME, AppriseSettings)
        urls = options.urls + [u for u in re.split(r"[\s,]+", os.environ.get(ENV, "")) if u]
        if not urls:
            return cls()
        try:
            apprise = _import_apprise()
        except ImportError:
            raise ConfigError(f"{settings.source}: [plugins.apprise] urls / ${ENV} are set but apprise is "
                              "not installed: pip install 'dashfleet[apprise]'") from None
        for n, url in enumerate(urls):
            with _quiet():
                understood = apprise.Apprise().add(url)
            if not understood:
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                raise ConfigError(f"{settings.source}: apprise URL #{n + 1} ({scheme}://...) is not one "
                                  "apprise understands; see https://github.com/caronc/apprise/wiki")
        return cls(urls)

    def send(self, notification) -> None:
        apprise = _import_apprise()
        failed = []
        for n, url in enumerate(self.urls):  # one by one, so a failure names which one
            kind = apprise.NotifyType.FAILURE if not notification.test and _is_bad(notification) \
                else apprise.NotifyType.INFO
            with _quiet():
                client = apprise.Apprise()
                client.add(url)
                title, body, body_format = message_for(client[0], notification)
                ok = client.notify(title=title, body=body, notify_type=kind, body_format=body_format)
            if not ok:
                failed.append(f"#{n + 1} ({url.split('://', 1)[0]}://...)")
        if failed:
            raise AppriseError(f"apprise could not deliver to URL {', '.join(failed)}")


def message_for(service, notification) -> tuple[str, str, str]:
    """(title, body, body_format) of `notification` for one apprise service (see the module's
    docstring: clean plain text that apprise escapes, or DashFleet's Discord escaping)."""
    from apprise import NotifyFormat

    from dashfleet_core.alerting.messages import links_of

    if getattr(service, "secure_protocol", None) == "discord":
        keep = links_of(notification)
        return (render(notification.title, "discord", keep), render(notification.text, "discord", keep),
                NotifyFormat.MARKDOWN)
    return (defuse_mentions(clean(notification.title)), defuse_mentions(clean_block(notification.text)),
            NotifyFormat.TEXT)


def _is_bad(notification) -> bool:
    from dashfleet_core.alerting.messages import structured
    from dashfleet_core.models import status_rank

    return any(status_rank(m.get("status") or None) > 0 for m in structured(notification)["machines"])


@hookimpl
def register_notifiers(register, settings):
    register(AppriseNotifier.from_settings(settings))
