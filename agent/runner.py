"""The agent's work: collect every `interval`, spool, flush the spool in order, back off on failure.

Collection and flushing are jobs of the engine's APScheduler scheduler sharing one thread, so they
never overlap. Collecting has priority: a long backlog is flushed batch by batch in between
collections, so the reports keep their rhythm while the server catches up. Stopping (SIGTERM,
SIGINT, a Windows service stop) sets an event; the job in progress finishes the step it is in (an
SQLite transaction either commits or leaves nothing behind) and the scheduler stops.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from dashfleet_core.config import AgentSettings

from .answers import Answer
from .backoff import Backoff
from .identity import machine_id as load_machine_id
from .machine_key import load_or_create as load_machine_key
from .paths import ensure_state_dir
from .sender import Sender, dumps_report, renumbered_body
from .spool import Spool, SpoolError, StateLock
from .status_file import write_quietly as write_status

log = logging.getLogger("dashfleet_agent")

# Exit codes of `--once` (and of the agent when it cannot start), for scripts and installers.
EXIT_DELIVERED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SPOOLED = 75      # EX_TEMPFAIL: spooled, the server was not reachable; a later run sends it
EXIT_REFUSED = 77      # EX_NOPERM: the server refused the token (or the URL / certificate is wrong)

# Renumbering after a seq conflict normally settles in one round (two if the server counted the
# batch's own new reports late); more in one flush means something else writes under this id.
MAX_RENUMBERINGS_PER_FLUSH = 3


class Agent:
    """Owns the state folder (lock, spool, machine id), the engine and the sender.

    Runs on the `[agent]` settings themselves, resolved by the command line: `token` read (from
    `token_file` if that was given) and `state_dir` set (see dashfleet_agent.cli.resolved).
    """

    def __init__(self, config: AgentSettings, engine):
        if not (config.server and config.token and config.state_dir):
            raise ValueError("the agent needs [agent] server, token and state_dir "
                             "(dashfleet_agent.cli.resolved reads the token file and sets the state folder)")
        self.config = config
        self.engine = engine
        state_dir = Path(config.state_dir)
        ensure_state_dir(state_dir)
        self.lock = StateLock(state_dir)
        self.lock.acquire()
        try:
            self.machine_id = load_machine_id(state_dir, config.machine_id)
            machine_key = load_machine_key(state_dir)
            self.spool = Spool(state_dir, max_bytes=config.spool_max_bytes,
                               max_age=config.spool_max_age_hours * 3600)
            # `agent status` shows the id in use, also when it came from --machine-id (not on disk).
            if self.spool.get("machine_id") != self.machine_id:
                self.spool.set("machine_id", self.machine_id)
        except Exception:
            self.lock.release()
            raise
        self.sender = Sender(config.server, config.token, machine_key=machine_key, ca_bundle=config.ca_bundle,
                             verify_tls=config.verify_tls)
        # what the server said last time it takes (kept for `--once` runs and restarts)
        self.sender.accepts = frozenset(self.spool.get("server_accepts") or ())
        self.backoff = Backoff(cap=config.backoff_max_seconds)
        self.next_send = 0.0          # monotonic time before which no send is tried
        self.retry_delay: float | None = None   # the last wait scheduled after a failure, in seconds
        self.last_answer: Answer | None = None
        self._problem: str | None = None   # the kind of failure being reported, so it is logged once
        self._problem_message = ""
        self._batch_limit = config.batch_size
        self._single_until_seq: int | None = None
        self._once = False
        # the secret-free status file for the desktop app (None: not written)
        self.status_path = Path(config.status_file) if config.status_file else None
        self._status_problem: str | None = None

    def close(self) -> None:
        self.sender.close()
        self.spool.close()
        self.lock.release()

    # --- steps ---------------------------------------------------------------------------------

    def collect(self) -> int:
        """One engine cycle into the spool. Returns its seq."""
        seq = self.spool.next_seq()
        report, _health = self.engine.cycle(self.machine_id, seq)
        self.spool.put(seq, lambda dropped: dumps_report(report.model_copy(update={"spool_dropped": dropped})))
        return seq

    def flush(self, stop: threading.Event, until: float | None = None) -> bool:
        """Send the spool oldest first until it is empty (True), a send fails, `stop` is set or the
        monotonic clock passes `until`."""
        renumbered = 0
        while not stop.is_set():
            if until is not None and time.monotonic() >= until:
                return False
            limit = self._batch_limit
            head = self.spool.peek(1)
            if not head:
                return True
            if self._single_until_seq is not None:
                if head[0].seq > self._single_until_seq:
                    self._single_until_seq = None
                else:
                    limit = 1
            items = self.spool.peek(limit) if limit > 1 else head
            answer = self.sender.send(items)
            self.last_answer = answer
            if sorted(self.sender.accepts) != (self.spool.get("server_accepts") or []):
                self.spool.set("server_accepts", sorted(self.sender.accepts))
            if answer.kind == "split":
                # The server refused the batch as a whole: find the culprit one report at a time.
                log.warning("%s; sending the %d reports one at a time", answer.message, len(items))
                self._single_until_seq = items[-1].seq
                if answer.status == 413:
                    self._batch_limit = max(1, len(items) // 2)
                continue
            if answer.kind != "delivered":
                self._failed(answer)
                return False
            for item, error, fields in answer.rejected:
                log.error("server rejected report seq %d as invalid: %s%s; kept in %s", item.seq, error,
                          f" (fields: {', '.join(fields)})" if fields else "", self.spool.dead_letter_path)
                self.spool.dead_letter(item, answer.status, error, fields)
            done = answer.acked + [item.seq for item, _e, _f in answer.rejected]
            if answer.acked:
                self.spool.ack(done, last_delivery={"at": time.time(), "count": len(answer.acked)},
                               last_error=None)
            else:
                self.spool.ack(done)
            if answer.conflicts:
                renumbered += 1
                if renumbered > MAX_RENUMBERINGS_PER_FLUSH:
                    # A server that answers every new number with a conflict: wait, do not spin.
                    self._failed(Answer("retry", status=answer.status, message=(
                        f"the server answered {renumbered} seq conflicts in a row; the reports stay in the "
                        "spool (check that no other agent reports under this machine id)")))
                    return False
                self._renumber(answer)
            if not answer.acked and not answer.rejected and not answer.conflicts:
                # An answer that settled nothing: do not spin on it.
                self._failed(Answer("retry", status=answer.status,
                                    message="server answered without acknowledging any report"))
                return False
            if answer.acked:
                self._delivered(len(answer.acked))
        return False

    def _renumber(self, answer: Answer) -> None:
        """The server holds a seq with other content (a restored snapshot, a cloned state folder):
        number the conflicting report and every pending one after it above the server's last seq,
        in order, and send them again. Nothing is dropped and nothing overwrites the server's."""
        first = min(answer.conflicts, key=lambda c: c.item.seq)
        # Above the server's last seq, and above anything acknowledged in the same answer.
        start = max([c.last_seq for c in answer.conflicts] + answer.acked) + 1
        count, last_old = self.spool.renumber(first.item.seq, start, renumbered_body)
        log.warning("the server already holds seq %d of machine %s with other content (%s; its last seq is %d): "
                    "renumbered %d pending report(s), seq %d-%d -> %d-%d, and sending them again",
                    first.item.seq, self.machine_id, first.error, start - 1, count, first.item.seq, last_old,
                    start, start + count - 1)

    def _delivered(self, count: int) -> None:
        if self._problem is not None:
            log.info("delivery works again (%d report(s) sent); the problem was: %s", count,
                     self._problem_message)
        self._problem = None
        self.backoff.reset()
        self.next_send = 0.0

    def _failed(self, answer: Answer) -> None:
        if answer.kind == "blocked":
            delay = self.config.blocked_retry_seconds
        else:
            delay = self.backoff.next_delay()
            if answer.retry_after is not None:
                delay = max(delay, answer.retry_after)
        self.retry_delay = delay
        self.next_send = time.monotonic() + delay
        level = logging.ERROR if answer.kind == "blocked" else logging.WARNING
        if self._once:
            log.log(level, "%s; %d report(s) kept in the spool for the next run", answer.message,
                    self.spool.depth())
        elif answer.problem != self._problem:  # once per kind of failure, not once per try
            log.log(level, "%s; next try in %.0f s (%d report(s) waiting in the spool)",
                    answer.message, delay, self.spool.depth())
        else:
            log.debug("still failing: %s; next try in %.1f s", answer.message, delay)
        self._problem = answer.problem
        self._problem_message = answer.message
        self.spool.set("last_error", {"at": time.time(), "message": answer.message, "status": answer.status,
                                      "kind": answer.kind, "retry_in": round(delay, 1)})

    # --- modes ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Collect every interval and deliver, until `stop` is set. Both are jobs of the engine's
        scheduler on one thread (`serial`), so a collection never runs during a flush. A backlog is
        flushed after each collection until the next one is due, and in between by a one-off job
        when sending is allowed again (after a backoff); an idle agent wakes only to collect."""
        interval = self.config.interval
        log.info("dashfleet agent started: machine %s (%s), server %s, every %g s, state %s, "
                    "%d report(s) in the spool", self.machine_id, self.engine.hostname, self.sender.url,
                    interval, self.config.state_dir, self.spool.depth())
        next_collect = [time.monotonic()]

        def deliver() -> None:
            if stop.is_set():
                return
            if time.monotonic() >= self.next_send and self.spool.depth():
                self.flush(stop, until=next_collect[0])
            if stop.is_set() or not self.spool.depth():
                return
            # a backlog is left: come back as soon as sending is allowed, unless the next
            # collection (which flushes too) comes first
            wait = max(0.0, self.next_send - time.monotonic())
            if time.monotonic() + wait < next_collect[0]:
                self.engine.later(wait, deliver, job_id="agent-flush", serial=True)

        def collect() -> None:
            if stop.is_set():
                return
            next_collect[0] = time.monotonic() + interval
            try:
                self.collect()
            except SpoolError as exc:
                log.error("%s", exc)
            deliver()
            self.write_status(running=True)

        self.engine.every(interval, collect, job_id="agent-collect", serial=True)
        self.engine.start()
        try:
            stop.wait()
        finally:
            self.engine.stop()  # waits for the step in progress (a flush checks `stop` between sends)
            self.write_status(running=False)
        log.info("dashfleet agent stopped: %d report(s) left in the spool for the next start",
                    self.spool.depth())

    def write_status(self, *, running: bool) -> None:
        """Rewrite the status file the desktop app reads (see status_file.py); never raises."""
        if self.status_path is not None:
            write_status(self.status_path, self, running=running)

    def once(self) -> int:
        """Collect one report, try to deliver the whole spool once. Returns an exit code."""
        self._once = True
        try:
            self.collect()
        except SpoolError as exc:
            log.error("%s", exc)
            return EXIT_FAILED
        delivered = self.flush(threading.Event())
        self.write_status(running=False)
        if delivered:
            return EXIT_DELIVERED
        answer = self.last_answer
        if answer is not None and answer.kind == "blocked":
            return EXIT_REFUSED
        return EXIT_SPOOLED
