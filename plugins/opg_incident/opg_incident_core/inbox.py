"""Every chat-platform input once: recorded before it is acknowledged, kept until it is handled, taken
over when the process that acknowledged it died. Part of IncidentService."""
from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict

from peewee import IntegrityError

from . import outbox, storage, telemetry

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




class InboxMixin:
    """Provides record_input, mark_processed, take_over_inputs, unprocessed_inputs and prune."""

    # -- inputs, exactly once ------------------------------------------------------------------------
    def record_input(self, key: str, kind: str, payload: dict | None = None) -> bool:
        """Record an input under its unique key; False when it was recorded before (a redelivery)."""
        key = key[:200]
        recorded = self.__dict__.setdefault("_recorded_inputs", _RecentKeys(_RECENT))
        if key in recorded:
            telemetry.emit("input", key=key, kind=kind, outcome="duplicate")
            return False
        try:
            with storage.write(urgent=True):  # before Slack's ack: ahead of the handling of earlier inputs
                storage.InboxEntry.create(key=key, kind=kind[:40], received_at=self.now(),
                                          payload=json.dumps(payload) if payload is not None else None)
            recorded.add(key)
        except IntegrityError:
            recorded.add(key)
            telemetry.emit("input", key=key, kind=kind, outcome="duplicate")
            return False
        telemetry.emit("input", key=key, kind=kind, outcome="received")
        return True

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
        marked = bool(storage.InboxEntry.update(processed_at=self.now(), payload=None)
                      .where(storage.InboxEntry.key == key[:200], storage.InboxEntry.processed_at.is_null()).execute())
        if marked:
            telemetry.emit("input_handled", key=key)
        return marked

    def take_over_inputs(self, received_before: dt.datetime, max_age_minutes: int = 15) -> list[tuple]:
        """Inputs recorded before `received_before` and not handled (the process that acked them died):
        claimed for this process, (key, kind, payload) oldest first. A claim moves received_at to now, so
        that no other process takes the same input until it is that old again. Events older than
        max_age_minutes (by Slack's event_time) are left alone."""
        now, inbox = self.now(), storage.InboxEntry
        too_old = now.replace(tzinfo=dt.timezone.utc).timestamp() - max_age_minutes * 60
        rows = (inbox.select(inbox.key, inbox.kind, inbox.payload, inbox.received_at)
                .where(inbox.processed_at.is_null(), inbox.payload.is_null(False),
                       inbox.received_at < received_before,
                       inbox.received_at >= received_before - dt.timedelta(minutes=max_age_minutes))
                .order_by(inbox.id))
        taken = []
        for row in rows:
            payload = json.loads(row.payload)
            event_time = payload.get("event_time") if isinstance(payload, dict) else None
            if isinstance(event_time, (int, float)) and event_time < too_old:
                continue
            claimed = (inbox.update(received_at=now)
                       .where(inbox.key == row.key, inbox.processed_at.is_null(), inbox.received_at == row.received_at)
                       .execute())
            if claimed:
                taken.append((row.key, row.kind, payload))
        return taken

    def unprocessed_inputs(self, received_before: dt.datetime, max_age_minutes: int = 15) -> list[tuple]:
        """Inputs recorded but never handled (the process died first): (key, kind, payload), oldest first."""
        since = received_before - dt.timedelta(minutes=max_age_minutes)
        rows = (storage.InboxEntry.select().where(storage.InboxEntry.processed_at.is_null(),
                                                  storage.InboxEntry.payload.is_null(False),
                                                  storage.InboxEntry.received_at < received_before,
                                                  storage.InboxEntry.received_at >= since)
                .order_by(storage.InboxEntry.id))
        return [(r.key, r.kind, json.loads(r.payload)) for r in rows]
