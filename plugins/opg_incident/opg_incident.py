"""The errbot face of opg-incident: chat commands in, the core's answers out. Thin on purpose."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import re
import sys
import threading
import time

from errbot import BotPlugin, CommandError, botcmd, cmdfilter, re_botcmd
from peewee import DatabaseError

from opg_incident_core import IncidentError, IncidentService, SettingsStore, connection, open_database, outbox, storage
from opg_incident_core.journal import Journal
from opg_incident_core.chat import REGISTRY, Caller, ChatCommands, Reply
from opg_incident_core.commands import Command
from opg_incident_core.errors import AlreadyHandled
from opg_incident_core.reminders import ReminderSchedule
from opg_incident_confluence import ConfluenceAdapter
from opg_incident_slack import Effects, SlackGateway, SlackInteractions
from opg_incident_core import telemetry
from opg_incident_web import register_routes, register_slack_http, start_web_server, web_app
from opg_incident_web.metrics import process_metrics
from opg_incident_web.ops import chat_check, database_check, outbox_check, register_ops_routes

log = logging.getLogger(__name__)
NOT_SAVED = "That was not saved: the database is unavailable. Try again in a minute."

class OpgIncident(BotPlugin):
    """Runs the OPG incident response process."""

    def activate(self):
        super().activate()
        try:
            self._activate(self.bot_config)
        except Exception as exc:
            if getattr(self, "_activated_once", False) or not getattr(self.bot_config, "INCIDENT_EXIT_ON_FAILED_START",
                                                                       False):
                raise
            # errbot would log this and stay connected, ignoring everyone: fail loudly instead.
            message = f"opg-incident cannot start: {connection.first_line(exc)}"
            log.critical(message, exc_info=True)
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
            logging.shutdown()
            os._exit(3)
        self._activated_once = True

    def _activate(self, config):
        url = getattr(config, "INCIDENT_DATABASE_URL", "") or None
        store = getattr(self, "settings", None)
        if isinstance(store, SettingsStore) and getattr(self, "_database_url", False) == url:
            # errbot's `plugin reload`: keep the last good settings (and the database) rather than stop.
            kept = store.reload_or_keep()
            if kept is not None:
                log.warning("Plugin reloaded with the last good settings: %s", kept)
                self.warn_admins(f"The incident settings were not reloaded; the old ones stay.\n{kept}")
        else:
            self.settings = SettingsStore(getattr(config, "INCIDENT_SETTINGS", "") or None)
            open_database(url, config.BOT_DATA_DIR)
            self._database_url = url
        self.service = IncidentService(lambda: self.settings.current, admins=config.BOT_ADMINS)
        self.journal = self.service.journal = Journal(config.BOT_DATA_DIR)  # inputs while the database is down
        self.chat = ChatCommands(self.service, document_url=getattr(config, "INCIDENT_PUBLIC_URL", ""),
                                 settings_store=self.settings, data_dir=config.BOT_DATA_DIR)
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
                self.journal.start(self.service.record_journaled,
                                   lambda key, kind, payload: self._bot.replay_inputs([(key, kind, payload)]))
        self._start_confluence(config)
        self.reminders = ReminderSchedule(
            self.service, bot_name=(str(self._bot.bot_identifier) if self.effects is not None else "@opg-incident"),
            minute_seconds=float(getattr(config, "INCIDENT_MINUTE_SECONDS", 60) or 60))
        self.start_poller(int(getattr(config, "INCIDENT_POLL_SECONDS", 60) or 60), self._tick)
        # The living document, and Slack's request URLs in HTTP mode, on the bot's own web server.
        app = web_app()
        register_routes(app, lambda: self.service, lambda: self.settings.current, config)
        register_ops_routes(app, readiness_checks=[
            ("database", database_check(self.service.now)), ("chat", chat_check(self._bot)),
            ("outbox", outbox_check(self.service.now, 600))], metrics=process_metrics(self.service.now,
                                                                                   lambda: self.settings.current))
        if _ack_seconds not in getattr(self._bot, "ack_observers", [_ack_seconds]):
            self._bot.ack_observers.append(_ack_seconds)
        if getattr(self._bot, "serves_http", False):
            register_slack_http(app, self._bot.HTTP_PATHS, self._bot.handle_http)
        start_web_server(app, config)
        self._ready = True  # from now on Slack inputs are recorded (and acked); before, Slack redelivers them

    def deactivate(self):
        self._ready = False
        if getattr(self, "journal", None) is not None:
            self.journal.stop()
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
        try:
            return self.service.record_input(key, kind, payload)
        except connection.UNAVAILABLE as exc:  # not journaled (a click): the person is told (unrecorded below)
            log.warning("A Slack %s could not be recorded: the database is unavailable (%s)", kind,
                        connection.first_line(exc))
            return None

    def callback_slack_unrecorded(self, kind, payload):
        """The ack of a click or slash command that could not be recorded: the person is told why."""
        if not getattr(self, "_ready", False):
            return None  # starting up: the backend says so
        if kind == "slash_commands":
            return {"response_type": "ephemeral", "text": NOT_SAVED}
        if payload.get("type") == "view_submission":
            inputs = [b.get("block_id") for b in (payload.get("view") or {}).get("blocks") or []
                      if b.get("type") == "input" and b.get("block_id")]
            return {"response_action": "errors", "errors": {(inputs or ["title"])[0]: NOT_SAVED}}
        user = (payload.get("user") or {}).get("id")
        channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id")
        if user and self.effects is not None:
            threading.Thread(target=self._tell_now, args=(user, channel, NOT_SAVED), daemon=True,
                             name="opg-tell").start()  # not through the outbox: the database is down
        return {}

    def _tell_now(self, user, channel, text):
        try:
            self.effects.tell(user, channel, text)
        except Exception as exc:
            log.warning("Could not tell %s that their click was not saved: %s", user, exc)

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
            def handle():  # again on a new connection when PostgreSQL dropped it (safe: AlreadyHandled)
                with outbox.origin(None, event.get("_opg_input")):
                    self.interactions.on_event(event)
                    # A change marked the input handled in its own transaction: nothing left to mark.
                    event["_opg_marked"] = outbox.current_input() is not None and outbox.input_to_mark() is None
            try:
                connection.retrying(storage.database.obj, handle, what="a Slack event")
            except connection.UNAVAILABLE as exc:  # left unhandled in the inbox: taken over and replayed later
                event["_opg_marked"] = True  # (so the backend does not mark it handled)
                log.warning("Event %s was not handled: the database failed (%s); it is replayed later",
                            event.get("_opg_input"), connection.first_line(exc))

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

    def _run(self, msg, cmd: Command, args) -> str | None:
        """Run a registered command: the core checks who may, records the change (marking the input handled
        in its transaction) and answers; the answer goes back through errbot."""
        caller = self._caller(msg)
        input_key = (msg.extras.get("slack_event") or {}).get("_opg_input")

        def run() -> Reply:  # again on a new connection when PostgreSQL dropped it (safe: AlreadyHandled)
            with outbox.origin(caller.channel, input_key):
                return self.chat.run(cmd, args or "", caller)
        try:
            reply: Reply = connection.retrying(storage.database.obj, run, what=f"the command {cmd.name}")
        except AlreadyHandled:
            log.info("Input %s was handled already (by another process); not again", input_key)
            return None
        except IncidentError as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:  # never errbot's "Computer says nooo" nor the exception's text
            log.error("The command %s was not saved: the database failed: %s", cmd.name, connection.first_line(exc),
                      exc_info=not isinstance(exc, connection.UNAVAILABLE))
            return NOT_SAVED
        except Exception:
            log.exception("The command %s failed", cmd.name)
            return "Sorry, that failed on my side (it is logged for the bot admins). Try again in a minute."
        finally:
            try:
                self.service.mark_processed(input_key)  # a change marked it already, with the change itself
            except DatabaseError as exc:
                log.warning("Could not mark input %s handled: %s", input_key, connection.first_line(exc))
        event = msg.extras.get("slack_event") or {}
        if self.effects is not None:
            try:
                if reply.menu is not None and event.get("channel"):
                    connection.retrying(storage.database.obj, lambda: self.effects.job(
                        "escalation_menu", reply.menu, {"channel": event["channel"]}), what="the list of teams")
                    return None  # the list comes with a Page button per team
                if event.get("ts") and event.get("channel"):
                    connection.retrying(storage.database.obj, lambda: self.effects.job(
                        "react", None, {"channel": event["channel"], "ts": event["ts"], "name": "white_check_mark"}),
                        what="a reaction")
            except DatabaseError as exc:  # the change is saved: its answer still goes out
                log.warning("The command %s is saved, its follow-up was not: %s", cmd.name, connection.first_line(exc))
            self.effects.wake()
        return reply.text

    # -- commands errbot does not get from the registry -----------------------------------------------
    @botcmd
    def incident(self, msg, args):
        """Incidents: `incident declare <title>`, `incident list`, `incident show <n>`."""
        raise CommandError("Usage: `incident declare <title> [--report]`, `incident list [open|closed|all]`, "
                           "`incident show <number>`; bot admins: `incident reload`. See `help`.")

    # -- any case, and unknown commands -------------------------------------------------------------
    @re_botcmd(pattern=REGISTRY.pattern(), flags=re.IGNORECASE | re.DOTALL, hidden=True)
    def any_case(self, msg, match):
        """Commands typed in any case (`SEV critical`) run as they would in lower case, through the same
        permission policy."""
        return self._run(msg, REGISTRY.get(match.group(1)), match.group(2) or "")

    @cmdfilter(catch_unprocessed=True)
    def unknown_command(self, msg, cmd, args, dry_run, emptycmd=False):
        if not emptycmd:
            return msg, cmd, args
        word = (msg.body or "").split()
        guess = REGISTRY.suggest(word[1] if len(word) > 1 and word[0].startswith("<@") else (word[0] if word else ""))
        hint = f" Did you mean `{guess}`?" if guess else ""
        return f"I don't know that command.{hint} `help` shows the incident process and its commands."


def _ack_seconds(kind: str, seconds: float) -> None:
    """How long Slack waited for an ack (the backend times them), to the metrics."""
    telemetry.emit("ack", kind=kind, seconds=seconds)


def _registered(cmd: Command, name: str, hidden: bool):
    def run(self, msg, args):
        return self._run(msg, cmd, args)
    run.__name__ = name.replace(" ", "_")
    run.__doc__ = f"{cmd.help} Usage: `{cmd.usage}`."
    return botcmd(run, name=run.__name__, hidden=hidden, admin_only=cmd.admin_only)


for _cmd in REGISTRY:  # the chat commands, one errbot command (and alias) each, from the registry
    for _name in (_cmd.name, *_cmd.aliases):
        setattr(OpgIncident, _name.replace(" ", "_"), _registered(_cmd, _name, _cmd.hidden or _name != _cmd.name))
