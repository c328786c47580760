"""The errbot face of opg-incident: wiring only. It builds the core and its adapters, registers the Slack
input contract on the backend, and turns the command registry into errbot commands; running a command is
opg_incident_commands.py, the poll opg_incident_schedule.py, crash replay and nudges opg_incident_slack."""
from __future__ import annotations

import gc
import logging
import os
import re
import sys
import threading

from errbot import BotPlugin, CommandError, botcmd, cmdfilter, re_botcmd

from opg_incident_commands import CommandRunner
from opg_incident_schedule import Schedule
from opg_incident_core import IncidentService, SettingsStore, connection, open_database, telemetry
from opg_incident_core.journal import Journal
from opg_incident_core.chat import REGISTRY, ChatCommands
from opg_incident_core.commands import Command
from opg_incident_core.reminders import ReminderSchedule
from opg_incident_confluence import ConfluenceAdapter
from opg_incident_web import register_routes, register_slack_http, start_web_server, web_app
from opg_incident_web.metrics import process_metrics
from opg_incident_web.ops import readiness_checks, register_ops_routes

log = logging.getLogger(__name__)

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
        # What start-up built (errbot, Slack's client, the settings' models: ~100k objects) lives as long as the
        # process: out of the garbage collector's reach, a full collection no longer stops every thread for
        # ~50 ms in the middle of an ack or a command (P1, P0). config.py switched the collector off for the
        # start (P5): back on now, for what the bot makes from here on.
        gc.freeze()
        gc.enable()

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
        self.effects = self.interactions = self.inputs = self.replay = None
        lease = float(getattr(config, "INCIDENT_OUTBOX_LEASE_SECONDS", 30) or 30)
        if self._bot.mode == "slackv3" and not config.BOT_ADMINS:
            log.warning("BOT_ADMINS is empty: nobody can reload the settings, take a backup, or take over a role "
                        "whose holder is away. Set BOT_ADMINS to the Slack user IDs of the bot's admins.")
        if self._bot.mode == "slackv3":
            self._start_slack(config, lease)
        self.runner = CommandRunner(self._bot, self.chat, self.effects, self.inputs)
        self._start_confluence(config)
        self.reminders = ReminderSchedule(
            self.service, bot_name=(str(self._bot.bot_identifier) if self.effects is not None else "@opg-incident"),
            minute_seconds=float(getattr(config, "INCIDENT_MINUTE_SECONDS", 60) or 60))
        kept = getattr(self, "schedule", None)  # a reload keeps the time of the last housekeeping
        self.schedule = Schedule(self.service, lambda: self.settings.current, self.reminders, self.effects,
                                 self.replay, lease, pruned_at=kept.pruned_at if kept is not None else 0.0)
        self.start_poller(int(getattr(config, "INCIDENT_POLL_SECONDS", 60) or 60), self.schedule.tick)
        # The living document, and Slack's request URLs in HTTP mode, on the bot's own web server.
        app = web_app()
        names = self.effects.slack.user_name if self.effects is not None else None  # cached users.info
        register_routes(app, lambda: self.service, lambda: self.settings.current, config, names=names)
        register_ops_routes(app, readiness_checks=readiness_checks(self.service.now, self._bot, config),
                            metrics=process_metrics(self.service.now, lambda: self.settings.current))
        if _ack_seconds not in getattr(self._bot, "ack_observers", [_ack_seconds]):
            self._bot.ack_observers.append(_ack_seconds)
        if getattr(self._bot, "serves_http", False):
            register_slack_http(app, self._bot.HTTP_PATHS, self._bot.handle_http)
        start_web_server(app, config)
        if self.inputs is not None:  # from now on Slack inputs are recorded (and acked); before, Slack redelivers
            self._bot.register_inputs(self.inputs)
            threading.Thread(target=self.replay, args=(self.service.now(),), daemon=True,
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
    def _start_slack(self, config, lease):
        """The Slack adapter, imported only here: the Text console never loads it (start-up time)."""
        from opg_incident_slack import Effects, SlackGateway, SlackInteractions
        from opg_incident_slack.gateway import backend_call, user_client
        from opg_incident_slack.inputs import SlackInputs
        from opg_incident_slack.replay import InputReplay

        if backend_call not in getattr(self._bot, "api_observers", [backend_call]):
            self._bot.api_observers.append(backend_call)  # the backend's own Web API calls, to the metrics
        user_token = getattr(config, "SLACK_USER_TOKEN", "") or ""
        gateway = SlackGateway(self._bot.slack_web, user_client=user_client(
            user_token, getattr(config, "SLACK_API_URL", "") or "https://slack.com/api/") if user_token else None)
        self.effects = Effects(gateway, self.service, lambda: self.settings.current, config)
        self.chat.people_by_id = True  # a person is a Slack id; a plain @name is nobody Slack recognised
        self.interactions = SlackInteractions(self.service, self.effects, gateway,
                                              lambda: self.settings.current, self.chat)
        self.inputs = SlackInputs(self.service, self.interactions, self.effects)
        self.replay = InputReplay(self.service, self.inputs, self._bot)
        self.effects.start(lease_seconds=lease)

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

    # -- keyword nudges (opg_incident_slack/nudges.py) ---------------------------------------------
    def callback_message(self, msg):
        """Keyword nudges: a helpful note when a keyword (e.g. "runbook") is said in an incident's channel."""
        if self.effects is not None:
            from opg_incident_slack.nudges import nudge
            nudge(self.service, self.effects, msg.extras.get("slack_event") or {}, msg.body)

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
        return self.runner.run(msg, REGISTRY.get(match.group(1)), match.group(2) or "")

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
        return self.runner.run(msg, cmd, args)
    run.__name__ = name.replace(" ", "_")
    run.__doc__ = f"{cmd.help} Usage: `{cmd.usage}`."
    return botcmd(run, name=run.__name__, hidden=hidden, admin_only=cmd.admin_only)


for _cmd in REGISTRY:  # the chat commands, one errbot command (and alias) each, from the registry
    for _name in (_cmd.name, *_cmd.aliases):
        setattr(OpgIncident, _name.replace(" ", "_"), _registered(_cmd, _name, _cmd.hidden or _name != _cmd.name))
