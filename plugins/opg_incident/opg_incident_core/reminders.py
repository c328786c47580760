"""Reminders and check-ins: what is due now, from the record and the settings. Counted only when sent.

Quiet for closed incidents and for reports of something already over. Time comes from the service's
clock, so tests drive it without sleeping.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import storage, telemetry
from .errors import InvalidInput, NotAllowed
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


class CheckinsMixin:
    """The lead's check-in schedule, part of IncidentService."""

    def reminder_sent(self, number: int, key: str) -> None:
        """Count a reminder that went out (a check-in also lands on the timeline)."""
        with storage.write():
            row = self._incident(number, lock=True)
            state, _ = ReminderState.get_or_create(incident=row, key=key)
            state.count += 1
            state.last_sent_at = self.now()
            state.save()
            if key == "checkin":
                self._log(row, "checkin", "system", "Check-in prompt sent")

    def get_checkin(self, number: int) -> int | None:
        return self._incident(number).checkin_minutes

    def set_checkin(self, number: int, minutes: int | None, by: str) -> Outcome:
        if minutes is not None and not 5 <= minutes <= 24 * 60:
            raise InvalidInput("Check-ins can be every 5 minutes to every 24 hours: `checkin every 30m`.")
        with storage.write():
            row = self._incident(number, lock=True)
            lead = self._holders(row).get("lead")
            self.authority.require(by, (lead,), f"Only the Incident Lead ({mention(lead)}) or a bot admin sets the "
                                                "check-ins.")
            if row.checkin_minutes == minutes:
                return self._outcome(row, [])
            row.checkin_minutes, row.checkin_since = minutes, self.now()
            row.save()
            text = f"Check-ins every {minutes} minutes" if minutes else "Check-ins off"
            self._log(row, "checkin", by, text)
            return self._outcome(row, [Happened("checkin", by, new=str(minutes) if minutes else None)])
