"""The incident process as operations on the record. No chat platform in here.

Every change lands on the timeline with its time and author, in the same transaction as the change,
and every operation returns an Outcome saying what happened; the subscribers adapters registered hear it
in that transaction (subscribers.py) and decide what their platform is told.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Callable, Iterable

from peewee import IntegrityError, PostgresqlDatabase, fn

from . import outbox, storage
from .errors import AlreadyHandled, InvalidInput, NotAllowed, NotFound, SettingsError
from .closing import REASON, ClosingMixin, close_reason
from .comms import CommsMixin
from .inbox import InboxMixin
from .pins import PinsMixin
from .reminders import CheckinsMixin
from .roles import RolesMixin
from .settings import Settings
from .storage import Action, Incident, RoleAssignment, TimelineEntry
from .subscribers import Recorded, Subscriber, Subscribers
from .text import clean as _text, defuse, mention
from .views import ActionView, Happened, IncidentView, Outcome, TimelineView

MAX_TITLE = 300
LOG_KINDS = ("action", "note", "decision")
from .authority import SYSTEM, Authority  # noqa: E402  (SYSTEM re-exported)
NUMBERING_LOCK = 31410001  # pg_advisory_xact_lock key guarding incident numbers


class IncidentService(RolesMixin, CheckinsMixin, CommsMixin, ClosingMixin, PinsMixin, InboxMixin):
    def __init__(self, settings: Callable[[], Settings], admins: Iterable[str] = (),
                 clock: Callable[[], dt.datetime] = storage.utcnow):
        self._settings = settings
        self.admins = frozenset(admins)
        self._now = clock
        self._subscribers = Subscribers()  # none without a chat adapter (the Text console): nothing is queued

    @property
    def settings(self) -> Settings:
        return self._settings()

    def now(self) -> dt.datetime:
        return storage.naive_utc(self._now())

    def is_admin(self, user: str) -> bool:
        return user in self.admins

    def subscribe(self, subscriber: Subscriber, kinds: Iterable[str] | None = None) -> None:
        """`subscriber(recorded)` hears every change in which something of `kinds` (None: anything) happened,
        inside the change's transaction: what it queues in the outbox commits with the change."""
        self._subscribers.subscribe(subscriber, kinds)

    def hears(self, kind: str) -> bool:
        """Some adapter acts on what happened of `kind`."""
        return self._subscribers.hears(kind)

    @property
    def authority(self) -> Authority:
        """Every "X or a bot admin may" rule of the operations goes through this one object."""
        return Authority(self.is_admin)

    # -- declare ------------------------------------------------------------------------------------
    def declare(self, title: str, reporter: str, *, report: bool = False, drill: bool = False,
                summary: str = "", impact: str = "", severity: str | None = None,
                lead: str | None = None) -> Outcome:
        title = " ".join((title or "").split())
        if not title:
            raise InvalidInput("An incident needs a title: say in a sentence what has happened.")
        if len(title) > MAX_TITLE:
            raise InvalidInput(f"The title is {len(title)} characters long; keep it under {MAX_TITLE} "
                               "and put the detail in the summary.")
        sev = self._severity(severity) if severity else None
        for _attempt in range(20):
            try:
                with storage.write():
                    if isinstance(storage.database.obj, PostgresqlDatabase):
                        # Serialise numbering: without it concurrent declares collide on the same number
                        # and a loser can exhaust its retries. (SQLite's IMMEDIATE transaction does this.)
                        storage.database.obj.execute_sql("SELECT pg_advisory_xact_lock(%s)", (NUMBERING_LOCK,))
                    number = (Incident.select(fn.MAX(Incident.number)).scalar() or 0) + 1
                    now = self.now()
                    row = Incident.create(number=number, title=title, report=report, drill=drill,
                                          summary=_text(summary), impact=_text(impact),
                                          severity=sev.key if sev else None, reporter=reporter,
                                          declared_at=now, lead_updated_at=now)
                    kind = "a report" if report else ("a drill" if drill else "an incident")
                    self._log(row, "declared", reporter, f"{mention(reporter)} declared {kind}: {title}")
                    happened = [Happened("declared", reporter, new=title)]
                    if sev:
                        self._log(row, "severity", reporter, f"Severity set to {sev.name}")
                    if lead:
                        self._assign(row, "lead", lead, reporter, happened)
                    return self._outcome(row, happened)
            except IntegrityError:
                continue  # another process took this number at the same moment: take the next one
        raise RuntimeError("could not allocate an incident number")

    # -- the lead's updates -------------------------------------------------------------------------
    def set_title(self, number: int, title: str, by: str) -> Outcome:
        title = " ".join((title or "").split())
        if not title or len(title) > MAX_TITLE:
            raise InvalidInput(f"A title is one sentence of 1 to {MAX_TITLE} characters.")
        with storage.write():
            row = self._incident(number, lock=True)
            old = row.title
            if old == title:
                return self._outcome(row, [])
            row.title = title
            storage.save_fields(row, Incident.title)
            self._log(row, "title", by, f"Title changed from {old!r} to {title!r}")
            return self._outcome(row, [Happened("edited", by, old=old, new=title)])

    def set_summary(self, number: int, text: str, by: str) -> Outcome:
        return self._set_text(number, "summary", text, by)

    def set_impact(self, number: int, text: str, by: str) -> Outcome:
        return self._set_text(number, "impact", text, by)

    def _set_text(self, number: int, field: str, text: str, by: str) -> Outcome:
        text = _text(text)
        if not text.strip():
            raise InvalidInput(f"Say what the {field} is: `{field} <text>`.")
        with storage.write():
            row = self._incident(number, lock=True)
            old = getattr(row, field)
            if old == text:
                return self._outcome(row, [])
            setattr(row, field, text)
            row.lead_updated_at = self.now()
            storage.save_fields(row, getattr(Incident, field), Incident.lead_updated_at)
            self._log(row, field, by, f"{field.capitalize()} updated: {text}")
            return self._outcome(row, [Happened(field, by, old=old, new=text)])

    def set_severity(self, number: int, text: str, by: str) -> Outcome:
        sev = self._severity(text)
        with storage.write():
            row = self._incident(number, lock=True)
            old = self.settings.severity(row.severity)
            if row.severity == sev.key:
                return self._outcome(row, [])
            row.severity = sev.key
            storage.save_fields(row, Incident.severity)
            change = f"changed from {old.name} to {sev.name}" if old else f"set to {sev.name}"
            self._log(row, "severity", by, f"Severity {change}")
            return self._outcome(row, [Happened("severity", by, old=old.key if old else None, new=sev.key)])

    def _severity(self, text: str):
        sev = self.settings.parse_severity(text or "")
        if sev is None:
            allowed = ", ".join(s.name for s in self.settings.severities)
            raise InvalidInput(f"'{defuse((text or '').strip())}' is not a severity. Choose one of: {allowed}.")
        return sev

    # -- the scribe's log ---------------------------------------------------------------------------
    def log(self, number: int, kind: str, text: str, by: str) -> Outcome:
        if kind not in LOG_KINDS:
            raise InvalidInput(f"{kind!r} cannot be logged; choose one of {', '.join(LOG_KINDS)}.")
        text = _text(text)
        if not text.strip():
            raise InvalidInput(f"Say what the {kind} is: `{kind} <text>`.")
        with storage.write():
            row = self._incident(number, lock=True)
            if kind == "action":
                next_no = (Action.select(fn.MAX(Action.number)).where(Action.incident == row).scalar() or 0) + 1
                Action.create(incident=row, number=next_no, text=text, owner=by, created_at=self.now())
                entry = self._log(row, kind, by, f"Action {next_no}: {text}")
            else:
                entry = self._log(row, kind, by, text)
            return self._outcome(row, [Happened(kind, by, new=text, entry_id=entry)])

    def complete_action(self, number: int, action_number: int, by: str) -> Outcome:
        with storage.write():
            row = self._incident(number, lock=True)
            action = Action.get_or_none(Action.incident == row, Action.number == action_number)
            if action is None:
                raise NotFound(f"Incident {row.number} has no action {action_number}; `actions` lists them.")
            if action.done:
                raise InvalidInput(f"Action {action_number} was already done.")
            action.done, action.done_at, action.done_by = True, self.now(), by
            action.save()
            self._log(row, "action_done", by, f"Action {action_number} done: {action.text}")
            return self._outcome(row, [Happened("action_done", by, new=str(action_number))])

    # -- close and reopen ---------------------------------------------------------------------------
    def close(self, number: int, by: str, reason: str = "resolved") -> Outcome:
        """Close, for one of the process's two reasons: `resolved`, or `blocked until <a later date>`; the
        reason goes on the timeline and the headline."""
        reason = close_reason(reason)
        with storage.write():
            row = self._incident(number, lock=True)
            if row.status == "closed":
                when = self.format_time(row.closed_at)
                raise InvalidInput(f"Incident {row.number} was already closed at {when}.")
            self._lead_or_admin(row, by, "close")
            row.status, row.closed_at, row.closed_by = "closed", self.now(), by
            row.save()
            self._log(row, "closed", by, f"{mention(by)} closed the incident{REASON}{reason}")
            return self._outcome(row, [Happened("closed", by, new=reason)])

    def reopen(self, number: int, by: str) -> Outcome:
        with storage.write():
            row = self._incident(number, lock=True)
            if row.status == "open":
                raise InvalidInput(f"Incident {row.number} is still open.")
            self._lead_or_admin(row, by, "reopen")
            row.status, row.closed_at, row.closed_by = "open", None, None
            row.channel_archived_at = None
            row.save()
            self._log(row, "reopened", by, f"{mention(by)} reopened the incident")
            return self._outcome(row, [Happened("reopened", by)])

    def _lead_or_admin(self, row: Incident, by: str, verb: str) -> None:
        """Close, reopen, archive: the Incident Lead or a bot admin."""
        lead = self._holders(row).get("lead")
        self.authority.require(by, (lead,), (
            f"Only the Incident Lead or a bot admin may {verb} incident {row.number}, and it has no lead yet: take "
            "the role with `lead me` first." if lead is None else
            f"Only the Incident Lead ({mention(lead)}) or a bot admin may {verb} incident {row.number}."))

    # -- Slack bookkeeping --------------------------------------------------------------------------
    def attach_channel(self, number: int, channel_id: str, channel_name: str, by: str) -> Outcome:
        with storage.write():
            row = self._incident(number, lock=True)
            if row.channel_id == channel_id:
                return self._outcome(row, [])
            row.channel_id, row.channel_name = channel_id, channel_name
            row.save()
            self._log(row, "channel", by, f"Comms channel created: #{channel_name}")
            return self._outcome(row, [Happened("channel", by, new=channel_id)])

    def archive_channel(self, number: int, by: str) -> Outcome:
        """Mark the comms channel of a closed incident archived (the adapter archives it in Slack)."""
        with storage.write():
            row = self._incident(number, lock=True)
            if not row.channel_id:
                raise InvalidInput(f"Incident {row.number} has no comms channel to archive.")
            if row.status != "closed":
                raise InvalidInput(f"Close incident {row.number} before archiving its channel.")
            if row.channel_archived_at is not None:
                return self._outcome(row, [])
            self._lead_or_admin(row, by, "archive the channel of")
            row.channel_archived_at = self.now()
            row.save()
            self._log(row, "archived", by, f"Comms channel #{row.channel_name} archived")
            return self._outcome(row, [Happened("archived", by)])

    def mark_channel_archived(self, number: int, archived: bool) -> None:
        """The adapter's word on the comms channel of an open incident: still archived after a reopen (nobody
        could unarchive it yet: it is worked on in the headline's thread), or back."""
        with storage.write():
            (Incident.update(channel_archived_at=self.now() if archived else None)
             .where(Incident.number == number).execute())

    def due_for_archive(self, delay_minutes: int) -> list[int]:
        """Closed incidents whose channel should be archived by now."""
        cutoff = self.now() - dt.timedelta(minutes=delay_minutes)
        return [r.number for r in Incident.select(Incident.number).where(
            Incident.status == "closed", Incident.channel_id.is_null(False),
            Incident.channel_archived_at.is_null(), Incident.closed_at <= cutoff)]

    def rename_channel(self, channel_id: str, name: str) -> None:
        Incident.update(channel_name=name[:80]).where(Incident.channel_id == channel_id).execute()

    def set_headline(self, number: int, channel_id: str, ts: str) -> None:
        Incident.update(headline_channel_id=channel_id, headline_ts=ts).where(Incident.number == number).execute()

    # -- settings -----------------------------------------------------------------------------------
    def reload_settings(self, store, by: str) -> list[str]:
        """Re-read the settings file (bot admins only); the old settings stay when it is invalid."""
        self.authority.require_admin(by, "Only bot admins may reload the settings.")
        try:
            return store.reload()
        except SettingsError as exc:
            raise SettingsError(f"The settings were not reloaded; the old ones stay.\n{exc}") from None

    # -- keyword nudges -------------------------------------------------------------------------------
    def nudges(self, channel_id: str | None, text: str) -> list[str]:
        """Helpful notes for keywords said in an incident's channel, each once per incident."""
        settings = self.settings
        lowered = (text or "").lower()
        wanted = [i for i, n in enumerate(settings.nudges) if any(k.lower() in lowered for k in n.keywords)]
        if not wanted or not channel_id:
            return []
        out = []
        with storage.write():
            row = self._incident_for_channel(channel_id) if self.for_channel(channel_id) else None
            if row is None:
                return []
            for index in wanted:
                _, created = storage.ReminderState.get_or_create(
                    incident=row, key=f"nudge:{index}", defaults={"count": 1, "last_sent_at": self.now()})
                if created:
                    out.append(settings.nudges[index].text)
        return out

    # -- reading ------------------------------------------------------------------------------------
    def get(self, number: int) -> IncidentView:
        return self._view(self._incident(number))

    def for_channel(self, channel_id: str | None) -> IncidentView | None:
        if not channel_id:
            return None
        try:
            return self._view(self._incident_for_channel(channel_id))
        except NotFound:
            return None

    def list(self, which: str = "open", limit: int = 50, offset: int = 0) -> list[IncidentView]:
        query = Incident.select()
        if which in ("open", "closed"):
            query = query.where(Incident.status == which)
        elif which != "all":
            raise InvalidInput(f"{which!r} is not a list; choose open, closed or all.")
        rows = list(query.order_by(Incident.number.desc()).limit(limit).offset(offset))
        holders: dict[int, dict[str, str]] = {r.id: {} for r in rows}
        for a in RoleAssignment.select().where(RoleAssignment.incident.in_(list(holders)),
                                               RoleAssignment.released_at.is_null()):
            holders[a.incident_id][a.role] = a.holder
        return [IncidentView.of(r, holders[r.id]) for r in rows]

    def timeline(self, number: int) -> list[TimelineView]:
        row = self._incident(number)
        return [TimelineView.of(e) for e in TimelineEntry.select().where(
            TimelineEntry.incident == row, TimelineEntry.removed_at.is_null()
        ).order_by(TimelineEntry.at, TimelineEntry.id)]

    def actions(self, number: int) -> list[ActionView]:
        row = self._incident(number)
        return [ActionView.of(a) for a in Action.select().where(Action.incident == row).order_by(Action.number)]

    def format_time(self, value: dt.datetime | None) -> str:
        if value is None:
            return "-"
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(self.settings.zone).strftime("%Y-%m-%d %H:%M %Z")

    # -- internals ----------------------------------------------------------------------------------
    def _incident(self, number: int, lock: bool = False) -> Incident:
        found = storage.run("incident", lambda n, one: Incident.select().where(Incident.number == n).limit(one),
                            (number, 1), lock=lock, model=Incident)
        if not found:
            raise NotFound(f"There is no incident {number}; `incident list all` shows them.")
        row = found[0]
        return row

    def _incident_for_channel(self, channel_id: str, lock: bool = False) -> Incident:
        found = storage.run("incident_for_channel",
                            lambda c, one: Incident.select().where(Incident.channel_id == c).limit(one),
                            (channel_id, 1), lock=lock, model=Incident)
        if not found:
            raise NotFound("This channel does not belong to an incident.")
        return found[0]

    def _log(self, row: Incident, kind: str, author: str, text: str) -> int:
        """A timeline entry for something that happened now; its id."""
        now = self.now()
        return storage.insert(TimelineEntry, dict(
            incident=row.id, kind=kind, at=now, author=author, text=text, recorded_at=now, source_channel=None,
            source_ts=None, thread_ts=None, permalink=None, files="[]", removed_at=None, pin_event_ts=None))

    def view(self, row: Incident) -> IncidentView:
        """What an incident's row says now, with its roles (for collaborators such as the reminders)."""
        return self._view(row)

    def _view(self, row: Incident) -> IncidentView:
        view = IncidentView.of(row, self._holders(row))
        if row.status == "closed":  # why it was closed: the reason on its latest "closed" entry
            entry = TimelineEntry.select(TimelineEntry.text).where(
                TimelineEntry.incident == row, TimelineEntry.kind == "closed").order_by(TimelineEntry.id.desc()).first()
            _, said, reason = (entry.text if entry else "").partition(" closed the incident" + REASON)
            view = dataclasses.replace(view, close_reason=reason if said else None)
        return view

    def _outcome(self, row: Incident, happened: list, warnings: Iterable[str] = ()) -> Outcome:
        """The result of an operation; inside its transaction, the input marked handled and the subscribers told."""
        key = outbox.input_to_mark() if happened else None
        if key and not self.mark_processed(key):  # the input and its effect commit together, once
            raise AlreadyHandled("That was done already.")  # by another process: this change rolls back
        view = self._view(row)
        if happened and self._subscribers:
            self._subscribers.publish(Recorded(view, tuple(happened), self.now(), row))
        return Outcome(view, tuple(happened), tuple(warnings))

    def enqueue_job(self, kind: str, number: int | None, payload: dict | None = None,
                    coalesce_key: str | None = None) -> int:
        """Queue work for the adapter that follows no change (create a channel, page, remind, react)."""
        with storage.write():
            row = self._incident(number) if number is not None else None
            return outbox.enqueue(kind, row, payload, now=self.now(), coalesce_key=coalesce_key)
