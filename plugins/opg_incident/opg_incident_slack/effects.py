"""What Slack sees when the record changes: the headline edited in place, announcements, the comms
channel, pages, the end of the incident and the archive. Runs off the ack path, one call at a time."""
from __future__ import annotations

import dataclasses
import logging
import re
from urllib.parse import urlsplit

from opg_incident_core.reminders import DueReminder, ReminderSchedule
from opg_incident_core.service import SYSTEM
from opg_incident_core.text import defuse, mention
from opg_incident_core.views import Happened

from . import blocks
from .effects_comms import CommsEffects
from .gateway import SlackError

log = logging.getLogger(__name__)
LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0"}
HEADLINE_KINDS = {"declared", "summary", "impact", "severity", "role", "closed", "reopened", "channel", "edited",
                  "call", "offered", "handover_accepted", "handover_declined", "handover_expired",
                  "handover_withdrawn", "rca_published"}
ANNOUNCED = {"declared", "role", "closed", "reopened", "offered", "handover_accepted", "handover_declined",
             "handover_expired", "handover_withdrawn", "archived"}


def channel_name(pattern: str, incident, attempt: int = 0) -> str:
    """A valid Slack channel name from the settings' pattern: lowercase a-z0-9-_, at most 80 chars."""
    slug = re.sub(r"[^a-z0-9]+", "-", incident.title.lower()).strip("-") or "incident"
    name = pattern.format(number=incident.number, slug=slug, date=incident.declared_at.strftime("%Y-%m-%d"))
    name = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")
    suffix = f"-{attempt + 1}" if attempt else ""
    return (name[: 80 - len(suffix)].rstrip("-") + suffix) or f"inc-{incident.number}"


class Effects(CommsEffects):
    """Turns outbox items into Slack calls. `plan(item)` gives the steps; OutboxWorker runs them."""

    def __init__(self, gateway, service, settings, config):
        self.slack = gateway
        self.service = service
        self._settings = settings
        port = getattr(config, "INCIDENT_WEB_PORT", 3141)
        self.public_url = (getattr(config, "INCIDENT_PUBLIC_URL", "") or f"http://localhost:{port}").rstrip("/")
        if urlsplit(self.public_url).hostname in LOCAL_HOSTS:
            log.warning("INCIDENT_PUBLIC_URL is not set (or points at this machine): every link the bot posts in "
                        "Slack would point at %s, which nobody else can open. Set INCIDENT_PUBLIC_URL to the "
                        "address people reach the living document at, e.g. https://incidents.example.org.",
                        self.public_url)
        self.oncall_override = getattr(config, "INCIDENT_ONCALL", "")
        self.minute = float(getattr(config, "INCIDENT_MINUTE_SECONDS", 60) or 60)
        self.pagerduty_url = getattr(config, "INCIDENT_PAGERDUTY_URL", "https://events.pagerduty.com/v2/enqueue")
        self.worker = None
        service.announce_kinds = frozenset(ANNOUNCED | set(self.COMMS_KINDS))
        service.refresh_kinds = frozenset(HEADLINE_KINDS)

    @property
    def settings(self):
        return self._settings()

    def document_url(self, number: int) -> str:
        return f"{self.public_url}/incidents/{number}"

    # -- the worker ---------------------------------------------------------------------------------
    def start(self, **options) -> None:
        from .outbox_worker import OutboxWorker
        self.worker = OutboxWorker(self, **options)
        self.worker.start()

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def after(self, outcome=None, origin_channel=None) -> None:
        """The change queued its own outbox items in its transaction: just wake the worker."""
        self.wake()

    def job(self, kind: str, number: int | None = None, payload: dict | None = None,
            coalesce_key: str | None = None) -> None:
        """Queue a Slack job durably (it survives a restart), then wake the worker."""
        self.service.enqueue_job(kind, number, payload or {}, coalesce_key)
        self.wake()

    def plan(self, item) -> list:
        """The steps of an outbox item. One step may post several messages: each post is keyed, so a
        step run again after a crash does not post twice."""
        p, number = item.payload, item.number
        if item.kind == "refresh":
            return [lambda: self.refresh_headline(number)]
        if item.kind in JOBS:
            return JOBS[item.kind](self, item, p)
        happened = Happened(**{k: p.get(k) for k in ("kind", "by", "old", "new", "role", "entry_id")})
        if item.kind == "page":  # one page, one PagerDuty dedup key: the outbox item's, the same on a retry
            happened = dataclasses.replace(happened, entry_id=item.id)
        return [lambda: self._announce(self.service.get(number), happened, p.get("origin"))]

    def _announce(self, inc, happened, origin) -> None:
        if self._comms(inc, happened):
            return
        if happened.kind == "declared":
            self.post_headline(inc.number)
        elif happened.kind == "role":
            self._announce_role(inc, happened, origin)
        elif happened.kind == "closed":
            self._announce_end(inc, happened.by)
        elif happened.kind == "reopened":
            self._announce_reopen(inc)
        elif happened.kind == "offered":
            self._offer_role(inc, happened)
        elif happened.kind.startswith("handover_"):
            self._handover_answered(inc, happened)
        elif happened.kind == "archived" and inc.channel_id:
            self._best(self.slack.post, inc.channel_id, "🗄️ Archiving this channel. The record stays in the "
                                                        f"living document: {self.document_url(inc.number)}")
            self.slack.archive(inc.channel_id)

    @staticmethod
    def _best(fn, *args, **kwargs):
        """One of several independent calls: a permanent refusal is logged and the others go on."""
        try:
            return fn(*args, **kwargs)
        except SlackError as exc:
            if exc.transient:
                raise
            log.warning("%s: %s", getattr(fn, "__name__", fn), exc)
            return None

    # -- the headline -------------------------------------------------------------------------------
    def post_headline(self, number: int) -> None:
        inc = self.service.get(number)
        if inc.headline_ts:
            return
        where = self.settings.channels.reports_channel if inc.report else self.settings.channels.incidents
        channel = self.slack.channel_id(where)
        if channel is None:
            self._best(self.tell, inc.reporter, None, f"I could not post incident {number} in #{where}: the channel "
                                                      f"does not exist. Ask a Slack admin to create it and invite me. "
                                                      f"The record: {self.document_url(number)}")
            raise SlackError("chat.postMessage", f"channel #{where} not found; create it and invite the bot")
        text, body = blocks.headline(inc, self.settings, self.document_url(number), self.service.handovers(number))
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
        text, body = blocks.headline(inc, self.settings, self.document_url(number), self.service.handovers(number))
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
            self._best(self.slack.post, inc.channel_id, text)
        if happened.new and happened.new[:1] in "UW" and inc.channel_id and not inc.channel_archived:
            self._best(self.slack.invite, inc.channel_id, [happened.new])  # everyone with a role is in it
        if happened.new and role and happened.new[:1] in "UW":
            guidance = f"\n{role.guidance}" if role.guidance else ""
            self._best(self.slack.dm, happened.new, f"{self._drill_label(inc)}You are now {name} of incident "
                                                    f"{inc.number}: {defuse(inc.title)}\n{role.description}{guidance}\n"
                                                    f"{self._where(inc)}\nLiving document: "
                                                    f"{self.document_url(inc.number)}")

    def _where(self, inc) -> str:
        """Where the incident is worked on: its comms channel, or the headline until there is one."""
        if inc.channel_id:
            return f"Comms channel: <#{inc.channel_id}>"
        return f"No comms channel yet: the headline in #{self.settings.channels.incidents}."

    @staticmethod
    def _drill_label(inc) -> str:
        return "🧪 DRILL: " if inc.drill else ""

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
            text = (f"{self._drill_label(inc)}{mention(offer.requested_by)} offers you the role of {name} for "
                    f"incident {inc.number}: {defuse(inc.title)}\n{role.description if role else ''}{guidance}{note}\n"
                    f"{self._where(inc)}\nLiving document: {self.document_url(inc.number)}")
        if offer.awaiting[:1] in "UW":
            channel, ts = self.slack.dm(offer.awaiting, text, blocks.handover_offer(text, offer.id))
            self.service.set_handover_message(offer.id, channel, ts)
        if inc.channel_id:
            self._best(self.slack.post, inc.channel_id, f"🤝 {name}: offered to {mention(offer.to_user)}, waiting for "
                                            f"{mention(offer.awaiting)} to accept.")

    def _handover_answered(self, inc, happened) -> None:
        offer = self.service.get_handover(happened.entry_id)
        role = self.settings.role(offer.role)
        name = role.name if role else offer.role
        status = offer.status
        if offer.message_ts:
            self._best(self.slack.update, offer.message_channel, offer.message_ts, f"The offer of {name} was {status}.",
                              blocks.text_message(f"The offer of {name} for incident {inc.number} was *{status}*."))
        if status == "accepted":
            return  # the role change announces itself
        keeps = f" {mention(offer.from_holder)} stays {name}." if offer.from_holder else ""
        text = f"The offer of {name} to {mention(offer.to_user)} was {status}.{keeps}"
        if inc.channel_id:
            self._best(self.slack.post, inc.channel_id, text)
        for user in {offer.requested_by, offer.from_holder} - {None, happened.by}:
            if user[:1] in "UW":
                self._best(self.slack.dm, user, f"Incident {inc.number}: {text}")

    # -- reminders ----------------------------------------------------------------------------------
    def remind(self, number: int, fields: dict) -> None:
        """Send a reminder if it is still due; it counts only once it is out."""
        schedule = ReminderSchedule(self.service)
        reminder = DueReminder(**{k: fields.get(k) for k in DueReminder.__dataclass_fields__})
        still_due = {(r.number, r.key) for r in ReminderSchedule(self.service, minute_seconds=self.minute).due()}
        if (number, reminder.key) not in still_due:
            return  # answered meanwhile (role taken, severity set, incident closed)
        role = self.settings.role(reminder.role) if reminder.role else None
        body = blocks.reminder(reminder.text, reminder.number, reminder.role, role.name if role else None)
        if reminder.channel_id:
            self.slack.post(reminder.channel_id, reminder.text, body)
        elif reminder.headline_ts:
            self.slack.post(reminder.headline_channel_id, reminder.text, body, thread_ts=reminder.headline_ts)
        else:
            return
        schedule.sent(reminder)

    def tell(self, user: str, channel: str | None, text: str) -> None:
        """An ephemeral note in the channel where they are, or a direct message when that fails."""
        if channel:
            try:
                self.slack.ephemeral(channel, user, text)
                return
            except SlackError as exc:
                if exc.transient:
                    raise
        self.slack.dm(user, text)

    def _announce_end(self, inc, closed_by: str) -> None:
        why = f" ({defuse(inc.close_reason)})" if inc.close_reason else ""
        ended = "resolved" if inc.close_reason in (None, "resolved") else f"closed{why}"
        text = (f"✅ Incident {inc.number} is closed by {mention(closed_by)}{why}. Thank you all. "
                f"The root-cause analysis draft: {self.document_url(inc.number)}/rca.md")
        if inc.channel_id:
            self._best(self.slack.post, inc.channel_id, text)
        if inc.headline_ts:
            self._best(self.slack.post, inc.headline_channel_id, f"Incident {inc.number} is {ended}.",
                            thread_ts=inc.headline_ts)
        lead = inc.roles.get("lead")
        if lead and lead[:1] in "UW":
            self._best(self.slack.dm, lead, f"Incident {inc.number} is closed. Next steps for the lead:\n"
                                f"1. Schedule the root-cause analysis with the team.\n"
                                f"2. Start from the draft: {self.document_url(inc.number)}/rca.md\n"
                                f"3. When it is done: `rca ready`, then `rca share` (to "
                                f"{', '.join('#' + c for c in self.settings.stakeholders.share_targets)}).\n"
                                + ("4. Archive the comms channel with `archive` once it is fixed."
                                   if self.settings.archive.when == "manual" and inc.channel_id else ""))
        self._tell_stakeholders(inc, f"✅ Incident {inc.number} is {ended}: {defuse(inc.title)}\n"
                                     f"Final summary: {defuse(inc.summary) or 'not set'}\n"
                                     f"The record: {self.document_url(inc.number)}")
        if inc.channel_id and self.settings.archive.when == "on_close":
            self.service.archive_channel(inc.number, SYSTEM)  # queues the "archived" announcement

    def _announce_reopen(self, inc) -> None:
        if inc.channel_id:
            self._best(self.slack.unarchive, inc.channel_id)  # reopening always brings the channel back
            self._best(self.slack.post, inc.channel_id, f"🔥 Incident {inc.number} is open again.")
        if inc.headline_ts:
            self._best(self.slack.post, inc.headline_channel_id, f"Incident {inc.number} is open again.",
                            thread_ts=inc.headline_ts)
        self._tell_stakeholders(inc, f"🔥 Incident {inc.number} is open again: {defuse(inc.title)}")


    # -- the comms channel --------------------------------------------------------------------------
    def create_comms_channel(self, number: int, by: str) -> None:
        """Jobs of one incident run in order, so a double click finds the channel made by the first."""
        inc = self.service.get(number)
        if inc.channel_id:
            return
        try:
            for attempt in range(10):
                pattern = ("drill-" if inc.drill else "") + self.settings.channels.comms_pattern
                name = channel_name(pattern, inc, attempt)
                try:
                    channel = self.slack.create_channel(name)  # takes over one it made before a crash
                    break
                except SlackError as exc:
                    if exc.code != "name_taken":
                        raise
            else:
                raise SlackError("conversations.create", "name_taken")
        except SlackError as exc:
            if not exc.transient:
                self._best(self.tell, by, None, f"Sorry, I could not create the comms channel of incident "
                                                f"{number}: {exc}. Create one by hand and invite me.")
            raise
        self.service.attach_channel(number, channel, name, by)

    def set_up_comms_channel(self, number: int, by: str) -> list:
        """The steps after the channel exists, each on its own so that a retry does the rest."""
        return [
            lambda: self._channel_step(number, lambda inc: self.slack.invite(  # everyone with a role
                inc.channel_id, [*inc.roles.values(), by])),
            lambda: self._channel_step(number, lambda inc: self.slack.set_topic(
                inc.channel_id, f"{inc.title} | {self.document_url(number)}")),
            lambda: self._channel_step(number, lambda inc: self.slack.post(inc.channel_id, self._welcome(inc))),
        ]

    def _channel_step(self, number: int, step) -> None:
        inc = self.service.get(number)
        if inc.channel_id:
            step(inc)

    def _welcome(self, inc) -> str:
        process = f"\nThe process: {self.settings.process_url}" if self.settings.process_url else ""
        drill = "🧪 This is a drill: practise the process, page nobody unless asked.\n" if inc.drill else ""
        return (f"👋 {drill}This is the comms channel of incident {inc.number}: {defuse(inc.title)}\n"
                f"Living document: {self.document_url(inc.number)}\n"
                f"Mention me with a command: `lead me`, `scribe @someone`, `summary <text>`, `impact <text>`, "
                f"`sev <{'|'.join(s.name for s in self.settings.severities)}>`, `action <text>`, `update <text>`, "
                f"`close`. `help` lists every command by who uses it (anyone, the lead, the scribe, the "
                f"communications lead); `help <command>` says more about one. Pin important messages: they go on "
                f"the timeline.{process}")

    # -- paging: effects_comms.CommsEffects.page_oncall ------------------------------------------------
    def _post_for(self, inc, text: str) -> None:
        """Post in the incident channel, or on the headline's thread when there is no channel yet."""
        if inc.channel_id:
            self.slack.post(inc.channel_id, text)
        elif inc.headline_ts:
            self.slack.post(inc.headline_channel_id, text, thread_ts=inc.headline_ts)


JOBS = {
    "create_channel": lambda e, item, p: [lambda: e.create_comms_channel(item.number, p.get("by", "")),
                                          *e.set_up_comms_channel(item.number, p.get("by", ""))],
    "page_oncall": lambda e, item, p: [lambda: e.page_oncall(item.number, p.get("by", ""), item.id)],
    "tell": lambda e, item, p: [lambda: e.tell(p.get("user", ""), p.get("channel"), p.get("text", ""))],
    "post": lambda e, item, p: [lambda: e.slack.post(p.get("channel"), p.get("text", ""))],
    "react": lambda e, item, p: [lambda: e.slack.react(p.get("channel"), p.get("ts"), p.get("name"))],
    "remind": lambda e, item, p: [lambda: e.remind(item.number, p)],
    "archive": lambda e, item, p: [lambda: e.service.archive_channel(item.number, SYSTEM)],
    "escalation_menu": lambda e, item, p: [lambda: e.slack.post(
        p.get("channel"), *blocks.escalation_menu(item.number, e.settings.specialists))],
}
