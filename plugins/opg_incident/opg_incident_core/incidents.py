"""Incidents: declared, the lead's updates (title, summary, impact, severity), read and listed, and the chat's
bookkeeping of them (their channel, their headline). A collaborator of IncidentService."""
from __future__ import annotations

from peewee import IntegrityError, PostgresqlDatabase, fn

from . import outbox, storage
from .errors import InvalidInput, NotFound, SettingsError
from .records import Records
from .roles import Roles
from .queries import views_of
from .storage import Incident
from .text import clean as _text, defuse, mention
from .timeline import older
from .views import Happened, IncidentView, Outcome

MAX_TITLE = 300
NUMBERING_LOCK = 31410001  # pg_advisory_xact_lock key guarding incident numbers


class Incidents:
    def __init__(self, records: Records, roles: Roles):
        self.records = records
        self.roles = roles  # a lead named in the declaration takes the role as the declaration is recorded

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
        records = self.records
        for _attempt in range(20):
            try:
                with storage.write():
                    if isinstance(storage.database.obj, PostgresqlDatabase):
                        # Serialise numbering: without it concurrent declares collide on the same number
                        # and a loser can exhaust its retries. (SQLite's IMMEDIATE transaction does this.)
                        storage.database.obj.execute_sql("SELECT pg_advisory_xact_lock(%s)", (NUMBERING_LOCK,))
                    number = (Incident.select(fn.MAX(Incident.number)).scalar() or 0) + 1
                    now = records.now()
                    row = Incident.create(number=number, title=title, report=report, drill=drill,
                                          summary=_text(summary), impact=_text(impact),
                                          severity=sev.key if sev else None, reporter=reporter,
                                          declared_at=now, lead_updated_at=now)
                    kind = "a report" if report else ("a drill" if drill else "an incident")
                    records.log(row, "declared", reporter, f"{mention(reporter)} declared {kind}: {title}")
                    happened = [Happened("declared", reporter, new=title)]
                    if sev:
                        records.log(row, "severity", reporter, f"Severity set to {sev.name}")
                    if lead:
                        self.roles.assign(row, "lead", lead, reporter, happened)
                    return records.outcome(row, happened)
            except IntegrityError:
                continue  # another process took this number at the same moment: take the next one
        raise RuntimeError("could not allocate an incident number")

    # -- the lead's updates -------------------------------------------------------------------------
    def set_title(self, number: int, title: str, by: str) -> Outcome:
        title = " ".join((title or "").split())
        if not title or len(title) > MAX_TITLE:
            raise InvalidInput(f"A title is one sentence of 1 to {MAX_TITLE} characters.")
        records = self.records
        with storage.write():
            row = records.incident(number, lock=True)
            old = row.title
            if old == title:
                return records.outcome(row, [])
            row.title = title
            storage.save_fields(row, Incident.title)
            records.log(row, "title", by, f"Title changed from {old!r} to {title!r}")
            return records.outcome(row, [Happened("edited", by, old=old, new=title)])

    def set_summary(self, number: int, text: str, by: str) -> Outcome:
        return self._set_text(number, "summary", text, by)

    def set_impact(self, number: int, text: str, by: str) -> Outcome:
        return self._set_text(number, "impact", text, by)

    def _set_text(self, number: int, field: str, text: str, by: str) -> Outcome:
        text = _text(text)
        if not text.strip():
            raise InvalidInput(f"Say what the {field} is: `{field} <text>`.")
        records = self.records
        with storage.write():
            row = records.incident(number, lock=True)
            old = getattr(row, field)
            if old == text:
                return records.outcome(row, [])
            setattr(row, field, text)
            row.lead_updated_at = records.now()
            storage.save_fields(row, getattr(Incident, field), Incident.lead_updated_at)
            records.log(row, field, by, f"{field.capitalize()} updated: {text}")
            return records.outcome(row, [Happened(field, by, old=old, new=text)])

    def set_severity(self, number: int, text: str, by: str) -> Outcome:
        sev = self._severity(text)
        records = self.records
        with storage.write():
            row = records.incident(number, lock=True)
            old = records.settings.severity(row.severity)
            if row.severity == sev.key:
                return records.outcome(row, [])
            row.severity = sev.key
            storage.save_fields(row, Incident.severity)
            change = f"changed from {old.name} to {sev.name}" if old else f"set to {sev.name}"
            records.log(row, "severity", by, f"Severity {change}")
            return records.outcome(row, [Happened("severity", by, old=old.key if old else None, new=sev.key)])

    def _severity(self, text: str):
        settings = self.records.settings
        sev = settings.parse_severity(text or "")
        if sev is None:
            allowed = ", ".join(s.name for s in settings.severities)
            raise InvalidInput(f"'{defuse((text or '').strip())}' is not a severity. Choose one of: {allowed}.")
        return sev

    # -- reading ------------------------------------------------------------------------------------
    def get(self, number: int) -> IncidentView:
        return self.records.view(self.records.incident(number))

    def has_channel(self, channel_id: str | None) -> bool:
        """The channel belongs to an incident (one indexed look-up, without the incident's view)."""
        return bool(channel_id) and bool(storage.run(
            "has_channel", lambda c, one: Incident.select(Incident.id).where(Incident.channel_id == c).limit(one),
            (channel_id, 1)))

    def for_channel(self, channel_id: str | None) -> IncidentView | None:
        if not channel_id:
            return None
        try:
            return self.records.view(self.records.incident_for_channel(channel_id))
        except NotFound:
            return None

    def list(self, which: str = "open", limit: int = 50, offset: int = 0) -> list[IncidentView]:
        query = Incident.select()
        if which in ("open", "closed"):
            query = query.where(Incident.status == which)
        elif which != "all":
            raise InvalidInput(f"{which!r} is not a list; choose open, closed or all.")
        return views_of(list(query.order_by(Incident.number.desc()).limit(limit).offset(offset)))

    # -- the chat's bookkeeping ---------------------------------------------------------------------
    def attach_channel(self, number: int, channel_id: str, channel_name: str, by: str) -> Outcome:
        records = self.records
        with storage.write():
            row = records.incident(number, lock=True)
            if row.channel_id == channel_id:
                return records.outcome(row, [])
            row.channel_id, row.channel_name = channel_id, channel_name
            row.save()
            records.log(row, "channel", by, f"Comms channel created: #{channel_name}")
            return records.outcome(row, [Happened("channel", by, new=channel_id)])

    def rename_channel(self, channel_id: str, name: str, event_ts: str | None = None) -> None:
        """The channel's new name, unless a later rename (by Slack's `event_ts`) was applied already."""
        with storage.write():
            row = storage.first(Incident.select(Incident.id, Incident.channel_name_ts)
                                .where(Incident.channel_id == channel_id), lock=True)
            if row is not None and not older(event_ts, row.channel_name_ts):
                Incident.update(channel_name=name[:80], channel_name_ts=event_ts or row.channel_name_ts) \
                    .where(Incident.id == row.id).execute()

    def set_headline(self, number: int, channel_id: str, ts: str) -> None:
        Incident.update(headline_channel_id=channel_id, headline_ts=ts).where(Incident.number == number).execute()

    def enqueue_job(self, kind: str, number: int | None, payload: dict | None = None,
                    coalesce_key: str | None = None) -> int:
        """Queue work for the adapter that follows no change (create a channel, page, remind, react)."""
        with storage.write():
            row = self.records.incident(number) if number is not None else None
            return outbox.enqueue(kind, row, payload, now=self.records.now(), coalesce_key=coalesce_key)

    # -- settings -----------------------------------------------------------------------------------
    def reload_settings(self, store, by: str) -> list[str]:
        """Re-read the settings file (bot admins only); the old settings stay when it is invalid."""
        self.records.authority.require_admin(by, "reload the settings")
        try:
            return store.reload()
        except SettingsError as exc:
            raise SettingsError(f"The settings were not reloaded; the old ones stay.\n{exc}") from None
