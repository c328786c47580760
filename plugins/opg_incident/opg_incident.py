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
from opg_incident_slack.gateway import user_client
from opg_incident_slack.replies import ACK_ONLY
from opg_incident_slack.inputs import SlackInputs
from opg_incident_core import telemetry
from opg_incident_web import register_routes, register_slack_http, start_web_server, web_app
from opg_incident_web.metrics import process_metrics
from opg_incident_web.ops import chat_check, database_check, outbox_check, register_ops_routes

log = logging.getLogger(__name__)
NOT_SAVED = connection.NOT_SAVED

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
        self.effects = self.interactions = self.inputs = None
        if self._bot.mode == "slackv3" and not config.BOT_ADMINS:
            log.warning("BOT_ADMINS is empty: nobody can reload the settings, take a backup, or take over a role "
                        "whose holder is away. Set BOT_ADMINS to the Slack user IDs of the bot's admins.")
        if self._bot.mode == "slackv3":
            user_token = getattr(config, "SLACK_USER_TOKEN", "") or ""
            gateway = SlackGateway(self._bot.slack_web, user_client=user_client(
                user_token, getattr(config, "SLACK_API_URL", "") or "https://slack.com/api/") if user_token else None)
            self.effects = Effects(gateway, self.service, lambda: self.settings.current, config)
            self.interactions = SlackInteractions(self.service, self.effects, gateway,
                                                  lambda: self.settings.current, self.chat)
            self.inputs = SlackInputs(self.service, self.interactions, self.effects)
            self.effects.start(lease_seconds=float(getattr(config, "INCIDENT_OUTBOX_LEASE_SECONDS", 30) or 30))
        self._start_confluence(config)
        self.reminders = ReminderSchedule(
            self.service, bot_name=(str(self._bot.bot_identifier) if self.effects is not None else "@opg-incident"),
            minute_seconds=float(getattr(config, "INCIDENT_MINUTE_SECONDS", 60) or 60))
        self.start_poller(int(getattr(config, "INCIDENT_POLL_SECONDS", 60) or 60), self._tick)
        # The living document, and Slack's request URLs in HTTP mode, on the bot's own web server.
        app = web_app()
        names = self.effects.slack.user_name if self.effects is not None else None  # cached users.info
        register_routes(app, lambda: self.service, lambda: self.settings.current, config, names=names)
        register_ops_routes(app, readiness_checks=[
            ("database", database_check(self.service.now)), ("chat", chat_check(self._bot)),
            ("outbox", outbox_check(self.service.now, 600))], metrics=process_metrics(self.service.now,
                                                                                   lambda: self.settings.current))
        if _ack_seconds not in getattr(self._bot, "ack_observers", [_ack_seconds]):
            self._bot.ack_observers.append(_ack_seconds)
        if getattr(self._bot, "serves_http", False):
            register_slack_http(app, self._bot.HTTP_PATHS, self._bot.handle_http)
        start_web_server(app, config)
        if self.inputs is not None:  # from now on Slack inputs are recorded (and acked); before, Slack redelivers
            self._bot.register_inputs(self.inputs)
            threading.Thread(target=self._replay_inputs, args=(self.service.now(),), daemon=True,
                             name="opg-replay").start()
            self.journal.start(self.service.record_journaled,
                               lambda key, kind, payload: self._bot.replay_inputs([(key, kind, payload)]))

    def deactivate(self):
        if self.inputs is not None:
            self._bot.register_inputs(None)
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
            from opg_incident_slack.effects import KINDS
            self.confluence.register(KINDS)
        else:
            self.confluence.start(lease_seconds=float(getattr(config, "INCIDENT_OUTBOX_LEASE_SECONDS", 30) or 30))

    def _send_to(self, user: str, text: str) -> None:
        self.send(self.build_identifier(user if user.startswith("@") else "@" + user), text)

    # -- Slack inputs errbot does not route: the OPGSlack backend hands them to self.inputs -------------
    def _replay_inputs(self, received_before):
        """Events a process recorded and acked but never handled (it died: a previous run, or another
        replica), received before `received_before`: take them over and handle them now."""
        try:
            if self.inputs is not None:  # ours, queued behind a storm: not taken over from ourselves
                self.service.hold_inputs(self.inputs.in_hand())
            inputs = self.service.take_over_inputs(received_before)
            if inputs:
                log.info("Replaying %d input(s) a process recorded and did not finish", len(inputs))
                self._bot.replay_inputs(inputs)
        except Exception:
            log.exception("Replaying unfinished inputs failed")

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
        if self.inputs is not None:  # inputs of a replica that died (held longer than a lease)
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
        in its transaction, or after when it changed nothing) and answers. In Slack the answer goes through the
        outbox (Slack's pace, a ✅ where that says enough: see opg_incident_slack/replies.py); on the console,
        and when the database cannot take it, back through errbot."""
        caller = self._caller(msg)
        input_key = msg.extras.get("opg_input")  # a Slack input (see backends/opg_slack: InputHandler)
        handling = self.inputs.handling if self.inputs is not None else outbox.origin

        def run() -> Reply:  # again on a new connection when PostgreSQL dropped it (safe: AlreadyHandled)
            with handling(caller.channel, input_key):
                return self.chat.run(cmd, args or "", caller)
        try:
            reply: Reply = connection.retrying(storage.database.obj, run, what=f"the command {cmd.name}")
        except AlreadyHandled:
            log.info("Input %s was handled already (by another process); not again", input_key)
            return None
        except IncidentError as exc:
            if self._answer_in_slack(msg, cmd, str(exc)):
                return None
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:  # never errbot's "Computer says nooo" nor the exception's text
            log.error("The command %s was not saved: the database failed: %s", cmd.name, connection.first_line(exc),
                      exc_info=not isinstance(exc, connection.UNAVAILABLE))
            return NOT_SAVED
        except Exception:
            log.exception("The command %s failed", cmd.name)
            return "Sorry, that failed on my side (it is logged for the bot admins). Try again in a minute."
        event = msg.extras.get("slack_event") or {}
        if self.effects is not None and reply.menu is not None and event.get("channel"):
            try:
                connection.retrying(storage.database.obj, lambda: self.effects.job(
                    "escalation_menu", reply.menu, {"channel": event["channel"]}), what="the list of teams")
                return None  # the list comes with a Page button per team
            except DatabaseError as exc:
                log.warning("The command %s is saved, its list of teams was not: %s", cmd.name,
                            connection.first_line(exc))
        react = self._says_enough(cmd, reply, caller)
        if self._answer_in_slack(msg, cmd, reply.text, react=react):
            return None
        return reply.text

    @staticmethod
    def _says_enough(cmd: Command, reply: Reply, caller: Caller) -> bool:
        """A ✅ on the command says it all: it changed what it says, in the incident's own channel, with nothing
        to warn about (elsewhere, the answer names the incident: a wrong number shows at once)."""
        out = reply.outcome
        return (cmd.name in ACK_ONLY and out is not None and out.changed and not out.warnings
                and caller.channel is not None and out.incident.channel_id == caller.channel)

    def _answer_in_slack(self, msg, cmd: Command, text: str, react: bool = False) -> bool:
        """Queue the answer to a Slack message for the outbox (in its thread if it was in one); False when
        errbot should post it (the console, or the database cannot take it: the answer still goes out)."""
        event = msg.extras.get("slack_event") or {}
        if self.effects is None or not event.get("channel"):
            return False
        user = self._caller(msg).user
        try:
            connection.retrying(storage.database.obj, lambda: self.effects.reply(
                event["channel"], user, cmd.name, text, ts=event.get("ts"), thread_ts=event.get("thread_ts"),
                react=react), what="the answer")
            return True
        except DatabaseError as exc:
            log.warning("The answer to %s goes through errbot: the database failed: %s", cmd.name,
                        connection.first_line(exc))
            return False

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
