"""Keeping everyone informed and bringing people in: stakeholder updates, the call link, asking for
help, paging specialist teams, and sharing the root-cause analysis. A collaborator of IncidentService."""
from __future__ import annotations

import re

from . import storage
from .authority import LEAD
from .errors import InvalidInput, NotFound
from .storage import ReminderState, StakeholderChannel, StakeholderUpdate, TimelineEntry
from .text import defuse, mention
from .records import Records
from .views import Happened, Outcome, UpdateView

URL = re.compile(r"^https?://[^\s<>|]{3,500}$")
CADENCE = "update_cadence"  # the ReminderState row holding the chosen minutes between updates (0: off)
COMMS = "the Communications Lead"
CHANNEL = re.compile(r"^(?:<#([CG][A-Z0-9]+)(?:\|[^>]*)?>|#?([A-Za-z0-9_-]{1,80}))$")


class Comms:
    """Stakeholder updates, the call, help, paging and the analysis: a collaborator of IncidentService."""

    def __init__(self, records: Records):
        self.records = records

    def post_update(self, number: int, text: str, by: str) -> Outcome:
        """A stakeholder update, by the Communications Lead (or the lead when there is none, or an admin)."""
        text = (text or "").strip()
        if not text:
            raise InvalidInput("Say what the update is: `update <text>`.")
        with storage.write():
            row = self.records.incident(number, lock=True)
            roles = self.records.holders(row)
            self.records.authority.require(by, [(COMMS, roles.get("comms")), (LEAD, roles.get("lead"))],
                                           f"post the stakeholder updates of incident {row.number}")
            self._default_stakeholders(row, by)
            view = self.records.view(row)
            update = StakeholderUpdate.create(incident=row, text=text[:3000], author=by, at=self.records.now(),
                                              status=view.status_text, severity=row.severity, summary=row.summary)
            self.records.log(row, "update", by, f"Stakeholder update: {text[:3000]}")
            return self.records.outcome(row, [Happened("update", by, new=text, entry_id=update.id)])

    def update_cadence(self, number: int) -> int | None:
        """Minutes between stakeholder updates: the Communications Lead's choice (None: off), else the
        settings' default for the severity."""
        row = self.records.incident(number)
        chosen = ReminderState.get_or_none(ReminderState.incident == row, ReminderState.key == CADENCE)
        if chosen is None:
            return self.records.settings.stakeholders.update_every(row.severity)
        return chosen.count or None

    def set_update_cadence(self, number: int, minutes: int | None, by: str) -> Outcome:
        """`updates every 30m|off`: the Communications Lead's choice (the lead's while there is none)."""
        if minutes is not None and not 5 <= minutes <= 24 * 60:
            raise InvalidInput("Updates can be every 5 minutes to every 24 hours: `updates every 30m`, or `updates off`.")
        with storage.write():
            row = self.records.incident(number, lock=True)
            roles = self.records.holders(row)
            choosers = [(COMMS, roles["comms"])] if roles.get("comms") else [(COMMS, None), (LEAD, roles.get("lead"))]
            self.records.authority.require(by, choosers, f"choose how often the stakeholder updates of incident "
                                                         f"{row.number} are due")  # the lead's while there is no comms
            state, _ = ReminderState.get_or_create(incident=row, key=CADENCE)  # count: the minutes, 0 for off
            if state.last_sent_at is not None and state.count == (minutes or 0):
                return self.records.outcome(row, [])
            state.count, state.last_sent_at = minutes or 0, self.records.now()
            state.save()
            self.records.log(row, "cadence", by, f"Stakeholder updates every {minutes} minutes" if minutes else
                      "No more stakeholder update reminders")
            return self.records.outcome(row, [Happened("cadence", by, new=str(minutes) if minutes else None)])

    def updates(self, number: int) -> list[UpdateView]:
        row = self.records.incident(number)
        return [UpdateView.of(u, row.number) for u in
                StakeholderUpdate.select().where(StakeholderUpdate.incident == row).order_by(StakeholderUpdate.id)]

    def get_update(self, update_id: int) -> UpdateView:
        update = StakeholderUpdate.get_or_none(StakeholderUpdate.id == update_id)
        if update is None:
            raise NotFound(f"There is no update {update_id}.")
        return UpdateView.of(update, update.incident.number)

    def last_update_at(self, number: int):
        row = self.records.incident(number)
        last = StakeholderUpdate.select().where(StakeholderUpdate.incident == row) \
            .order_by(StakeholderUpdate.id.desc()).first()
        return last.at if last else None

    def notify(self, number: int, channel: str, by: str) -> Outcome:
        match = CHANNEL.match((channel or "").strip())
        if not match:
            raise InvalidInput("Which channel? `notify #channel`: a channel name (lowercase a-z 0-9 - _) "
                               "or a channel link.")
        name = match.group(1) or match.group(2).lower()  # Slack channel names are lower case
        with storage.write():
            row = self.records.incident(number, lock=True)
            roles = self.records.holders(row)
            self.records.authority.require(by, [(LEAD, roles.get("lead")), (COMMS, roles.get("comms"))],
                                           f"choose who gets the stakeholder updates of incident {row.number}")
            self._default_stakeholders(row, by)
            _, created = StakeholderChannel.get_or_create(incident=row, channel=name,
                                                          defaults={"added_by": by, "added_at": self.records.now()})
            if not created:
                return self.records.outcome(row, [])
            shown = f"<#{name}>" if match.group(1) else f"#{name}"
            self.records.log(row, "notify", by, f"{shown} will get the stakeholder updates")
            return self.records.outcome(row, [Happened("notify", by, new=name)])

    def stakeholder_channels(self, number: int) -> list[str]:
        row = self.records.incident(number)
        configured = list(self.records.settings.stakeholders.channels_for(row.severity))
        added = [c.channel for c in StakeholderChannel.select().where(StakeholderChannel.incident == row)
                 .order_by(StakeholderChannel.id)]
        return list(dict.fromkeys(configured + added))

    def _default_stakeholders(self, row, by: str) -> None:
        for name in self.records.settings.stakeholders.channels_for(row.severity):
            StakeholderChannel.get_or_create(incident=row, channel=name,
                                             defaults={"added_by": "system", "added_at": self.records.now()})

    def set_call(self, number: int, url: str | None, by: str) -> Outcome:
        url = (url or "").strip().strip("<>")
        template = self.records.settings.stakeholders.call_link_template
        if not url and template:
            url = template.replace("{number}", str(number))
        if not URL.match(url):
            raise InvalidInput("Give the call's link: `call https://...`.")
        with storage.write():
            row = self.records.incident(number, lock=True)
            if row.call_url == url:
                return self.records.outcome(row, [])
            row.call_url = url
            row.save()
            self.records.log(row, "call", by, f"Call: {url}")
            return self.records.outcome(row, [Happened("call", by, new=url)])

    def ask_for_help(self, number: int, text: str, by: str) -> Outcome:
        text = (text or "").strip()
        if not text:
            raise InvalidInput("Say what help you need: `ask <text>`.")
        if not self.records.settings.stakeholders.help_channels:
            raise InvalidInput("No help channels are configured (stakeholders.help_channels in the settings).")
        with storage.write():
            row = self.records.incident(number, lock=True)
            self.records.log(row, "ask", by, f"Asked for help in {', '.join('#' + c for c in self.records.settings.stakeholders.help_channels)}: {text}")
            return self.records.outcome(row, [Happened("ask", by, new=text)])

    def record_invites(self, number: int, people: list[str], by: str) -> Outcome:
        if not people:
            raise InvalidInput("Who? `invite @someone @another-team`.")
        with storage.write():
            row = self.records.incident(number, lock=True)
            self.records.log(row, "invite", by, "Invited " + ", ".join(mention(p) if not p.startswith("S") else
                                                                f"<!subteam^{p}>" for p in people))
            return self.records.outcome(row, [Happened("invite", by, new=",".join(people))])

    def page_specialist(self, number: int, team_key: str, by: str) -> Outcome:
        """Ask the adapter to page a specialist team. Refused, naming the setting, when nothing is set up to
        reach the team or nothing here can send a page (the Text console); the adapter records the page, or
        its failure, on the timeline once it has tried."""
        team = self.records.settings.specialist(team_key)
        if team is None:
            known = ", ".join(t.key for t in self.records.settings.specialists if t.reachable) or "none can be paged"
            raise InvalidInput(f"'{defuse(team_key)}' is not a specialist team; teams: {known}.")
        if not team.reachable:
            raise InvalidInput(f"{team.name} cannot be paged: nothing is set up to reach them. A bot admin sets "
                               f"slack_user, slack_group or pagerduty_routing_key of `{team.key}` under "
                               f"specialists: in the settings. Page them by hand meanwhile.")
        if not self.records.subscribers.hears("page"):
            raise InvalidInput(f"Nothing here can send a page (no Slack connection): page {team.name} by hand.")
        with storage.write():
            row = self.records.incident(number, lock=True)
            return self.records.outcome(row, [Happened("page", by, new=team.key)])

    def record_page(self, number: int, by: str, text: str, failed: bool = False) -> None:
        """A page sent (or one that failed), on the timeline: what was tried and what came of it."""
        with storage.write():
            row = self.records.incident(number, lock=True)
            self.records.log(row, "page_failed" if failed else "page", by, text)

    def mark_rca_ready(self, number: int, by: str) -> Outcome:
        """The lead says the analysis is done: only after the close (the analysis follows the incident)."""
        with storage.write():
            row = self.records.incident(number, lock=True)
            self.records.authority.require_lead(by, self.records.holders(row).get("lead"),
                                                f"mark the analysis of incident {row.number}")
            if row.status != "closed":
                raise InvalidInput(f"Incident {row.number} is still open: the root-cause analysis follows the close. "
                                   "Close it first (`close`), then `rca ready`.")
            if row.rca_ready_at is not None:
                return self.records.outcome(row, [])
            row.rca_ready_at = self.records.now()
            row.save()
            self.records.log(row, "rca", by, "The root-cause analysis is ready to share")
            return self.records.outcome(row, [Happened("rca_ready", by)])

    def share_rca(self, number: int, by: str) -> Outcome:
        """Share the analysis with the delivery team, OPG Digital, leadership and the cloud provider's
        Technical Account Managers: after the close and `rca ready`; again only once it has changed."""
        where = self.records.settings.stakeholders.share_targets
        if not where:
            raise InvalidInput("No sharing channels are configured (stakeholders.share_channels in the settings).")
        with storage.write():
            row = self.records.incident(number, lock=True)
            if row.status != "closed":
                raise InvalidInput(f"Incident {row.number} is still open: the analysis is shared after the close.")
            if row.rca_ready_at is None:
                raise InvalidInput("The lead marks the analysis ready first: `rca ready`.")
            again = row.rca_shared_at
            if again is not None and not self._changed_since(row, again):
                raise InvalidInput(f"The analysis of incident {row.number} was shared already, at "
                                   f"{self.records.format_time(again)}, and has not changed since.")
            row.rca_shared_at = self.records.now()
            row.save()
            shown = ", ".join("#" + c for c in where)
            text = (f"Root-cause analysis shared again, changed since it was shared at {self.records.format_time(again)}, "
                    f"in {shown}" if again else f"Root-cause analysis shared in {shown}")
            self.records.log(row, "rca", by, text)
            return self.records.outcome(row, [Happened("rca_shared", by, old=self.records.format_time(again) if again else None)])

    def rca_shared_at(self, number: int):
        return self.records.incident(number).rca_shared_at

    def _changed_since(self, row, when) -> bool:
        """Has the record (and so the analysis drawn from it, or its published page) changed since `when`?"""
        return TimelineEntry.select().where(TimelineEntry.incident == row, TimelineEntry.recorded_at > when,
                                            TimelineEntry.kind != "rca").exists()

    def record_rca_published(self, number: int, url: str, by: str, version: int | None = None) -> Outcome:
        """The analysis is published at `url` (an adapter did it): its link goes on the record, the timeline
        says so, and the headline shows it."""
        with storage.write():
            row = self.records.incident(number, lock=True)
            row.rca_url = url
            row.save()
            shown = f" (version {version})" if version else ""
            self.records.log(row, "rca_published", by, f"Root-cause analysis published{shown}: {url}")
            return self.records.outcome(row, [Happened("rca_published", by, new=url)])
