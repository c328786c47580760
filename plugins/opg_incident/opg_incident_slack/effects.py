"""What Slack sees when the record changes: the headline edited in place, announcements, the comms
channel, pages, the end of the incident and the archive. Runs off the ack path, one call at a time."""
from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from opg_incident_core import IncidentError
from opg_incident_core.service import SYSTEM
from opg_incident_core.text import defuse, mention

from . import blocks
from .effects_comms import CommsEffects
from .gateway import SlackError

log = logging.getLogger(__name__)
HEADLINE_KINDS = {"declared", "summary", "impact", "severity", "role", "closed", "reopened", "channel", "edited"}


def channel_name(pattern: str, incident, attempt: int = 0) -> str:
    """A valid Slack channel name from the settings' pattern: lowercase a-z0-9-_, at most 80 chars."""
    slug = re.sub(r"[^a-z0-9]+", "-", incident.title.lower()).strip("-") or "incident"
    name = pattern.format(number=incident.number, slug=slug, date=incident.declared_at.strftime("%Y-%m-%d"))
    name = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")
    suffix = f"-{attempt + 1}" if attempt else ""
    return (name[: 80 - len(suffix)].rstrip("-") + suffix) or f"inc-{incident.number}"


class Effects(CommsEffects):
    def __init__(self, gateway, service, settings, config):
        self.slack = gateway
        self.service = service
        self._settings = settings
        self.public_url = getattr(config, "INCIDENT_PUBLIC_URL", "http://localhost:3141").rstrip("/")
        self.oncall_override = getattr(config, "INCIDENT_ONCALL", "")
        self.pagerduty_url = getattr(config, "INCIDENT_PAGERDUTY_URL", "https://events.pagerduty.com/v2/enqueue")
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opg-slack")
        self._channel_lock = threading.Lock()

    @property
    def settings(self):
        return self._settings()

    def document_url(self, number: int) -> str:
        return f"{self.public_url}/incidents/{number}"

    def submit(self, fn, *args) -> None:
        """Run a Slack job on the worker; failures are logged, never raised at the caller."""
        def job():
            try:
                fn(*args)
            except (SlackError, IncidentError) as exc:
                log.warning("%s failed: %s", getattr(fn, "__name__", fn), exc)
            except Exception:
                log.exception("%s crashed", getattr(fn, "__name__", fn))
        return self._worker.submit(job)

    def shutdown(self) -> None:
        self._worker.shutdown(wait=True)

    # -- after a change -----------------------------------------------------------------------------
    def after(self, outcome, origin_channel: str | None = None) -> None:
        if outcome is not None and outcome.changed:
            self.submit(self._apply, outcome, origin_channel)

    def _apply(self, outcome, origin_channel) -> None:
        inc = outcome.incident
        for happened in outcome.happened:
            if self._comms(inc, happened):
                continue
            if happened.kind == "declared" and not inc.headline_ts:
                self.post_headline(inc.number)
            elif happened.kind == "role":
                self._announce_role(inc, happened, origin_channel)
            elif happened.kind == "closed":
                self._announce_end(inc, happened.by)
            elif happened.kind == "reopened":
                self._announce_reopen(inc)
            elif happened.kind == "offered":
                self._offer_role(inc, happened)
            elif happened.kind.startswith("handover_"):
                self._handover_answered(inc, happened)
            elif happened.kind == "archived" and inc.channel_id:
                self.slack.post(inc.channel_id, "🗄️ Archiving this channel. The record stays in the living "
                                                f"document: {self.document_url(inc.number)}")
                self.slack.archive(inc.channel_id)
        if any(h.kind in HEADLINE_KINDS for h in outcome.happened):
            self.refresh_headline(inc.number)

    # -- the headline -------------------------------------------------------------------------------
    def post_headline(self, number: int) -> None:
        inc = self.service.get(number)
        if inc.headline_ts:
            return
        where = self.settings.channels.reports_channel if inc.report else self.settings.channels.incidents
        channel = self.slack.channel_id(where)
        if channel is None:
            raise SlackError("chat.postMessage", f"channel #{where} not found; create it and invite the bot")
        text, body = blocks.headline(inc, self.settings, self.document_url(number))
        try:
            ts = self.slack.post(channel, text, body)
        except SlackError as exc:
            if exc.code != "not_in_channel":
                raise
            self.slack.join(channel)
            ts = self.slack.post(channel, text, body)
        self.service.set_headline(number, channel, ts)

    def refresh_headline(self, number: int) -> None:
        inc = self.service.get(number)
        if not inc.headline_ts:
            return
        text, body = blocks.headline(inc, self.settings, self.document_url(number))
        self.slack.update(inc.headline_channel_id, inc.headline_ts, text, body)

    # -- announcements ------------------------------------------------------------------------------
    def _announce_role(self, inc, happened, origin_channel) -> None:
        role = self.settings.role(happened.role)
        name = role.name if role else happened.role
        if happened.new:
            was = f", taking over from {mention(happened.old)}" if happened.old else ""
            text = f"{mention(happened.new)} is now {name}{was}."
        else:
            text = f"{mention(happened.old)} is no longer {name}."
        if inc.channel_id and inc.channel_id != origin_channel:
            self.slack.post(inc.channel_id, text)
        if happened.new and role and happened.new[:1] in "UW":
            guidance = f"\n{role.guidance}" if role.guidance else ""
            self.slack.dm(happened.new, f"You are now {name} of incident {inc.number}: {defuse(inc.title)}\n"
                                        f"{role.description}{guidance}\nLiving document: "
                                        f"{self.document_url(inc.number)}")

    # -- handovers -----------------------------------------------------------------------------------
    def _offer_role(self, inc, happened) -> None:
        offer = self.service.get_handover(happened.entry_id)
        role = self.settings.role(offer.role)
        name = role.name if role else offer.role
        note = f"\nNote: {defuse(offer.note)}" if offer.note else ""
        if offer.is_request:
            text = (f"{mention(offer.to_user)} asks to take over as {name} of incident {inc.number}: "
                    f"{defuse(inc.title)}{note}\nDo you hand it over?")
        else:
            guidance = f"\n_{role.guidance}_" if role and role.guidance else ""
            text = (f"{mention(offer.requested_by)} offers you the role of {name} for incident {inc.number}: "
                    f"{defuse(inc.title)}\n{role.description if role else ''}{guidance}{note}\n"
                    f"Living document: {self.document_url(inc.number)}")
        if offer.awaiting[:1] in "UW":
            channel, ts = self.slack.dm(offer.awaiting, text, blocks.handover_offer(text, offer.id))
            self.service.set_handover_message(offer.id, channel, ts)
        if inc.channel_id:
            self.slack.post(inc.channel_id, f"🤝 {name}: offered to {mention(offer.to_user)}, waiting for "
                                            f"{mention(offer.awaiting)} to accept.")

    def _handover_answered(self, inc, happened) -> None:
        offer = self.service.get_handover(happened.entry_id)
        role = self.settings.role(offer.role)
        name = role.name if role else offer.role
        status = offer.status
        if offer.message_ts:
            self.slack.update(offer.message_channel, offer.message_ts, f"The offer of {name} was {status}.",
                              blocks.text_message(f"The offer of {name} for incident {inc.number} was *{status}*."))
        if status == "accepted":
            return  # the role change announces itself
        keeps = f" {mention(offer.from_holder)} stays {name}." if offer.from_holder else ""
        text = f"The offer of {name} to {mention(offer.to_user)} was {status}.{keeps}"
        if inc.channel_id:
            self.slack.post(inc.channel_id, text)
        for user in {offer.requested_by, offer.from_holder} - {None, happened.by}:
            if user[:1] in "UW":
                self.slack.dm(user, f"Incident {inc.number}: {text}")

    # -- reminders ----------------------------------------------------------------------------------
    def remind(self, reminder, schedule) -> None:
        """Send one due reminder; it counts only once it is out."""
        role = self.settings.role(reminder.role) if reminder.role else None
        body = blocks.reminder(reminder.text, reminder.number, reminder.role, role.name if role else None)
        if reminder.channel_id:
            self.slack.post(reminder.channel_id, reminder.text, body)
        elif reminder.headline_ts:
            self.slack.post(reminder.headline_channel_id, reminder.text, body, thread_ts=reminder.headline_ts)
        else:
            return
        schedule.sent(reminder)

    def _announce_end(self, inc, closed_by: str) -> None:
        text = (f"✅ Incident {inc.number} is closed by {mention(closed_by)}. Thank you all. "
                f"The root-cause analysis draft: {self.document_url(inc.number)}/rca.md")
        if inc.channel_id:
            self.slack.post(inc.channel_id, text)
        if inc.headline_ts:
            self.slack.post(inc.headline_channel_id, f"Incident {inc.number} is resolved.",
                            thread_ts=inc.headline_ts)
        lead = inc.roles.get("lead")
        if lead and lead[:1] in "UW":
            self.slack.dm(lead, f"Incident {inc.number} is closed. Next steps for the lead:\n"
                                f"1. Schedule the root-cause analysis with the team.\n"
                                f"2. Start from the draft: {self.document_url(inc.number)}/rca.md\n"
                                f"3. Share it with the delivery team, the wider organisation and leadership.\n"
                                + ("4. Archive the comms channel with `archive` once it is fixed."
                                   if self.settings.archive.when == "manual" and inc.channel_id else ""))
        self._tell_stakeholders(inc, f"✅ Incident {inc.number} is resolved: {defuse(inc.title)}\n"
                                     f"Final summary: {defuse(inc.summary) or 'not set'}\n"
                                     f"The record: {self.document_url(inc.number)}")
        if inc.channel_id and self.settings.archive.when == "on_close":
            self.archive(inc.number)

    def _announce_reopen(self, inc) -> None:
        if inc.channel_id:
            self.slack.unarchive(inc.channel_id)  # reopening always brings the channel back
            self.slack.post(inc.channel_id, f"🔥 Incident {inc.number} is open again.")
        if inc.headline_ts:
            self.slack.post(inc.headline_channel_id, f"Incident {inc.number} is open again.",
                            thread_ts=inc.headline_ts)
        self._tell_stakeholders(inc, f"🔥 Incident {inc.number} is open again: {defuse(inc.title)}")

    def archive(self, number: int) -> None:
        """Archive the comms channel on the settings' say-so (on close, or after the delay)."""
        self._apply(self.service.archive_channel(number, SYSTEM), None)

    # -- the comms channel --------------------------------------------------------------------------
    def create_comms_channel(self, number: int, by: str) -> None:
        with self._channel_lock:  # a double click never makes two channels
            inc = self.service.get(number)
            if inc.channel_id:
                return
            for attempt in range(10):
                pattern = ("drill-" if inc.drill else "") + self.settings.channels.comms_pattern
                name = channel_name(pattern, inc, attempt)
                try:
                    channel = self.slack.create_channel(name)
                    break
                except SlackError as exc:
                    if exc.code != "name_taken":
                        raise
            else:
                raise SlackError("conversations.create", "name_taken")
            outcome = self.service.attach_channel(number, channel, name, by)
        self.slack.invite(channel, [inc.reporter, inc.roles.get("lead"), by])
        self.slack.set_topic(channel, f"{inc.title} | {self.document_url(number)}")
        self.slack.post(channel, self._welcome(outcome.incident))
        self.refresh_headline(number)

    def _welcome(self, inc) -> str:
        process = f"\nThe process: {self.settings.process_url}" if self.settings.process_url else ""
        drill = "🧪 This is a drill: practise the process, page nobody unless asked.\n" if inc.drill else ""
        return (f"👋 {drill}This is the comms channel of incident {inc.number}: {defuse(inc.title)}\n"
                f"Living document: {self.document_url(inc.number)}\n"
                f"Mention me with a command: `lead me`, `scribe @someone`, `summary <text>`, `impact <text>`, "
                f"`sev <{'|'.join(s.name for s in self.settings.severities)}>`, `action <text>`, `close`, "
                f"`help`. Pin important messages: they go on the timeline.{process}")

    # -- paging -------------------------------------------------------------------------------------
    def page_oncall(self, number: int, by: str) -> None:
        inc = self.service.get(number)
        oncall = self.oncall_override or self.settings.paging.oncall_user
        where = f"<#{inc.channel_id}>" if inc.channel_id else f"the headline in #{self.settings.channels.incidents}"
        message = (f"📟 {mention(by)} pages you for incident {inc.number}: {defuse(inc.title)}\n"
                   f"Join {where}. Living document: {self.document_url(number)}")
        results = []
        try:
            if self.settings.paging.pagerduty_routing_key:
                self._trigger_pagerduty(self.settings.paging.pagerduty_routing_key, inc, by, "oncall")
                results.append("PagerDuty triggered")
            if oncall:
                self.slack.dm(oncall, message)
                results.append(f"{mention(oncall)} was sent a direct message")
            if not results:
                raise SlackError("paging", "no on-call lead is configured (paging.oncall_user or INCIDENT_ONCALL)")
            report = f"📟 Paged the on-call lead: {', '.join(results)}."
        except (SlackError, requests.RequestException) as exc:
            report = (f"⚠️ Paging the on-call lead failed ({exc}). Page them by hand: call the on-call "
                      f"number or post in #{self.settings.channels.incidents}.")
        self._post_for(inc, report)

    def _post_for(self, inc, text: str) -> None:
        """Post in the incident channel, or on the headline's thread when there is no channel yet."""
        if inc.channel_id:
            self.slack.post(inc.channel_id, text)
        elif inc.headline_ts:
            self.slack.post(inc.headline_channel_id, text, thread_ts=inc.headline_ts)
