"""Slack effects of keeping everyone informed: updates, end notices, the call, invites, asking for help,
paging specialists and sharing the analysis. Part of Effects (which provides slack, service, settings)."""
from __future__ import annotations

import logging

from opg_incident_core.text import defuse, mention

from . import blocks
from .gateway import SlackError
from .kinds import KINDS

log = logging.getLogger(__name__)


class CommsEffects:
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
                if not self.slack.is_member(channel):  # a public channel the bot may join (private: invite it)
                    self.slack.join(channel)
                self.slack.post(channel, text, body)
            except SlackError as exc:
                if exc.transient:
                    raise
                log.warning("Could not post in #%s: %s", name, exc)
                failed.append(name)
        return failed

    def _post_stakeholders(self, inc, channels, text: str, body: list | None = None) -> list[str]:
        """Post to people outside the incident. A drill reaches only its participants: the post goes, labelled
        DRILL, where the drill is worked on (its channel, or its headline's thread), saying where it would
        have gone."""
        channels = list(channels)
        if not inc.drill:
            return self._post_everywhere(channels, text, body)
        if channels:
            where = ", ".join(f"<#{c}>" if c[:1] in "CG" and c.isupper() else f"#{c}" for c in channels)
            label = "" if text.startswith("🧪 DRILL") else "🧪 DRILL: "
            self._post_for(inc, f"{label}{text}\n_(A drill: not sent to {where}.)_")
        return []

    # -- stakeholder updates ------------------------------------------------------------------------
    @KINDS.announcement("update", what="post the stakeholder update")
    def _post_update(self, inc, happened, item) -> None:
        update = self.service.get_update(happened.entry_id)
        sev = self.settings.severity(update.severity)
        due = self.service.update_cadence(inc.number)  # None: the Communications Lead turned them off
        label = "🧪 DRILL: " if inc.drill else ""
        text = (f"{label}📣 *Update on incident {inc.number}: {defuse(inc.title)}*\n"
                f"Status: {update.status} · Severity: {sev.name if sev else 'not set'}\n"
                f"Summary: {defuse(update.summary) or 'not set yet'}\n"
                f"{defuse(update.text)}\n"
                + (f"Next update within {due} minutes. " if due else "")
                + f"Living document: {self.document_url(inc.number)}")
        body = blocks.text_message(text)
        if inc.headline_ts:
            self.slack.post(inc.headline_channel_id, text, body, thread_ts=inc.headline_ts)
        failed = self._post_stakeholders(inc, self.service.stakeholder_channels(inc.number), text, body)
        if failed and inc.channel_id:
            self._post_for(inc, "⚠️ The update could not be posted in " +
                           ", ".join("#" + f for f in failed) + ": invite me there, or check the name.")

    def _tell_stakeholders(self, inc, text: str) -> None:
        """End-of-incident (or reopened) notices wherever updates were posted."""
        if not self.service.updates(inc.number):
            return
        self._post_stakeholders(inc, self.service.stakeholder_channels(inc.number), text, blocks.text_message(text))

    # -- the call, people, help ---------------------------------------------------------------------
    @KINDS.announcement("call", what="share the call")
    def _share_call(self, inc, happened, item) -> None:
        if self.channel_usable(inc):
            self.slack.set_topic(inc.channel_id, f"{inc.title} | {self.document_url(inc.number)} | "
                                                 f"call: {inc.call_url}")
            self.slack.post(inc.channel_id, f"📞 Join the call: {inc.call_url}")

    @KINDS.announcement("invite", what="invite people to the comms channel")
    def _invite(self, inc, happened, item) -> None:
        if not self.channel_usable(inc):
            return
        users = []
        for item in (happened.new or "").split(","):
            if item.startswith("S"):  # a user group: its members (a group that fails does not stop the others)
                members = self._best(self.slack.call, "usergroups.users.list", usergroup=item)
                users += (members or {}).get("users", [])
            else:
                users.append(item)
        self.invite(inc, users)

    @KINDS.announcement("ask", what="ask for help")
    def _ask(self, inc, happened, item) -> None:
        where = f"<#{inc.channel_id}>" if inc.channel_id else self.document_url(inc.number)
        text = (f"🙋 Incident {inc.number} needs help: {defuse(happened.new or '')}\n"
                f"Asked by {mention(happened.by)}. Join {where}; living document: {self.document_url(inc.number)}")
        failed = self._post_stakeholders(inc, self.settings.stakeholders.help_channels, text)
        if failed:
            self._post_for(inc, "⚠️ Could not ask in " + ", ".join("#" + f for f in failed) + ".")

    # -- paging: the on-call lead, specialist teams ------------------------------------------------------
    @KINDS.job("page_oncall", what="page the on-call lead")
    def page_oncall(self, item) -> None:
        """One page, one dedup key: the outbox item's, the same on a retry."""
        number, by, page_id = item.number, item.payload.get("by", ""), item.id
        inc = self.service.get(number)
        oncall = self.oncall_override or self.settings.paging.oncall_user
        where = f"<#{inc.channel_id}>" if inc.channel_id else f"the headline in #{self.settings.channels.incidents}"
        message = (f"📟 {mention(by)} pages you for incident {inc.number}: {defuse(inc.title)}\n"
                   f"Join {where}. Living document: {self.document_url(number)}")
        unset = ("Nobody is set up to be paged (a bot admin sets paging.oncall_user or "
                 "paging.pagerduty_routing_key in the settings, or INCIDENT_ONCALL)")
        self._page(inc, by, "the on-call lead", message, unset, routing_key=self.settings.paging.pagerduty_routing_key,
                   user=oncall, dedup=f"oncall-{page_id}",
                   by_hand=f"call them, or post in #{self.settings.channels.incidents}")

    @KINDS.announcement("page", what="page a team")
    def _page_specialist(self, inc, happened, item) -> None:
        team = self.settings.specialist(happened.new or "")
        if team is None:
            return
        where = f"<#{inc.channel_id}>" if inc.channel_id else self.document_url(inc.number)
        message = (f"📟 {mention(happened.by)} pages {team.name} for incident {inc.number}: "
                   f"{defuse(inc.title)}\nJoin {where}. Living document: {self.document_url(inc.number)}")
        unset = (f"Nothing is set up to reach {team.name} (slack_user, slack_group or pagerduty_routing_key of "
                 f"`{team.key}` under specialists: in the settings)")
        self._page(inc, happened.by, team.name, message, unset, routing_key=team.pagerduty_routing_key,
                   user=team.slack_user, group=team.slack_group,
                   dedup=f"{team.key}-{item.id}")  # one page, one dedup key: the outbox item's

    def _page(self, inc, by: str, name: str, message: str, unset: str, *, routing_key: str = "", user: str = "",
              group: str = "", dedup: str = "", by_hand: str = "") -> None:
        """Send a page every way that is set up, then say what came of it, where the incident is worked on
        and on the timeline. A drill pages nobody: its page goes to the person who asked (a participant)
        and to PagerDuty only with paging.drill_routing_key, labelled DRILL."""
        import requests  # here, not at import: ~50 ms of every start (P5), for a page that may never come

        if inc.drill:
            routing_key, group = self.settings.paging.drill_routing_key, ""
            user = by if by[:1] in "UW" else ""
            message = f"🧪 DRILL: a practice page; nobody on call was paged.\n{message}"
            unset = "Nobody was paged: a drill pages only its participants (or paging.drill_routing_key)"
        steps = []
        if routing_key:
            steps.append(("PagerDuty triggered", "PagerDuty",
                          lambda: self._trigger_pagerduty(routing_key, inc, by, dedup)))
        if user:
            steps.append((f"{mention(user)} was sent a direct message", f"the direct message to {mention(user)}",
                          lambda: self.slack.dm(user, message)))
        if group:
            steps.append(("the team was mentioned here", "the group mention",
                          lambda: self._post_for(inc, f"<!subteam^{group}> {message}")))
        done, failed = [], []
        for ok, what, step in steps:
            try:
                step()
                done.append(ok)
            except (SlackError, requests.RequestException) as exc:
                if isinstance(exc, SlackError) and exc.transient:
                    raise  # the worker tries again; a page already out is not sent twice (dedup keys)
                failed.append(f"{what}: {exc}")
        label = "🧪 DRILL: " if inc.drill else ""
        hand = f" Page them by hand: {by_hand}." if by_hand else " Page them by hand."
        if done:
            record = f"Paged {name}: {', '.join(done)}" + (f"; failed: {'; '.join(failed)}" if failed else "")
            report = f"{label}📟 {record}."
        elif failed:
            record = f"Paging {name} failed ({'; '.join(failed)})"
            report = f"{label}⚠️ {record}.{'' if inc.drill else hand}"
        else:
            record = f"Could not page {name}: {unset}"
            report = f"{label}⚠️ {unset}.{'' if inc.drill else hand}"
        self.service.record_page(inc.number, by, f"{label}{record}", failed=not done)
        self._post_for(inc, report)

    def _trigger_pagerduty(self, routing_key: str, inc, by: str, what: str) -> None:
        sev = self.settings.severity(inc.severity)
        body = {"routing_key": routing_key, "event_action": "trigger",
                "dedup_key": f"opg-incident-{inc.number}-{what}",  # a resend after a crash is the same page
                "payload": {"summary": f"{'DRILL: ' if inc.drill else ''}Incident {inc.number}: {inc.title}"[:1024],
                            "source": "opg-incident",
                            "severity": "critical" if sev and sev.key == "critical" else "error",
                            "custom_details": {"document": self.document_url(inc.number), "paged_by": by,
                                               "drill": inc.drill}}}
        import requests

        response = requests.post(self.pagerduty_url, json=body, timeout=10)
        response.raise_for_status()

    # -- the analysis -------------------------------------------------------------------------------
    @KINDS.announcement("rca_shared", what="share the root-cause analysis")
    def _share_rca(self, inc, happened, item) -> None:
        again = f"📖 Updated (it changed since it was shared at {happened.old}): the" if happened.old else "📖 The"
        text = (f"{again} root-cause analysis of incident {inc.number}: {defuse(inc.title)}\n"
                f"Summary: {defuse(inc.summary) or 'not set'}\n"
                f"Read it: {inc.rca_url or self.document_url(inc.number) + '/rca.md'}")
        failed = self._post_stakeholders(inc, self.settings.stakeholders.share_targets, text)
        if failed:
            self._post_for(inc, "⚠️ Could not share in " + ", ".join("#" + f for f in failed) + ".")
