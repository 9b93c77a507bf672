"""Replaced by :mod:`dashfleet_core.alerting.messages`; kept so notifier plugins written against
``dashfleet_core.alerting_messages`` (``structured``, ``links_of``) keep working. New code imports
``dashfleet_core.alerting.messages``; its former status ranking ``RANK`` is now
``dashfleet_core.models.status_rank``."""

from .alerting.messages import (
    LABEL,
    MAX_NAME_SHOWN,
    MAX_REASON_SHOWN,
    MAX_REASONS_SHOWN,
    describe,
    digest,
    human_seconds,
    links_of,
    maintenance_ended,
    name_of,
    single,
    structured,
    target_of,
)
from .models import SILENT, STATUS_ORDER, status_rank

RANK = {status: status_rank(status) for status in (*STATUS_ORDER, SILENT)}

__all__ = ["LABEL", "RANK", "MAX_NAME_SHOWN", "MAX_REASON_SHOWN", "MAX_REASONS_SHOWN", "describe", "digest",
           "human_seconds", "links_of", "maintenance_ended", "name_of", "single", "structured",
           "target_of"]
