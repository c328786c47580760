"""The unit of work every collaborator of IncidentService is given: the incident's row (locked for a change),
what it says now, its timeline entries, the Outcome of an operation, the clock, the settings and the
permission policy. Public on purpose: the collaborators (incidents, roles, check-ins, comms, closing,
timeline, inbox) share this and nothing private of each other."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Callable, Iterable

from . import outbox, storage
from .authority import Authority
from .errors import AlreadyHandled, NotFound
from .settings import Settings
from .storage import Incident, RoleAssignment, TimelineEntry
from .subscribers import Recorded, Subscribers
from .views import IncidentView, Outcome

REASON = ": "  # between "closed the incident" and its reason on the timeline


class Records:
    def __init__(self, settings: Callable[[], Settings], now: Callable[[], dt.datetime], authority: Authority,
                 mark_handled: Callable[[str], bool]):
        self._settings = settings
        self.now = now  # naive UTC, from the service's clock
        self.authority = authority
        self.subscribers = Subscribers()  # none without a chat adapter (the Text console): nothing is queued
        self._mark_handled = mark_handled  # the inbox's: the input that caused a change, marked with it

    @property
    def settings(self) -> Settings:
        return self._settings()

    # -- rows ---------------------------------------------------------------------------------------
    def incident(self, number: int, lock: bool = False) -> Incident:
        found = storage.run("incident", lambda n, one: Incident.select().where(Incident.number == n).limit(one),
                            (number, 1), lock=lock, model=Incident)
        if not found:
            raise NotFound(f"There is no incident {number}; `incident list all` shows them.")
        return found[0]

    def incident_for_channel(self, channel_id: str, lock: bool = False) -> Incident:
        found = storage.run("incident_for_channel",
                            lambda c, one: Incident.select().where(Incident.channel_id == c).limit(one),
                            (channel_id, 1), lock=lock, model=Incident)
        if not found:
            raise NotFound("This channel does not belong to an incident.")
        return found[0]

    def holders(self, row: Incident) -> dict[str, str]:
        """Who holds each role of the incident now: {role key: holder}."""
        return dict(storage.run("holders", lambda i: RoleAssignment.select(RoleAssignment.role, RoleAssignment.holder)
                                .where(RoleAssignment.incident == i, RoleAssignment.released_at.is_null()),
                                (row.id,)))

    # -- what a change writes and returns -----------------------------------------------------------
    def log(self, row: Incident, kind: str, author: str, text: str) -> int:
        """A timeline entry for something that happened now; its id."""
        now = self.now()
        return storage.insert(TimelineEntry, dict(
            incident=row.id, kind=kind, at=now, author=author, text=text, recorded_at=now, source_channel=None,
            source_ts=None, thread_ts=None, permalink=None, files="[]", removed_at=None, pin_event_ts=None,
            edited_ts=None))

    def view(self, row: Incident) -> IncidentView:
        """What an incident's row says now, with its roles (and why it was closed)."""
        view = IncidentView.of(row, self.holders(row))
        if row.status == "closed":  # why it was closed: the reason on its latest "closed" entry
            entry = TimelineEntry.select(TimelineEntry.text).where(
                TimelineEntry.incident == row, TimelineEntry.kind == "closed").order_by(TimelineEntry.id.desc()).first()
            _, said, reason = (entry.text if entry else "").partition(" closed the incident" + REASON)
            view = dataclasses.replace(view, close_reason=reason if said else None)
        return view

    def outcome(self, row: Incident, happened: list, warnings: Iterable[str] = ()) -> Outcome:
        """The result of an operation; inside its transaction, the input marked handled and the subscribers told."""
        key = outbox.input_to_mark() if happened else None
        if key and not self._mark_handled(key):  # the input and its effect commit together, once
            raise AlreadyHandled("That was done already.")  # by another process: this change rolls back
        view = self.view(row)
        if happened and self.subscribers:
            self.subscribers.publish(Recorded(view, tuple(happened), self.now(), row))
        return Outcome(view, tuple(happened), tuple(warnings))

    def format_time(self, value: dt.datetime | None) -> str:
        if value is None:
            return "-"
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(self.settings.zone).strftime("%Y-%m-%d %H:%M %Z")
