"""What a notifier is: the object a plugin registers with `register_notifiers`.

Alerting hands it one `Notification` at a time from its outbox; `send` raising means "not
delivered" (it is retried with backoff), returning means delivered. A notifier whose settings leave
it off (no URL, no recipient) may say so with `configured = False`: it is listed (`config check`,
`notify test`) but sent nothing. The text in a notification
comes partly from agents: build what you send with `dashfleet_core.text.render(text, format)`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .models import Notification


@runtime_checkable
class Notifier(Protocol):
    """A way to tell people: a chat webhook, an email, a pager."""

    name: str

    def send(self, notification: Notification) -> None:
        """Deliver one notification; raise on failure (alerting retries it later)."""
        ...
