"""The worker that sends the outbox to Slack: retries with backoff, honours Retry-After, resumes after
a restart, and shares the work with other replicas through leases. It knows no kind: what an item does,
how long it waits first and what it is called come from its effects (Effects: plan, wait, what)."""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import random
import socket
import threading
import time

from peewee import DatabaseError, InterfaceError

import opg_incident_logs
from opg_incident_core import IncidentError, connection, outbox, storage
from opg_incident_core.errors import OutsideError

from .errors import SlackError

log = logging.getLogger(__name__)
DATABASE_ERRORS = (DatabaseError, InterfaceError)


class OutboxWorker(threading.Thread):
    def __init__(self, effects, *, poll_seconds: float = 0.25, lease_seconds: float = 30.0,
                 max_attempts: int = 12):
        super().__init__(name="opg-outbox", daemon=True)
        self.effects = effects
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._wake = threading.Event()
        self._stopping = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        down_since = None
        while not self._stopping.is_set():
            wait = self.poll_seconds
            try:
                worked = self.run_once()
                if down_since is not None:
                    log.warning("The outbox goes on: the database is back after %.0f s", time.monotonic() - down_since)
                    down_since = None
            except DATABASE_ERRORS as exc:  # one line, not a traceback four times a second
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("The outbox waits: the database is unavailable (%s)", connection.first_line(exc))
                connection.forget(storage.database.obj)  # a fresh connection next time
                worked, wait = False, min(5.0, max(self.poll_seconds, 1.0))
            except Exception:
                log.exception("The outbox worker hit an error; it goes on")
                connection.forget(storage.database.obj)
                worked = False
            if not worked:
                self._wake.wait(wait)
                self._wake.clear()
        connection.forget(storage.database.obj)

    def run_once(self) -> bool:
        """Send what is due; True when something was claimed."""
        now = self.effects.service.now()
        items = outbox.claim(self.owner, now, limit=10, lease_seconds=self.lease_seconds)
        for item in items:
            if self._stopping.is_set():
                break
            with opg_incident_logs.about(item.number):  # its log lines name the incident
                self.send(item)
        return bool(items)

    def send(self, item: outbox.Item) -> None:
        if item.attempts > self.max_attempts:  # claimed again and again and never finished (a crash each time?)
            self._park(item, f"tried {item.attempts - 1} times without finishing")
            return
        if item.step == 0 and self._not_yet(item):
            return
        try:
            steps = self.effects.plan(item)
        except IncidentError as exc:
            log.info("Outbox item %s (%s) has nothing to do: %s", item.id, item.kind, exc)
            steps = []
        for index in range(item.step, len(steps)):
            verify = item.may_have_sent and index == item.step
            if not outbox.hold(item.id, self.owner, self.effects.service.now(), self.lease_seconds, index):
                log.warning("Outbox item %s (%s): the lease ran out; another worker has it", item.id, item.kind)
                return
            try:
                with self._lease_kept(item.id, index), self._once(f"{item.id}.{index}", verify, item.created_at):
                    steps[index]()
            except (SlackError, OutsideError) as exc:  # Slack, or another service (Confluence)
                if not exc.transient:  # Slack will not change its mind: not again, and not in silence
                    self._park(item, _described(exc), index)
                    return
                delay = exc.retry_after or min(300.0, 2.0 ** item.attempts) * (0.5 + random.random())
                if outbox.retry(item.id, self.effects.service.now(), delay, str(exc), self.max_attempts,
                                owner=self.owner):
                    log.info("Outbox item %s (%s): %s; again in %.1f s", item.id, item.kind,
                             getattr(exc, "code", exc), delay)
                else:
                    self._park(item, f"{_described(exc)} (tried {item.attempts} times)", index)
                return
            except IncidentError as exc:
                log.info("Outbox item %s (%s) step %s: %s", item.id, item.kind, index, exc)
            except DATABASE_ERRORS:
                raise  # the database, not the item: the run loop waits and the lease brings the item back
            except Exception as exc:  # a bug, or a failure nobody foresaw: tried again, then parked
                log.exception("Outbox item %s (%s) step %s failed", item.id, item.kind, index)
                delay = min(300.0, 2.0 ** item.attempts)
                if not outbox.retry(item.id, self.effects.service.now(), delay, repr(exc), self.max_attempts,
                                    owner=self.owner):
                    self._park(item, f"{type(exc).__name__} (tried {item.attempts} times)", index)
                return
            if not outbox.advanced(item.id, index + 1, owner=self.owner):
                return
        outbox.done(item.id, self.effects.service.now(), owner=self.owner)

    def _park(self, item: outbox.Item, error: str, step: int | None = None) -> None:
        """Give the item up, log it, and tell the incident's lead (the reporter when there is none), unless
        the item was itself such a message."""
        tell, who = None, None
        if item.number is not None and not item.payload.get("about_parked"):
            with contextlib.suppress(IncidentError):
                inc = self.effects.service.get(item.number)
                who = inc.roles.get("lead") or inc.reporter
            what = (self.effects.what(item.kind) if hasattr(self.effects, "what") else None) or \
                f"announce the change ({item.kind})"
            text = (f"⚠️ Incident {item.number}: I could not {what}, and I will not try again: {error}. "
                    f"Please do it by hand if it matters; a bot admin can see the details in the log "
                    f"(outbox item {item.id}).")
            if who and who[:1] in "UW":
                tell = {"user": who, "channel": None, "text": text}
        if outbox.park(item.id, self.effects.service.now(), error, owner=self.owner, tell=tell):
            log.error("Outbox item %s (%s) of incident %s parked at step %s: %s; %s", item.id, item.kind,
                      item.number, step, error, f"{who} is told" if tell else "nobody to tell")
            self.wake()

    def _once(self, key: str, verify: bool, created_at: dt.datetime | None):
        """Slack posts of a step carry its key (see SlackGateway.once); a retry looks for them among the messages
        since the item was made (a minute earlier, for clocks that differ). The Text console has no Slack."""
        slack = getattr(self.effects, "slack", None)
        if slack is None:
            return contextlib.nullcontext()
        since = created_at.replace(tzinfo=dt.timezone.utc).timestamp() - 60 if created_at else None
        return slack.once(key, verify, since)

    @contextlib.contextmanager
    def _lease_kept(self, item_id: int, step: int):
        """Renew the lease while a step runs: a Slack call slower than the lease (Retry-After waits inside
        the client, a slow answer) must not let another worker take the item and send it a second time."""
        stop = threading.Event()

        def renew():
            try:
                while not stop.wait(self.lease_seconds / 3):
                    outbox.hold(item_id, self.owner, self.effects.service.now(), self.lease_seconds, step)
            except Exception:
                log.exception("Could not renew the lease of outbox item %s", item_id)
            finally:
                connection.forget(storage.database.obj)

        thread = threading.Thread(target=renew, name="opg-outbox-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _not_yet(self, item: outbox.Item) -> bool:
        """The item's kind has it wait (the pace of headline edits, of answers in a channel): not yet, then."""
        try:
            wait = self.effects.wait(item) if hasattr(self.effects, "wait") else 0.0
        except IncidentError:
            return False  # its plan says why there is nothing to do
        if wait <= 0:
            return False
        outbox.postpone(item.id, self.effects.service.now() + dt.timedelta(seconds=wait), self.owner)
        return True

def _described(exc) -> str:
    """The error as people read it, with Slack's own code (what a search finds)."""
    code = getattr(exc, "code", None)
    return f"{exc} [{code}]" if code and code not in str(exc) else str(exc)
