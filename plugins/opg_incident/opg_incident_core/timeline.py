"""The timeline and the scribe's log: notes, decisions and actions logged by command; pinned messages
recorded at the message's own time, removed when unpinned or deleted (the row is kept), edited with the message;
pin, unpin, edit and delete events handled in any order. A collaborator of IncidentService."""
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
                   event_ts: str | None = None, edited_ts: str | None = None) -> Outcome:
        """A pinned message joins the timeline at the message's own time; pinning twice changes nothing,
        and a pin older (by `event_ts`) than an unpin or deletion already applied changes nothing either.
        `edited_ts` is the pinned text's edit (message.edited.ts): an edit handled first is kept when newer."""
        when = storage.naive_utc(at or _ts_time(message_ts) or self.records.now())
        with storage.write():
            row = self.records.incident_for_channel(channel_id, lock=True)
            entry = self._pin_entry(row, channel_id, message_ts)
            if entry is not None and (entry.removed_at is None or older(event_ts, entry.pin_event_ts)):
                return self.records.outcome(row, [])
            if entry is not None and _awaiting_pin(entry) and entry.edited_ts and not older(entry.edited_ts,
                                                                                             edited_ts or "0"):
                text, edited_ts = entry.text, entry.edited_ts  # an edit handled before its pin, newer than its text
            values = dict(at=when, author=author, text=_text(text), permalink=permalink, thread_ts=thread_ts,
                          files=json.dumps(files or []), removed_at=None, recorded_at=self.records.now(),
                          pin_event_ts=event_ts, edited_ts=edited_ts)
            if entry is None:
                entry_id = storage.insert(TimelineEntry, dict(incident=row.id, kind="pin", source_channel=channel_id,
                                                              source_ts=message_ts, **values))
            else:
                entry_id = entry.id
                TimelineEntry.update(**values).where(TimelineEntry.id == entry.id).execute()
            return self.records.outcome(row, [Happened("pin", by, new=text, entry_id=entry_id)])

    def remove_pin(self, channel_id: str, message_ts: str, by: str, event_ts: str | None = None,
                   pinned: bool = True) -> Outcome:
        """Unpinned (or the message deleted): off the timeline, but the row is kept. An unpin or deletion
        that overtakes its pin leaves a removed row behind (or its `event_ts` on one), so the late pin changes
        nothing; a deletion leaves one only when the message was `pinned` (Slack's pinned_to names the channel)."""
        with storage.write():
            row = self.records.incident_for_channel(channel_id, lock=True)
            entry = self._pin_entry(row, channel_id, message_ts)
            if entry is None:
                if event_ts and pinned:
                    self._awaiting(row, channel_id, message_ts, text="", pin_event_ts=event_ts, edited_ts=None)
                return self.records.outcome(row, [])
            if entry.removed_at is not None and event_ts and not older(event_ts, entry.pin_event_ts):
                TimelineEntry.update(pin_event_ts=event_ts).where(TimelineEntry.id == entry.id).execute()
            if entry.removed_at is not None or older(event_ts, entry.pin_event_ts):
                return self.records.outcome(row, [])
            TimelineEntry.update(removed_at=self.records.now(), pin_event_ts=event_ts or entry.pin_event_ts) \
                .where(TimelineEntry.id == entry.id).execute()
            return self.records.outcome(row, [Happened("unpin", by)])

    def _awaiting(self, row: Incident, channel_id: str, message_ts: str, **values) -> None:
        """A removed row for a pin not handled yet, holding what overtook it (an unpin or deletion: its
        `pin_event_ts`; an edit: its `text` and `edited_ts`), for the pin to find when it comes."""
        now = self.records.now()
        storage.insert(TimelineEntry, dict(
            incident=row.id, kind="pin", at=_ts_time(message_ts) or now, author="", recorded_at=now,
            source_channel=channel_id, source_ts=message_ts, thread_ts=None, permalink=None, files="[]",
            removed_at=now, **values))

    def _pin_entry(self, row: Incident, channel_id: str, message_ts: str) -> TimelineEntry | None:
        found = storage.run("pin_entry", lambda i, k, c, t, one: (
            TimelineEntry.select(TimelineEntry.id, TimelineEntry.author, TimelineEntry.text, TimelineEntry.removed_at,
                                 TimelineEntry.pin_event_ts, TimelineEntry.edited_ts)
            .where(TimelineEntry.incident == i, TimelineEntry.kind == k, TimelineEntry.source_channel == c,
                   TimelineEntry.source_ts == t).limit(one)), (row.id, "pin", channel_id, message_ts, 1),
            model=TimelineEntry)
        return found[0] if found else None

    def edit_pinned_message(self, channel_id: str, message_ts: str, text: str, by: str,
                            edited_ts: str | None = None, pinned: bool = False) -> Outcome:
        """The pinned message's new text, unless the text kept is from a later edit (`edited_ts`: the edit's
        message.edited.ts). An edit of a `pinned` message (Slack's pinned_to names the channel) handled before
        its pin is kept on a removed row for the pin to find."""
        text = _text(text)
        with storage.write():
            row = self.records.incident_for_channel(channel_id, lock=True)
            entry = self._pin_entry(row, channel_id, message_ts)
            if entry is None:
                if edited_ts and pinned:
                    self._awaiting(row, channel_id, message_ts, text=text, pin_event_ts=None, edited_ts=edited_ts)
                return self.records.outcome(row, [])
            awaiting_pin = _awaiting_pin(entry)
            if (entry.removed_at is not None and not awaiting_pin) or older(edited_ts, entry.edited_ts) or (
                    entry.text == text and edited_ts == entry.edited_ts):
                return self.records.outcome(row, [])  # unpinned or deleted: the row keeps its text
            TimelineEntry.update(text=text, edited_ts=edited_ts or entry.edited_ts) \
                .where(TimelineEntry.id == entry.id).execute()
            shown = not awaiting_pin and entry.text != text
            return self.records.outcome(row, [Happened("pin_edited", by, new=text)] if shown else [])


def _awaiting_pin(entry: TimelineEntry) -> bool:
    """The removed row an edit handled before its pin left (no pin, unpin or deletion applied to it yet)."""
    return entry.removed_at is not None and entry.pin_event_ts is None and not entry.author


def older(event_ts: str | None, applied_ts: str | None) -> bool:
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
