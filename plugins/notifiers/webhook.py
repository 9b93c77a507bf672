"""Webhook notifier: POST `{"text": ...}` (what Slack and Teams incoming webhooks accept) plus a
`dashfleet` field with the machine, status, score, reasons and a link, for receivers that parse it;
Discord gets `{"content": ..., "allowed_mentions": {"parse": []}}`.

`WEBHOOK_URL` alone turns it on (or `[plugins.webhook] url`). A slow or failing receiver raises, so
the alert job retries it later; it never runs inside the request that received a report.
The text is escaped for the receiver named by `[plugins.webhook] format` (slack by default), so
what an agent sent shows as text there: no mentions, no disguised links, no Markdown.
"""

from __future__ import annotations

import logging
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dashfleet_core import hookimpl
from dashfleet_core.text import render

log = logging.getLogger(__name__)

PLUGIN_NAME = "webhook"


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    # How the receiver reads the text: Slack mrkdwn, Teams or Discord Markdown, or none of it.
    format: Literal["slack", "teams", "discord", "plain"] = "slack"
    timeout_seconds: float = Field(default=5, gt=0, le=120)
    verify_tls: bool = True
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL, e.g. https://hooks.slack.com/services/...")
        return value


class WebhookError(Exception):
    """The receiver did not accept the message."""


class WebhookNotifier:
    name = PLUGIN_NAME

    def __init__(self, options: WebhookSettings | None = None) -> None:
        self.options = options or WebhookSettings()

    @property
    def configured(self) -> bool:
        """No URL (neither WEBHOOK_URL nor `[plugins.webhook] url`): the notifier is off."""
        return self.options.url is not None

    def payload(self, notification) -> dict:
        """The JSON body: the message escaped for the receiver, plus the structured data (exact,
        JSON-encoded: a receiver that shows it escapes it for its own page)."""
        from dashfleet_core.alerting.messages import links_of, structured

        fmt = self.options.format
        text = render(f"{notification.title}\n{notification.text}", fmt, keep=links_of(notification))
        if fmt == "discord":  # Discord's body has no room for data; no mention pings, whatever the text
            return {"content": text, "allowed_mentions": {"parse": []}}
        return {"text": text, "dashfleet": structured(notification)}

    def send(self, notification) -> None:
        import requests

        assert self.options.url, "not configured: no URL"
        try:
            response = requests.post(
                self.options.url, json=self.payload(notification),
                headers={"User-Agent": "DashFleet", **self.options.headers},
                timeout=(min(self.options.timeout_seconds, 5), self.options.timeout_seconds),
                verify=self.options.verify_tls, allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise WebhookError(f"{_where(self.options.url)}: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise WebhookError(f"{_where(self.options.url)} answered HTTP {response.status_code}")


def _where(url: str) -> str:
    """Scheme and host only: webhook URLs carry secrets in their path (Slack, Teams)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"


@hookimpl
def register_notifiers(register, settings):
    # WEBHOOK_URL reaches [plugins.webhook] url through the config's environment overrides
    register(WebhookNotifier(settings.plugin_settings(PLUGIN_NAME, WebhookSettings)))
