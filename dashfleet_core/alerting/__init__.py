"""Alerting: health transitions, silent machines and maintenance become events, and events become
a few messages for people. The server's `Fleet` owns one `Alerting` service (``fleet.alerting``).

The parts, each importing only those below it (no cycle):

- :mod:`.service`: the `Alerting` service (the `report_stored` hook, the alert job, maintenance).
- :mod:`.delivery`: from stored events to messages in a durable outbox, and their delivery.
- :mod:`.maintenance`: maintenance windows, stored and configured.
- :mod:`.tracker`: the transition tracker (sustain and hysteresis), pure.
- :mod:`.messages`: the words of a notification; notifier plugins use `structured` and `links_of`.
"""

from .delivery import ANNOUNCED
from .maintenance import SEEN_WINDOWS
from .service import Alerting
from .tracker import STATE

__all__ = ["ANNOUNCED", "SEEN_WINDOWS", "STATE", "Alerting"]
