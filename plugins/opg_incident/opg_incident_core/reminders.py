"""Reminders and check-ins: what is due now, from the record and the settings. Counted only when sent.

Quiet for closed incidents and for reports of something already over. Time comes from the service's
clock, so tests drive it without sleeping.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import storage, telemetry
from .errors import InvalidInput, NotFound
from .records import Records
from .settings import DAYS
from .storage import Incident, ReminderState
from .text import mention
from .views import Happened, Outcome



@dataclass(frozen=True)
class DueReminder:
    number: int
    key: str  # role_missing:<role>, severity_missing, update_stale, close_prompt, checkin
    text: str
    role: str | None = None  # for a "Take this role" button
    channel_id: str | None = None
    headline_channel_id: str | None = None
    headline_ts: str | None = None


class _Blank(dict):
    def __missing__(self, key):
        return "{" + key + "}"


class ReminderSchedule:
    def __init__(self, service, bot_name: str = "@opg-incident", minute_seconds: float = 60.0):
        self.service = service
        self.bot_name = bot_name
        self.minute = dt.timedelta(seconds=minute_seconds)  # shorter only in end-to-end tests

    def due(self) -> list[DueReminder]:
        settings = self.service.settings
        now = self.service.now()
        out: list[DueReminder] = []
        rows = list(Incident.select().where(Incident.status == "open", Incident.report == False))  # noqa: E712
        states = {(s.incident_id, s.key): s for s in ReminderState.select().where(
            ReminderState.incident.in_([r.id for r in rows]))} if rows else {}
        for row in rows:
            inc = self.service.view(row)
            lead = mention(inc.roles.get("lead")) if inc.roles.get("lead") else mention(inc.reporter)

            def check(reminder_key, rule, start, **extra):
                state = states.get((row.id, reminder_key))
                count = state.count if state else 0
                since = max(start, state.last_sent_at) if state and state.last_sent_at else start
                if count < rule.max_count and now - since >= self.minute * rule.every_minutes:
                    text = rule.text.format_map(_Blank(bot=self.bot_name, number=inc.number, lead=lead,
                                                       minutes=rule.every_minutes, **extra))
                    out.append(DueReminder(inc.number, reminder_key, text, extra.get("key"), inc.channel_id,
                                           inc.headline_channel_id, inc.headline_ts))

            rules = settings.reminders
            for role in settings.roles:
                if role.required and role.assignable and role.key not in inc.roles:
                    check(f"role_missing:{role.key}", rules.role_missing, row.declared_at, role=role.name,
                          key=role.key)
            if not inc.severity:
                check("severity_missing", rules.severity_missing, row.declared_at)
            check("update_stale", rules.update_stale, row.lead_updated_at or row.declared_at)
            if self._working_hours(now):
                check("close_prompt", rules.close_prompt, row.declared_at)
            every = self.service.update_cadence(inc.number)  # the Communications Lead's choice; None: off
            state = states.get((row.id, "stakeholder_update"))
            last = self.service.last_update_at(inc.number)
            since = max(x for x in (row.declared_at, last, state.last_sent_at if state else None) if x)
            if every and now - since >= self.minute * every:
                comms = inc.roles.get("comms") or inc.roles.get("lead") or inc.reporter
                out.append(DueReminder(inc.number, "stakeholder_update",
                                       f"📣 {mention(comms)}, it is {every} minutes since the last stakeholder "
                                       f"update on incident {inc.number}. Post one: `{self.bot_name} update <text>`.",
                                       None, inc.channel_id, inc.headline_channel_id, inc.headline_ts))
            if row.checkin_minutes:
                state = states.get((row.id, "checkin"))
                since = max(row.checkin_since, state.last_sent_at) if state and state.last_sent_at \
                    else row.checkin_since
                if now - since >= self.minute * row.checkin_minutes:
                    out.append(DueReminder(inc.number, "checkin", f"⏰ Check-in for incident {inc.number}: "
                                           f"{lead}, where are we? Update with `{self.bot_name} summary <text>`.",
                                           None, inc.channel_id, inc.headline_channel_id, inc.headline_ts))
        return out

    def sent(self, reminder: DueReminder) -> None:
        """Count a reminder that went out; a check-in also lands on the timeline."""
        self.service.reminder_sent(reminder.number, reminder.key)
        telemetry.emit("reminder_sent", key=reminder.key)

    def _working_hours(self, now: dt.datetime) -> bool:
        hours = self.service.settings.reminders.working_hours
        local = now.replace(tzinfo=dt.timezone.utc).astimezone(self.service.settings.zone)
        return DAYS[local.weekday()] in hours.days and hours.start <= local.strftime("%H:%M") < hours.end


class Checkins:
    """The lead's check-in schedule, reminders counted, keyword nudges: a collaborator of IncidentService."""

    def __init__(self, records: Records):
        self.records = records

    def reminder_sent(self, number: int, key: str) -> None:
        """Count a reminder that went out (a check-in also lands on the timeline)."""
        with storage.write():
            row = self.records.incident(number, lock=True)
            state, _ = ReminderState.get_or_create(incident=row, key=key)
            state.count += 1
            state.last_sent_at = self.records.now()
            state.save()
            if key == "checkin":
                self.records.log(row, "checkin", "system", "Check-in prompt sent")

    def get_checkin(self, number: int) -> int | None:
        return self.records.incident(number).checkin_minutes

    def set_checkin(self, number: int, minutes: int | None, by: str) -> Outcome:
        if minutes is not None and not 5 <= minutes <= 24 * 60:
            raise InvalidInput("Check-ins can be every 5 minutes to every 24 hours: `checkin every 30m`.")
        with storage.write():
            row = self.records.incident(number, lock=True)
            self.records.authority.require_lead(by, self.records.holders(row).get("lead"),
                                                f"set the check-ins of incident {row.number}")
            if row.checkin_minutes == minutes:
                return self.records.outcome(row, [])
            row.checkin_minutes, row.checkin_since = minutes, self.records.now()
            row.save()
            text = f"Check-ins every {minutes} minutes" if minutes else "Check-ins off"
            self.records.log(row, "checkin", by, text)
            return self.records.outcome(row, [Happened("checkin", by, new=str(minutes) if minutes else None)])

    def nudges(self, channel_id: str | None, text: str) -> list[str]:
        """Helpful notes for keywords said in an incident's channel, each once per incident."""
        settings = self.records.settings
        lowered = (text or "").lower()
        wanted = [i for i, n in enumerate(settings.nudges) if any(k.lower() in lowered for k in n.keywords)]
        if not wanted or not channel_id:
            return []
        out = []
        with storage.write():
            try:
                row = self.records.incident_for_channel(channel_id)
            except NotFound:
                return []
            for index in wanted:
                _, created = ReminderState.get_or_create(
                    incident=row, key=f"nudge:{index}", defaults={"count": 1, "last_sent_at": self.records.now()})
                if created:
                    out.append(settings.nudges[index].text)
        return out
