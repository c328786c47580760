"""What Slack sees when the record changes: the headline posted, then edited in place, announcements, the
comms channel, pages, the end of the incident and the archive. `heard` is the core's subscriber: inside the
change's transaction it decides what Slack is told and queues it in the outbox; the senders of the outbox
kinds (declared with KINDS where they are written) run off the ack path, one call at a time."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from urllib.parse import urlsplit

from opg_incident_core import outbox
from opg_incident_core.reminders import DueReminder, ReminderSchedule
from opg_incident_core.service import SYSTEM
from opg_incident_core.text import defuse, mention

from . import blocks
from .effects_channel import ChannelEffects, channel_name  # noqa: F401 (channel_name: where it was)
from .effects_comms import CommsEffects
from .gateway import SlackError
from .kinds import KINDS
from .replies import Replies

log = logging.getLogger(__name__)
LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0"}
# What happened that the headline shows: a change of these queues a sync of the headline.
HEADLINE_KINDS = frozenset({"declared", "summary", "impact", "severity", "role", "closed", "reopened", "channel",
                            "edited", "call", "offered", "handover_accepted", "handover_declined",
                            "handover_expired", "handover_withdrawn", "rca_published"})
HEADLINE = "headline"  # the outbox kind: post the headline, or update it
HEADLINE_EDIT_GAP = dt.timedelta(seconds=1)  # at most one edit of a headline a second
HEADLINE_SETTLE = dt.timedelta(seconds=1.5)  # an edit waits this long after the change that asks for it
BOT_IN_BACKTICKS = re.compile(r"`(<@[UW][A-Z0-9]+>)\s+([^`\n]*)`")


class Effects(CommsEffects, ChannelEffects, Replies):
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
        self._announced = KINDS.announced()
        service.subscribe(self.heard, HEADLINE_KINDS | self._announced)

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
        self.slack.stop()  # a call waiting for Slack's pace would keep the worker for up to MAX_PACE_WAIT
        if self.worker is not None:
            self.worker.stop()

    def wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def after(self, outcome) -> None:
        """After a change: when something happened, it queued its outbox items in its own transaction (see
        `heard`), now committed: wake the worker to send them."""
        if outcome.happened:
            self.wake()

    def job(self, kind: str, number: int | None = None, payload: dict | None = None,
            coalesce_key: str | None = None) -> None:
        """Queue a Slack job durably (it survives a restart), then wake the worker."""
        self.service.enqueue_job(kind, number, payload or {}, coalesce_key)
        self.wake()

    # -- the core's subscriber ----------------------------------------------------------------------
    def heard(self, recorded) -> None:
        """What Slack is told of a change, queued in its transaction: an announcement of each thing that
        happened that has one, and a sync of the headline when it shows something that changed. A new incident's
        headline goes first (until it is posted nothing else has a place); otherwise the announcements go first
        and the headline follows, once settled (`headline_wait`)."""
        number = recorded.incident.number
        headline = any(h.kind in HEADLINE_KINDS for h in recorded.happened)
        if headline and not recorded.incident.headline_ts:
            recorded.queue(HEADLINE, coalesce_key=f"{HEADLINE}:{number}")
            headline = False
        for happened in recorded.happened:
            if happened.kind in self._announced:
                recorded.queue(happened.kind, dataclasses.asdict(happened))
        if headline:
            recorded.queue(HEADLINE, coalesce_key=f"{HEADLINE}:{number}")

    # -- what the worker asks ---------------------------------------------------------------------------
    def plan(self, item) -> list:
        """The steps of an outbox item. One step may post several messages: each post is keyed, so a
        step run again after a crash does not post twice."""
        return KINDS.plan(self, item)

    def wait(self, item) -> float:
        """Seconds the item should wait before its first step (its kind's pace)."""
        return KINDS.wait(self, item)

    def what(self, kind: str) -> str | None:
        """What an item of `kind` does, in people's words."""
        return KINDS.what(kind)

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
    def headline_wait(self, item) -> float:
        """The one pace rule of the headline. Its first post waits for nothing. An edit waits a second after the
        last edit of the incident's headline ended (any replica's: a change made while that edit was on its way
        was queued behind it), and HEADLINE_SETTLE after the change that asked for it: the changes that follow
        at once (a handover's offer and its acceptance, a few commands in a row) go in the same edit."""
        if not self.service.get(item.number).headline_ts:
            return 0.0
        now = self.service.now()
        at = now
        last = outbox.last_done(f"{HEADLINE}:{item.number}")
        if last is not None:
            at = max(at, last + HEADLINE_EDIT_GAP)
        if item.created_at is not None:
            at = max(at, item.created_at + HEADLINE_SETTLE)
        return (at - now).total_seconds()

    @KINDS.job(HEADLINE, "refresh", "declared", what="post or update the headline", wait=headline_wait)
    def sync_headline(self, item) -> None:
        """The headline shows the record as it is now: posted when the incident has none yet, otherwise
        updated in place. Run again, it does the same (a post retried after a crash is looked for first).
        ("refresh" and "declared": the kinds that did this before, still in an outbox at the upgrade.)"""
        number = item.number
        inc = self.service.get(number)
        text, body = blocks.headline(inc, self.settings, self.document_url(number), self.service.handovers(number),
                                     getattr(self.slack, "user_name", None))
        if inc.headline_ts:
            self.slack.update(inc.headline_channel_id, inc.headline_ts, text, body)
            return
        where = self.settings.channels.reports_channel if inc.report else self.settings.channels.incidents
        channel = self.slack.channel_id(where)
        if channel is None:
            self._best(self.tell, inc.reporter, None, f"I could not post incident {number} in #{where}: the channel "
                                                      f"does not exist. Ask a Slack admin to create it and invite me. "
                                                      f"The record: {self.document_url(number)}")
            raise SlackError("chat.postMessage", f"channel #{where} not found; create it and invite the bot")
        try:
            ts = self.slack.post(channel, text, body)
        except SlackError as exc:
            if exc.code != "not_in_channel":
                raise
            self.slack.join(channel)
            ts = self.slack.post(channel, text, body)
        self.service.set_headline(number, channel, ts)

    # -- announcements ------------------------------------------------------------------------------
    @KINDS.announcement("role", what="announce a role change")
    def _announce_role(self, inc, happened, item) -> None:
        origin_channel = item.payload.get("origin")
        role = self.settings.role(happened.role)
        name = role.name if role else happened.role
        if happened.new:
            was = f", taking over from {mention(happened.old)}" if happened.old else ""
            text = f"{mention(happened.new)} is now {name}{was}."
        else:
            text = f"{mention(happened.old)} is no longer {name}."
        if inc.channel_id:
            self._best(self._post_for, inc, text, skip=origin_channel)
        if happened.new and happened.new[:1] in "UW" and inc.channel_id:
            self._best(self.invite, inc, [happened.new])  # everyone with a role is in it
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
    @KINDS.announcement("offered", what="offer a role")
    def _handover_asked(self, inc, happened, item) -> None:
        """A handover offered or requested: whoever must accept is asked (Accept / Decline), the channel told."""
        handover = self.service.get_handover(happened.entry_id)
        role = self.settings.role(handover.role)
        name = role.name if role else handover.role
        note = f"\nNote: {defuse(handover.note)}" if handover.note else ""
        if handover.is_request:
            text = (f"{mention(handover.to_user)} asks to take over as {name} of incident {inc.number}: "
                    f"{defuse(inc.title)}{note}\nDo you hand it over?")
        else:
            guidance = f"\n_{role.guidance}_" if role and role.guidance else ""
            text = (f"{self._drill_label(inc)}{mention(handover.requested_by)} offers you the role of {name} for "
                    f"incident {inc.number}: {defuse(inc.title)}\n{role.description if role else ''}{guidance}{note}\n"
                    f"{self._where(inc)}\nLiving document: {self.document_url(inc.number)}")
        if handover.awaiting[:1] in "UW":
            channel, ts = self.slack.dm(handover.awaiting, text, blocks.handover(text, handover.id))
            self.service.set_handover_message(handover.id, channel, ts)
        if inc.channel_id:
            self._best(self._post_for, inc, f"🤝 {name}: offered to {mention(handover.to_user)}, waiting for "
                                            f"{mention(handover.awaiting)} to accept.",
                       skip=item.payload.get("origin"))  # said there: the command's answer says it

    @KINDS.announcement("handover_accepted", "handover_declined", "handover_expired", "handover_withdrawn",
                        what="say how a handover ended")
    def _handover_answered(self, inc, happened, item) -> None:
        handover = self.service.get_handover(happened.entry_id)
        role = self.settings.role(handover.role)
        name = role.name if role else handover.role
        status = handover.status
        if handover.message_ts:
            self._best(self.slack.update, handover.message_channel, handover.message_ts,
                       f"The offer of {name} was {status}.",
                       blocks.text_message(f"The offer of {name} for incident {inc.number} was *{status}*."))
        if status == "accepted":
            return  # the role change announces itself
        keeps = f" {mention(handover.from_holder)} stays {name}." if handover.from_holder else ""
        text = f"The offer of {name} to {mention(handover.to_user)} was {status}.{keeps}"
        if inc.channel_id:
            self._best(self._post_for, inc, text)
        for user in {handover.requested_by, handover.from_holder} - {None, happened.by}:
            if user[:1] in "UW":
                self._best(self.slack.dm, user, f"Incident {inc.number}: {text}")

    # -- reminders ----------------------------------------------------------------------------------
    @KINDS.job("remind", what="send a reminder")
    def remind(self, item) -> None:
        """Send a reminder if it is still due; it counts only once it is out."""
        number, fields = item.number, item.payload
        schedule = ReminderSchedule(self.service)
        reminder = DueReminder(**{k: fields.get(k) for k in DueReminder.__dataclass_fields__})
        still_due = {(r.number, r.key) for r in ReminderSchedule(self.service, minute_seconds=self.minute).due()}
        if (number, reminder.key) not in still_due:
            return  # answered meanwhile (role taken, severity set, incident closed)
        role = self.settings.role(reminder.role) if reminder.role else None
        text = BOT_IN_BACKTICKS.sub(r"\1 `\2`", reminder.text)  # the bot's mention live, the command as code
        body = blocks.reminder(text, reminder.number, reminder.role, role.name if role else None)
        if not self._post_for(self.service.get(number), text, body):
            return
        schedule.sent(reminder)

    def tell(self, user: str, channel: str | None, text: str, response_url: str | None = None) -> None:
        """An ephemeral note where they are: through the slash command's response_url (any channel), or in a
        channel the bot is in; else a direct message."""
        if response_url and self.slack.respond(response_url, text):
            return
        if channel and self.slack.is_member(channel):
            try:
                self.slack.ephemeral(channel, user, text)
                return
            except SlackError as exc:
                if exc.transient:
                    raise
        self.slack.dm(user, text)

    @KINDS.job("tell", what="send a message")
    def _tell_job(self, item) -> None:
        p = item.payload
        self.tell(p.get("user", ""), p.get("channel"), p.get("text", ""), p.get("response_url"))

    @KINDS.job("post", what="post a message")
    def _post_job(self, item) -> None:
        self.slack.post(item.payload.get("channel"), item.payload.get("text", ""))

    @KINDS.job("react", what="add a reaction")
    def _react_job(self, item) -> None:
        p = item.payload
        self.slack.react(p.get("channel"), p.get("ts"), p.get("name"))

    @KINDS.job("escalation_menu", what="post the list of teams to page")
    def _escalation_menu(self, item) -> None:
        self.slack.post(item.payload.get("channel"), *blocks.escalation_menu(item.number, self.settings.specialists))

    @KINDS.job("archive", what="archive the comms channel")
    def _archive_job(self, item) -> None:
        self.service.archive_channel(item.number, SYSTEM)  # queues the "archived" announcement

    @KINDS.announcement("closed", what="announce the end of the incident")
    def _announce_end(self, inc, happened, item) -> None:
        closed_by = happened.by
        why = f" ({defuse(inc.close_reason)})" if inc.close_reason else ""
        ended = "resolved" if inc.close_reason in (None, "resolved") else f"closed{why}"
        text = (f"✅ Incident {inc.number} is closed by {mention(closed_by)}{why}. Thank you all. "
                f"The root-cause analysis draft: {self.document_url(inc.number)}/rca.md")
        if self.channel_usable(inc):
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

    # -- paging: effects_comms.CommsEffects.page_oncall ------------------------------------------------
    def _post_for(self, inc, text: str, body: list | None = None, skip: str | None = None) -> bool:
        """Post in the incident channel, or on the headline's thread when there is no channel (yet, or while it
        is archived after a reopen); not in `skip` (where a command said it). False: nowhere to post."""
        if self.channel_usable(inc):
            if inc.channel_id != skip:
                self.slack.post(inc.channel_id, text, body)
            return True
        if inc.headline_ts:
            self.slack.post(inc.headline_channel_id, text, body, thread_ts=inc.headline_ts)
            return True
        return False



# Answers to commands (replies.py): their sender and their pace are Replies' own.
KINDS.add("ack", lambda effects, item: [lambda: effects.send_acks(item)], what="answer a command",
          wait=lambda effects, item: effects.acks_wait(item), source=f"{__name__}.Replies.send_acks")
