"""The timeline and the scribe's log: notes, decisions and actions logged by command; pinned messages
recorded at the message's own time, removed when unpinned (the row is kept), edited with the message, pin
and unpin events handled in any order. A collaborator of IncidentService."""
from __future__ import annotations

import datetime as dt
import json

from peewee import fn

from . import storage
from .errors import InvalidInput, NotFound
from .records import Records
from .storage import Action, Incident, TimelineEntry
from .text import clean as _text
from .views import ActionView, Happened, Outcome, TimelineView

LOG_KINDS = ("action", "note", "decision")


class Timeline:
    def __init__(self, records: Records):
        self.records = records

    # -- the scribe's log ---------------------------------------------------------------------------
    def log(self, number: int, kind: str, text: str, by: str) -> Outcome:
        if kind not in LOG_KINDS:
            raise InvalidInput(f"{kind!r} cannot be logged; choose one of {', '.join(LOG_KINDS)}.")
        text = _text(text)
        if not text.strip():
            raise InvalidInput(f"Say what the {kind} is: `{kind} <text>`.")
        records = self.records
        with storage.write():
            row = records.incident(number, lock=True)
            if kind == "action":
                next_no = (Action.select(fn.MAX(Action.number)).where(Action.incident == row).scalar() or 0) + 1
                Action.create(incident=row, number=next_no, text=text, owner=by, created_at=records.now())
                entry = records.log(row, kind, by, f"Action {next_no}: {text}")
            else:
                entry = records.log(row, kind, by, text)
            return records.outcome(row, [Happened(kind, by, new=text, entry_id=entry)])

    def complete_action(self, number: int, action_number: int, by: str) -> Outcome:
        records = self.records
        with storage.write():
            row = records.incident(number, lock=True)
            action = Action.get_or_none(Action.incident == row, Action.number == action_number)
            if action is None:
                raise NotFound(f"Incident {row.number} has no action {action_number}; `actions` lists them.")
            if action.done:
                raise InvalidInput(f"Action {action_number} was already done.")
            action.done, action.done_at, action.done_by = True, records.now(), by
            action.save()
            records.log(row, "action_done", by, f"Action {action_number} done: {action.text}")
            return records.outcome(row, [Happened("action_done", by, new=str(action_number))])

    def timeline(self, number: int) -> list[TimelineView]:
        row = self.records.incident(number)
        return [TimelineView.of(e) for e in TimelineEntry.select().where(
            TimelineEntry.incident == row, TimelineEntry.removed_at.is_null()
        ).order_by(TimelineEntry.at, TimelineEntry.id)]

    def actions(self, number: int) -> list[ActionView]:
        row = self.records.incident(number)
        return [ActionView.of(a) for a in Action.select().where(Action.incident == row).order_by(Action.number)]

    # -- pins ---------------------------------------------------------------------------------------
    def record_pin(self, channel_id: str, message_ts: str, author: str, text: str, by: str, *,
                   at: dt.datetime | None = None, permalink: str | None = None,
                   thread_ts: str | None = None, files: list[dict] | None = None,
                   event_ts: str | None = None) -> Outcome:
        """A pinned message joins the timeline at the message's own time; pinning twice changes nothing,
        and a pin older (by `event_ts`) than an unpin already applied changes nothing either."""
        when = storage.naive_utc(at or _ts_time(message_ts) or self.records.now())
        with storage.write():
            row = self.records.incident_for_channel(channel_id, lock=True)
            entry = self._pin_entry(row, channel_id, message_ts)
            if entry is not None and (entry.removed_at is None or _older(event_ts, entry.pin_event_ts)):
                return self.records.outcome(row, [])
            values = dict(at=when, author=author, text=_text(text), permalink=permalink, thread_ts=thread_ts,
                          files=json.dumps(files or []), removed_at=None, recorded_at=self.records.now(),
                          pin_event_ts=event_ts)
            if entry is None:
                entry_id = storage.insert(TimelineEntry, dict(incident=row.id, kind="pin", source_channel=channel_id,
                                                              source_ts=message_ts, **values))
            else:
                entry_id = entry.id
                TimelineEntry.update(**values).where(TimelineEntry.id == entry.id).execute()
            return self.records.outcome(row, [Happened("pin", by, new=text, entry_id=entry_id)])

    def remove_pin(self, channel_id: str, message_ts: str, by: str, event_ts: str | None = None) -> Outcome:
        """Unpinned (or the message deleted): off the timeline, but the row is kept. An unpin that
        overtakes its pin leaves a removed row behind, so the late pin changes nothing."""
        with storage.write():
            row = self.records.incident_for_channel(channel_id, lock=True)
            entry = self._pin_entry(row, channel_id, message_ts)
            if entry is None:
                if event_ts:
                    now = self.records.now()
                    storage.insert(TimelineEntry, dict(
                        incident=row.id, kind="pin", at=_ts_time(message_ts) or now, author="", text="",
                        recorded_at=now, source_channel=channel_id, source_ts=message_ts, thread_ts=None,
                        permalink=None, files="[]", removed_at=now, pin_event_ts=event_ts))
                return self.records.outcome(row, [])
            if entry.removed_at is not None or _older(event_ts, entry.pin_event_ts):
                return self.records.outcome(row, [])
            TimelineEntry.update(removed_at=self.records.now(), pin_event_ts=event_ts or entry.pin_event_ts) \
                .where(TimelineEntry.id == entry.id).execute()
            return self.records.outcome(row, [Happened("unpin", by)])

    def _pin_entry(self, row: Incident, channel_id: str, message_ts: str) -> TimelineEntry | None:
        found = storage.run("pin_entry", lambda i, k, c, t, one: (
            TimelineEntry.select(TimelineEntry.id, TimelineEntry.removed_at, TimelineEntry.pin_event_ts)
            .where(TimelineEntry.incident == i, TimelineEntry.kind == k, TimelineEntry.source_channel == c,
                   TimelineEntry.source_ts == t).limit(one)), (row.id, "pin", channel_id, message_ts, 1),
            model=TimelineEntry)
        return found[0] if found else None

    def edit_pinned_message(self, channel_id: str, message_ts: str, text: str, by: str) -> Outcome:
        with storage.write():
            row = self.records.incident_for_channel(channel_id, lock=True)
            n = (TimelineEntry.update(text=_text(text))
                 .where(TimelineEntry.incident == row, TimelineEntry.kind == "pin",
                        TimelineEntry.source_channel == channel_id, TimelineEntry.source_ts == message_ts,
                        TimelineEntry.removed_at.is_null(), TimelineEntry.text != _text(text)).execute())
            return self.records.outcome(row, [Happened("pin_edited", by, new=text)] if n else [])


def _older(event_ts: str | None, applied_ts: str | None) -> bool:
    """True when an event is older than the one already applied (Slack's ts: seconds.micros)."""
    try:
        return event_ts is not None and applied_ts is not None and float(event_ts) < float(applied_ts)
    except ValueError:
        return False


def _ts_time(ts: str | None) -> dt.datetime | None:
    try:
        return storage.naive_utc(dt.datetime.fromtimestamp(float(ts), dt.timezone.utc))
    except (TypeError, ValueError, OverflowError, OSError):
        return None
