"""Every chat-platform input once: recorded before it is acknowledged, kept until it is handled, taken
over when the process that acknowledged it died. A collaborator of IncidentService."""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from . import connection, outbox, storage, telemetry
from .journal import JOURNALED_KINDS

log = logging.getLogger(__name__)

_RECENT = 4096  # keys this process recorded lately: Slack's redeliveries of them need no database write


class _RecentKeys:
    def __init__(self, size: int):
        self._keys: OrderedDict = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._keys

    def add(self, key: str) -> None:
        with self._lock:
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)


@dataclass(eq=False)
class _Input:
    key: str
    kind: str
    payload: str | None
    at: dt.datetime
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    new: bool = False
    error: BaseException | None = None


class _GroupCommit:
    """Inputs recorded together: those that arrive while one write is on its way wait for the next, and go in
    it together, one transaction (one sync to disk) for all of them instead of one each behind the same
    lock. In a storm of deliveries that is what keeps every ack within Slack's 3 s. Each write is led by the
    first input of its group; the leader hands on to the next one waiting."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting: list[_Input] = []
        self._writing = False

    def record(self, item: _Input, write) -> bool:
        """True when `item` is new; `write(group)` writes a group (setting each one's `new`) in one transaction."""
        with self._lock:
            self._waiting.append(item)
            if not self._writing:
                self._writing = item.lead = True
        if not item.lead:
            item.done.wait()
        if item.lead:
            with self._lock:
                group, self._waiting = self._waiting, []
            try:
                write(group)
            except BaseException as exc:
                for other in group:
                    other.error = exc
            finally:
                with self._lock:
                    if self._waiting:
                        self._waiting[0].lead = True
                        self._waiting[0].done.set()
                    else:
                        self._writing = False
                for other in group:
                    if other is not item:
                        other.done.set()
        if item.error is not None:
            raise item.error
        return item.new


def _write_inputs(group: list[_Input]) -> None:
    with storage.write(urgent=True):  # before Slack's ack: ahead of the handling of earlier inputs
        for item in group:  # the INSERT compiled once (Peewee building it cost more than SQLite running it)
            item.new = storage.change("record_input", _insert_input, (item.key, item.kind, item.at, item.payload)) == 1


def _insert_input(key, kind, at, payload):
    return storage.InboxEntry.insert(key=key, kind=kind, received_at=at, payload=payload).on_conflict_ignore()


class Inbox:
    """record_input, mark_processed, hold_inputs, take_over_inputs, unprocessed_inputs and prune."""

    def __init__(self, now: Callable[[], dt.datetime]):
        self.now = now  # naive UTC, from the service's clock
        self.journal = None  # a Journal (journal.py): where inputs go while the database cannot be written
        self._recorded = _RecentKeys(_RECENT)
        self._group_commit = _GroupCommit()

    # -- inputs, exactly once ------------------------------------------------------------------------
    def record_input(self, key: str, kind: str, payload: dict | None = None) -> bool:
        """Record an input under its unique key; False when it was recorded before (a redelivery), or when
        the database could not be written and it went to the journal instead (acked, handled once the
        database is back). Raises a database error when neither could take it."""
        key = key[:200]
        recorded = self._recorded
        if key in recorded:
            telemetry.emit("input", key=key, kind=kind, outcome="duplicate")
            return False
        journal = self.journal if kind in JOURNALED_KINDS else None
        if journal is not None and journal.pending:  # older inputs wait there: this one must not overtake them
            return self._journal(journal, key, kind, payload, None)
        try:
            new = connection.retrying(storage.database.obj, lambda: self._insert_input(key, kind, payload),
                                      what=f"recording input {key}")
        except connection.UNAVAILABLE as exc:
            if journal is None:
                raise
            return self._journal(journal, key, kind, payload, exc)
        recorded.add(key)
        telemetry.emit("input", key=key, kind=kind, outcome="received" if new else "duplicate")
        return new

    def record_journaled(self, key: str, kind: str, payload) -> bool:
        """The journal's replay: record an input it kept; True when the inbox did not have it yet."""
        new = connection.retrying(storage.database.obj, lambda: self._insert_input(key[:200], kind, payload),
                                  what=f"recording journaled input {key}")
        self._recorded.add(key[:200])
        telemetry.emit("input", key=key, kind=kind, outcome="received" if new else "duplicate")
        return new

    def _insert_input(self, key: str, kind: str, payload) -> bool:
        return self._group_commit.record(_Input(key, kind[:40], json.dumps(payload) if payload is not None else None,
                                      self.now()), _write_inputs)

    def _journal(self, journal, key: str, kind: str, payload, error) -> bool:
        journal.append(key, kind, payload)  # raises (no ack) when even the local disk refuses it
        self._recorded.add(key)
        if error is not None:
            log.warning("The database is unavailable (%s): input %s is kept in the journal, acked, and handled "
                        "when the database is back", connection.first_line(error), key)
        else:
            log.info("Input %s is kept in the journal behind the inputs waiting there", key)
        telemetry.emit("input", key=key, kind=kind, outcome="journaled")
        return False

    def prune(self, days: int = 14) -> int:
        """Housekeeping: forget handled inputs and sent outbox items older than `days` (the record stays)."""
        before = self.now() - dt.timedelta(days=days)
        with storage.write():
            inputs = storage.InboxEntry.delete().where(storage.InboxEntry.processed_at.is_null(False),
                                                       storage.InboxEntry.received_at < before).execute()
            return inputs + outbox.prune(before)

    def mark_processed(self, key: str | None) -> bool:
        """Mark an input handled; False when it was marked before (or there is none)."""
        if not key:
            return False
        inbox = storage.InboxEntry
        marked = bool(storage.change("mark_processed", lambda none, at, k: inbox.update(payload=none, processed_at=at)
                                     .where(inbox.key == k, inbox.processed_at.is_null()), (None, self.now(), key[:200])))
        if marked:
            telemetry.emit("input_handled", key=key)
        return marked

    def hold_inputs(self, keys: list[str]) -> int:
        """Renew the lease of inputs this process holds (recorded, queued, not handled yet: a storm's backlog),
        so that no process takes them over while it is alive (take_over_inputs goes by received_at)."""
        held, now = 0, self.now()
        for start in range(0, len(keys), 500):
            chunk = [key[:200] for key in keys[start:start + 500]]
            with storage.write():
                held += (storage.InboxEntry.update(received_at=now)
                         .where(storage.InboxEntry.key.in_(chunk), storage.InboxEntry.processed_at.is_null())
                         .execute())
        return held

    def take_over_inputs(self, received_before: dt.datetime) -> list[tuple]:
        """Inputs recorded before `received_before` and not handled (the process that acked them died):
        claimed for this process, (key, kind, payload) oldest first, however old (an input is never
        skipped without a word: each one taken over is logged with its age by the caller). A claim moves
        received_at to now, so that no other process takes the same input until it is that old again."""
        now, inbox = self.now(), storage.InboxEntry
        rows = (inbox.select(inbox.key, inbox.kind, inbox.payload, inbox.received_at)
                .where(inbox.processed_at.is_null(), inbox.payload.is_null(False),
                       inbox.received_at < received_before)
                .order_by(inbox.id))
        taken = []
        for row in rows:
            claimed = (inbox.update(received_at=now)
                       .where(inbox.key == row.key, inbox.processed_at.is_null(), inbox.received_at == row.received_at)
                       .execute())
            if claimed:
                payload = json.loads(row.payload)
                age = (now - row.received_at).total_seconds()
                if age > 15 * 60:
                    log.warning("Input %s (%s) was recorded %.0f minutes ago and never handled: handling it now",
                                row.key, row.kind, age / 60)
                taken.append((row.key, row.kind, payload))
        return taken

    def unprocessed_inputs(self, received_before: dt.datetime) -> list[tuple]:
        """Inputs recorded but never handled (the process died first): (key, kind, payload), oldest first."""
        rows = (storage.InboxEntry.select().where(storage.InboxEntry.processed_at.is_null(),
                                                  storage.InboxEntry.payload.is_null(False),
                                                  storage.InboxEntry.received_at < received_before)
                .order_by(storage.InboxEntry.id))
        return [(r.key, r.kind, json.loads(r.payload)) for r in rows]
