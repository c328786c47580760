"""The errbot face of opg-incident: chat commands in, the core's answers out. Thin on purpose."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import threading
import time

import errbot.core_plugins
from errbot import BotPlugin, CommandError, botcmd, cmdfilter, re_botcmd

from opg_incident_core import IncidentError, IncidentService, SettingsStore, open_database, outbox
from opg_incident_core.chat import Caller, ChatCommands, Reply, process_help
from opg_incident_core.errors import AlreadyHandled
from opg_incident_core.reminders import ReminderSchedule
from opg_incident_confluence import ConfluenceAdapter
from opg_incident_slack import Effects, SlackGateway, SlackInteractions
from opg_incident_web import register_routes, start_web_server

log = logging.getLogger(__name__)

# Every command, lower case, as typed (words joined by spaces): the any-case fallback routes to them.
COMMANDS = ("incident declare", "incident list", "incident show", "incident reload", "incident",
            "summary", "impact", "sev", "severity", "action done", "action", "actions", "note", "decision",
            "lead", "scribe", "comms", "role", "handover", "accept", "decline", "roles", "checkin", "timeline",
            "close", "reopen", "archive", "update", "updates", "notify", "call", "invite", "ask", "escalate", "rca",
            "help")
ANY_CASE = re.compile(r"^(" + "|".join(c.replace(" ", r"\s+") for c in COMMANDS) + r")(?:\s+(.*))?$",
                      re.IGNORECASE | re.DOTALL)


class OpgIncident(BotPlugin):
    """Runs the OPG incident response process."""

    def activate(self):
        super().activate()
        config = self.bot_config
        self.settings = SettingsStore(getattr(config, "INCIDENT_SETTINGS", "") or None)
        open_database(getattr(config, "INCIDENT_DATABASE_URL", "") or None, config.BOT_DATA_DIR)
        self.service = IncidentService(lambda: self.settings.current, admins=config.BOT_ADMINS)
        self.chat = ChatCommands(self.service)
        self.effects = self.interactions = None
        if self._bot.mode == "slackv3":
            gateway = SlackGateway(self._bot.slack_web)
            self.effects = Effects(gateway, self.service, lambda: self.settings.current, config)
            self.interactions = SlackInteractions(self.service, self.effects, gateway,
                                                  lambda: self.settings.current)
            self.effects.start(lease_seconds=float(getattr(config, "INCIDENT_OUTBOX_LEASE_SECONDS", 30) or 30))
            if hasattr(self._bot, "replay_inputs"):
                threading.Thread(target=self._replay_inputs, args=(self.service.now(),), daemon=True,
                                 name="opg-replay").start()
        self._start_confluence(config)
        self.reminders = ReminderSchedule(
            self.service, bot_name=(str(self._bot.bot_identifier) if self.effects is not None else "@opg-incident"),
            minute_seconds=float(getattr(config, "INCIDENT_MINUTE_SECONDS", 60) or 60))
        self.start_poller(int(getattr(config, "INCIDENT_POLL_SECONDS", 60) or 60), self._tick)
        # The living document on the Flask app the Webserver plugin serves (read now: a test bot replaces it).
        register_routes(errbot.core_plugins.flask_app, lambda: self.service, lambda: self.settings.current, config)
        start_web_server(self._bot.plugin_manager, self.bot_config)
        self._ready = True  # from now on Slack inputs are recorded (and acked); before, Slack redelivers them

    def deactivate(self):
        self._ready = False
        if getattr(self, "confluence", None) is not None:
            self.confluence.shutdown()
        if self.effects is not None:
            self.effects.shutdown()
        super().deactivate()

    # -- Confluence: `rca publish` (issue 15) -------------------------------------------------------
    def _start_confluence(self, config):
        """The job runs on the Slack worker, or on a worker of its own on the Text console."""
        self.confluence = ConfluenceAdapter(self.service, lambda: self.settings.current, config,
                                            effects=self.effects, send=self._send_to)
        self.chat.rca_subcommands = {"publish": self.confluence.command}
        if self.effects is not None:
            from opg_incident_slack.effects import JOBS
            self.confluence.register(JOBS)
        else:
            self.confluence.start(lease_seconds=float(getattr(config, "INCIDENT_OUTBOX_LEASE_SECONDS", 30) or 30))

    def _send_to(self, user: str, text: str) -> None:
        self.send(self.build_identifier(user if user.startswith("@") else "@" + user), text)

    # -- Slack inputs errbot does not route (from the OPGSlack backend) -----------------------------
    def callback_slack_input(self, key, kind, payload=None):
        """Record a Slack input durably; False when Slack delivers it again; None while activating."""
        if not getattr(self, "_ready", False):
            return None
        return self.service.record_input(key, kind, payload)

    def callback_slack_processed(self, key):
        self.service.mark_processed(key)

    def _replay_inputs(self, received_before):
        """Events a process recorded and acked but never handled (it died: a previous run, or another
        replica), received before `received_before`: take them over and handle them now."""
        try:
            inputs = self.service.take_over_inputs(received_before)
            if inputs:
                log.info("Replaying %d input(s) a process recorded and did not finish", len(inputs))
                self._bot.replay_inputs(inputs)
        except Exception:
            log.exception("Replaying unfinished inputs failed")

    def callback_slack_event(self, event):
        if self.interactions is not None:
            with outbox.origin(None, event.get("_opg_input")):
                self.interactions.on_event(event)
                # A change marked the input handled in its own transaction: nothing left to mark.
                event["_opg_marked"] = outbox.current_input() is not None and outbox.input_to_mark() is None

    def callback_slack_interaction(self, kind, payload):
        if self.interactions is not None:
            return self.interactions.on_interaction(kind, payload)
        return None

    def callback_message(self, msg):
        """Keyword nudges: a helpful note when a keyword (e.g. "runbook") is said in an incident's channel."""
        event = msg.extras.get("slack_event") or {}
        if self.effects is None or not event.get("channel") or event.get("subtype") or event.get("bot_id"):
            return
        for text in self.service.nudges(event["channel"], msg.body):
            self.effects.job("post", None, {"channel": event["channel"], "text": text})

    def _tick(self):
        """Every poll: expire unanswered handovers, send due reminders and check-ins, archive on schedule."""
        for outcome in self.service.expire_handovers():
            if self.effects is not None:
                self.effects.after(outcome)
        if time.monotonic() - getattr(self, "_pruned_at", 0.0) > 24 * 3600:
            self._pruned_at = time.monotonic()
            log.info("Housekeeping: forgot %d old inputs and sent messages", self.service.prune())
        if self.effects is None:
            return  # the Text console has no channels to remind
        if hasattr(self._bot, "replay_inputs"):  # inputs of a replica that died (held longer than a lease)
            lease = float(getattr(self.bot_config, "INCIDENT_OUTBOX_LEASE_SECONDS", 30) or 30)
            self._replay_inputs(self.service.now() - dt.timedelta(seconds=lease))
        for reminder in self.reminders.due():
            self.effects.job("remind", reminder.number, dataclasses.asdict(reminder),
                             coalesce_key=f"remind:{reminder.number}:{reminder.key}")
        archive = self.settings.current.archive
        if archive.when == "after_delay":
            for number in self.service.due_for_archive(archive.delay_minutes):
                self.effects.job("archive", number, coalesce_key=f"archive:{number}")

    # -- plumbing -----------------------------------------------------------------------------------
    def _caller(self, msg) -> Caller:
        frm = msg.frm
        user = getattr(frm, "userid", None)  # Slack: U123
        if not user:
            person = getattr(frm, "person", frm)
            user = person if isinstance(person, str) else str(person)
            if self._bot.mode == "text" and not user.startswith("@"):
                user = "@" + user
        room = getattr(frm, "room", None) if msg.is_group else None
        channel = (getattr(room, "id", None) or str(room)) if room is not None else None
        return Caller(user=user, channel=channel)

    def _run(self, msg, handler, args) -> str:
        caller = self._caller(msg)
        input_key = (msg.extras.get("slack_event") or {}).get("_opg_input")
        try:
            with outbox.origin(caller.channel, input_key):
                reply: Reply = handler(args or "", caller)
        except AlreadyHandled:
            log.info("Input %s was handled already (by another process); not again", input_key)
            return None
        except IncidentError as exc:
            raise CommandError(str(exc)) from None
        finally:
            self.service.mark_processed(input_key)  # a change marked it already, with the change itself
        if self.effects is not None:
            event = msg.extras.get("slack_event") or {}
            if event.get("ts") and event.get("channel"):
                self.effects.job("react", None, {"channel": event["channel"], "ts": event["ts"],
                                                 "name": "white_check_mark"})
            self.effects.wake()
        return reply.text

    # -- incidents ----------------------------------------------------------------------------------
    @botcmd
    def incident(self, msg, args):
        """Incidents: `incident declare <title>`, `incident list`, `incident show <n>`."""
        sub, _, rest = (args or "").strip().partition(" ")
        if sub.lower() in ("declare", "list", "show", "reload"):
            return getattr(self, f"incident_{sub.lower()}")(msg, rest)
        raise CommandError("Usage: `incident declare <title> [--report]`, `incident list [open|closed|all]`, "
                           "`incident show <number>`; bot admins: `incident reload`. See `help`.")

    @botcmd
    def incident_declare(self, msg, args):
        """Declare an incident: `incident declare <what happened>` (`--report` if it is already over)."""
        return self._run(msg, self.chat.declare, args)

    @botcmd
    def incident_list(self, msg, args):
        """List incidents: `incident list [open|closed|all]` (open by default)."""
        return self._run(msg, self.chat.list, args)

    @botcmd
    def incident_show(self, msg, args):
        """Show an incident: `incident show <number>`."""
        return self._run(msg, self.chat.show, args)

    @botcmd(admin_only=True)
    def incident_reload(self, msg, args):
        """Bot admins: re-read the settings YAML (roles, severities, ...); an invalid file is refused."""
        try:
            changes = self.service.reload_settings(self.settings, self._caller(msg).user)
        except IncidentError as exc:
            raise CommandError(str(exc)) from None
        return "Settings reloaded. " + ("Changed: " + "; ".join(changes) if changes else "Nothing changed.")

    # -- the lead's updates -------------------------------------------------------------------------
    @botcmd
    def summary(self, msg, args):
        """Set the summary of what is going on: `summary <text>`."""
        return self._run(msg, self.chat.summary, args)

    @botcmd
    def impact(self, msg, args):
        """Say who or what is affected: `impact <text>`."""
        return self._run(msg, self.chat.impact, args)

    @botcmd
    def sev(self, msg, args):
        """Set the severity: `sev <Critical|Major|Trivial>`."""
        return self._run(msg, self.chat.sev, args)

    @botcmd(hidden=True)
    def severity(self, msg, args):
        """Same as `sev`."""
        return self._run(msg, self.chat.sev, args)

    # -- roles --------------------------------------------------------------------------------------
    @botcmd
    def lead(self, msg, args):
        """Name the Incident Lead: `lead <@user|me>`."""
        return self._run(msg, lambda a, c: self.chat.role("lead", a, c), args)

    @botcmd
    def scribe(self, msg, args):
        """Name the Incident Scribe: `scribe <@user|me>`."""
        return self._run(msg, lambda a, c: self.chat.role("scribe", a, c), args)

    @botcmd
    def comms(self, msg, args):
        """Name the Communications Lead: `comms <@user|me>`."""
        return self._run(msg, lambda a, c: self.chat.role("comms", a, c), args)

    @botcmd
    def role(self, msg, args):
        """Fill any role from the settings: `role <role> <@user|me|none>`."""
        key, _, rest = (args or "").strip().partition(" ")
        if not key:
            raise CommandError("Usage: `role <role> <@user|me|none>`. Roles: "
                               + ", ".join(r.key for r in self.settings.current.assignable_roles))
        return self._run(msg, lambda a, c: self.chat.role(key.lower(), a, c), rest)

    @botcmd
    def handover(self, msg, args):
        """Hand a role over: `handover <role> <@user> [note]`; they accept it. `handover <role> withdraw`."""
        return self._run(msg, self.chat.handover, args)

    @botcmd
    def accept(self, msg, args):
        """Accept the role you were offered: `accept [offer number]`."""
        return self._run(msg, self.chat.accept, args)

    @botcmd
    def decline(self, msg, args):
        """Decline the role you were offered: `decline [offer number]`."""
        return self._run(msg, self.chat.decline, args)

    @botcmd
    def roles(self, msg, args):
        """Every role, who holds it since when, and pending offers."""
        return self._run(msg, self.chat.roles, args)

    @botcmd
    def checkin(self, msg, args):
        """The lead's check-ins: `checkin every 30m`, `checkin off`, or `checkin` to see them."""
        return self._run(msg, self.chat.checkin, args)

    # -- the scribe's log ---------------------------------------------------------------------------
    @botcmd
    def action(self, msg, args):
        """Log a follow-up action: `action <text>`."""
        return self._run(msg, self.chat.action, args)

    @botcmd
    def action_done(self, msg, args):
        """Mark an action done: `action done <action number>`."""
        return self._run(msg, self.chat.action_done, args)

    @botcmd
    def actions(self, msg, args):
        """List the actions of the incident."""
        return self._run(msg, self.chat.actions, args)

    @botcmd
    def note(self, msg, args):
        """Put a note on the timeline: `note <text>`."""
        return self._run(msg, self.chat.note, args)

    @botcmd
    def decision(self, msg, args):
        """Record a decision on the timeline: `decision <text>`."""
        return self._run(msg, self.chat.decision, args)

    @botcmd
    def timeline(self, msg, args):
        """Show the timeline of the incident."""
        return self._run(msg, self.chat.timeline, args)

    # -- the end ------------------------------------------------------------------------------------
    @botcmd
    def close(self, msg, args):
        """Close the incident (the Incident Lead or a bot admin)."""
        return self._run(msg, self.chat.close, args)

    @botcmd
    def reopen(self, msg, args):
        """Reopen a closed incident (the Incident Lead or a bot admin)."""
        return self._run(msg, self.chat.reopen, args)

    @botcmd
    def archive(self, msg, args):
        """Archive the comms channel of a closed incident (the Incident Lead or a bot admin)."""
        return self._run(msg, self.chat.archive, args)

    # -- keeping everyone informed ------------------------------------------------------------------
    @botcmd
    def update(self, msg, args):
        """Post a stakeholder update (Communications Lead, or the lead): `update <text>`."""
        return self._run(msg, self.chat.update, args)

    @botcmd
    def updates(self, msg, args):
        """List the stakeholder updates of the incident."""
        return self._run(msg, self.chat.updates, args)

    @botcmd
    def notify(self, msg, args):
        """Send the stakeholder updates to another channel too: `notify #channel`."""
        return self._run(msg, self.chat.notify, args)

    @botcmd
    def call(self, msg, args):
        """Share the call link in the topic, headline and living document: `call <url>`."""
        return self._run(msg, self.chat.call, args)

    @botcmd
    def invite(self, msg, args):
        """Bring people or user groups into the incident channel: `invite @someone @a-team`."""
        return self._run(msg, self.chat.invite, args)

    @botcmd
    def ask(self, msg, args):
        """Ask the wider help channels for experience: `ask <text>`."""
        return self._run(msg, self.chat.ask, args)

    @botcmd
    def escalate(self, msg, args):
        """List the specialist teams, or page one: `escalate [team]`."""
        reply = self._run(msg, self.chat.escalate, args)
        event = msg.extras.get("slack_event") or {}
        listing = self.chat.escalation_listing(args or "", self._caller(msg))
        if self.effects is not None and listing is not None and event.get("channel"):
            self.effects.job("escalation_menu", listing, {"channel": event["channel"]})
            return None  # the list comes with a Page button per team
        return reply

    @botcmd
    def rca(self, msg, args):
        """The root-cause analysis draft; `rca ready` (the lead), `rca share`, `rca publish` (Confluence)."""
        url = getattr(self.bot_config, "INCIDENT_PUBLIC_URL", "")
        return self._run(msg, lambda a, c: self.chat.rca(a, c, document_url=url), args)

    @botcmd
    def help(self, msg, args):
        """How the incident process runs, and the commands for each step."""
        return process_help(self.settings.current)

    # -- any case, and unknown commands -------------------------------------------------------------
    @re_botcmd(pattern=ANY_CASE.pattern, flags=re.IGNORECASE | re.DOTALL, hidden=True)
    def any_case(self, msg, match):
        """Commands typed in any case (`SEV critical`) go where they would in lower case."""
        return getattr(self, "_".join(match.group(1).lower().split()))(msg, match.group(2) or "")

    @cmdfilter(catch_unprocessed=True)
    def unknown_command(self, msg, cmd, args, dry_run, emptycmd=False):
        if not emptycmd:
            return msg, cmd, args
        return "I don't know that command. `help` shows the incident process and its commands."
