"""Slack effects of keeping everyone informed: updates, end notices, the call, invites, asking for help,
paging specialists and sharing the analysis. Part of Effects (which provides slack, service, settings)."""
from __future__ import annotations

import logging

import requests

from opg_incident_core.text import defuse, mention

from . import blocks
from .gateway import SlackError

log = logging.getLogger(__name__)


class CommsEffects:
    COMMS_KINDS = ("update", "call", "invite", "ask", "page", "rca_shared")

    def _comms(self, inc, happened) -> bool:
        """Handle a comms happening; False when it is not one."""
        handler = {"update": self._post_update, "call": self._share_call, "invite": self._invite,
                   "ask": self._ask, "page": self._page_specialist, "rca_shared": self._share_rca}.get(happened.kind)
        if handler is None:
            return False
        handler(inc, happened)
        return True

    def _channel(self, name_or_id: str) -> str | None:
        if name_or_id[:1] in "CG" and name_or_id[1:].isalnum() and name_or_id.upper() == name_or_id:
            return name_or_id
        return self.slack.channel_id(name_or_id)

    def _post_everywhere(self, channels, text: str, body: list | None = None) -> list[str]:
        """Post in each channel; returns the ones that failed (and says why in the log)."""
        failed = []
        for name in channels:
            try:
                channel = self._channel(name)
                if channel is None:
                    raise SlackError("chat.postMessage", "channel_not_found")
                try:
                    self.slack.post(channel, text, body)
                except SlackError as exc:
                    if exc.code != "not_in_channel":
                        raise
                    self.slack.join(channel)
                    self.slack.post(channel, text, body)
            except SlackError as exc:
                if exc.transient:
                    raise
                log.warning("Could not post in #%s: %s", name, exc)
                failed.append(name)
        return failed

    # -- stakeholder updates ------------------------------------------------------------------------
    def _post_update(self, inc, happened) -> None:
        update = self.service.get_update(happened.entry_id)
        sev = self.settings.severity(update.severity)
        due = self.settings.stakeholders.update_every(update.severity)
        label = " (drill)" if inc.drill else ""
        text = (f"📣 *Update on incident {inc.number}{label}: {defuse(inc.title)}*\n"
                f"Status: {update.status} · Severity: {sev.name if sev else 'not set'}\n"
                f"Summary: {defuse(update.summary) or 'not set yet'}\n"
                f"{defuse(update.text)}\n"
                f"Next update within {due} minutes. Living document: {self.document_url(inc.number)}")
        body = blocks.text_message(text)
        if inc.headline_ts:
            self.slack.post(inc.headline_channel_id, text, body, thread_ts=inc.headline_ts)
        failed = self._post_everywhere(self.service.stakeholder_channels(inc.number), text, body)
        if failed and inc.channel_id:
            self.slack.post(inc.channel_id, "⚠️ The update could not be posted in " +
                            ", ".join("#" + f for f in failed) + ": invite me there, or check the name.")

    def _tell_stakeholders(self, inc, text: str) -> None:
        """End-of-incident (or reopened) notices wherever updates were posted."""
        if not self.service.updates(inc.number):
            return
        self._post_everywhere(self.service.stakeholder_channels(inc.number), text, blocks.text_message(text))

    # -- the call, people, help ---------------------------------------------------------------------
    def _share_call(self, inc, happened) -> None:
        if inc.channel_id:
            self.slack.set_topic(inc.channel_id, f"{inc.title} | {self.document_url(inc.number)} | "
                                                 f"call: {inc.call_url}")
            self.slack.post(inc.channel_id, f"📞 Join the call: {inc.call_url}")

    def _invite(self, inc, happened) -> None:
        if not inc.channel_id:
            return
        users = []
        for item in (happened.new or "").split(","):
            if item.startswith("S"):  # a user group: its members (a group that fails does not stop the others)
                members = self._best(self.slack.call, "usergroups.users.list", usergroup=item)
                users += (members or {}).get("users", [])
            else:
                users.append(item)
        self.slack.invite(inc.channel_id, users)

    def _ask(self, inc, happened) -> None:
        where = f"<#{inc.channel_id}>" if inc.channel_id else self.document_url(inc.number)
        label = " (a drill)" if inc.drill else ""
        text = (f"🙋 Incident {inc.number}{label} needs help: {defuse(happened.new or '')}\n"
                f"Asked by {mention(happened.by)}. Join {where}; living document: {self.document_url(inc.number)}")
        failed = self._post_everywhere(self.settings.stakeholders.help_channels, text)
        if failed:
            self._post_for(inc, "⚠️ Could not ask in " + ", ".join("#" + f for f in failed) + ".")

    # -- specialists --------------------------------------------------------------------------------
    def _page_specialist(self, inc, happened) -> None:
        team = self.settings.specialist(happened.new or "")
        if team is None:
            return
        label = " (drill)" if inc.drill else ""
        where = f"<#{inc.channel_id}>" if inc.channel_id else self.document_url(inc.number)
        message = (f"📟 {mention(happened.by)} pages {team.name} for incident {inc.number}{label}: "
                   f"{defuse(inc.title)}\nJoin {where}. Living document: {self.document_url(inc.number)}")
        done = []
        try:
            if team.pagerduty_routing_key:
                self._trigger_pagerduty(team.pagerduty_routing_key, inc, happened.by,
                                        f"{team.key}-{happened.entry_id or inc.number}")
                done.append("PagerDuty triggered")
            if team.slack_user:
                self.slack.dm(team.slack_user, message)
                done.append(f"{mention(team.slack_user)} was sent a direct message")
            if team.slack_group and inc.channel_id:
                self.slack.post(inc.channel_id, f"<!subteam^{team.slack_group}> {message}")
                done.append("the team was mentioned here")
            if not done:
                raise SlackError("paging", f"no way to reach {team.name} is configured")
            report = f"📟 Paged {team.name}: {', '.join(done)}."
        except (SlackError, requests.RequestException) as exc:
            report = f"⚠️ Paging {team.name} failed ({exc}). Page them by hand."
        self._post_for(inc, report)

    def _trigger_pagerduty(self, routing_key: str, inc, by: str, what: str) -> None:
        sev = self.settings.severity(inc.severity)
        body = {"routing_key": routing_key, "event_action": "trigger",
                "dedup_key": f"opg-incident-{inc.number}-{what}",  # a resend after a crash is the same page
                "payload": {"summary": f"Incident {inc.number}: {inc.title}"[:1024], "source": "opg-incident",
                            "severity": "critical" if sev and sev.key == "critical" else "error",
                            "custom_details": {"document": self.document_url(inc.number), "paged_by": by,
                                               "drill": inc.drill}}}
        response = requests.post(self.pagerduty_url, json=body, timeout=10)
        response.raise_for_status()

    # -- the analysis -------------------------------------------------------------------------------
    def _share_rca(self, inc, happened) -> None:
        text = (f"📖 The root-cause analysis of incident {inc.number}: {defuse(inc.title)}\n"
                f"Summary: {defuse(inc.summary) or 'not set'}\n"
                f"Read it: {inc.rca_url or self.document_url(inc.number) + '/rca.md'}")
        failed = self._post_everywhere(self.settings.stakeholders.share_channels, text)
        if failed:
            self._post_for(inc, "⚠️ Could not share in " + ", ".join("#" + f for f in failed) + ".")
