"""A registry command, run for a message errbot routed to the plugin: who asks, the Slack input it marks,
the core's answer, and where that answer goes (the outbox in Slack, errbot on the console)."""
from __future__ import annotations

import logging

import opg_incident_logs
from errbot import CommandError
from peewee import DatabaseError

from opg_incident_core import IncidentError, connection, outbox, storage
from opg_incident_core.chat import Caller, Reply
from opg_incident_core.chat_base import LEADING_NUMBER  # `summary 12 ...`: incident 12, as the command reads it
from opg_incident_core.commands import Command
from opg_incident_core.errors import AlreadyHandled
from opg_incident_slack.replies import ACK_ONLY

log = logging.getLogger(__name__)
NOT_SAVED = connection.NOT_SAVED


class CommandRunner:
    def __init__(self, bot, chat, effects=None, inputs=None):
        self.bot = bot  # errbot's backend: its mode says how people are named
        self.chat = chat  # ChatCommands
        self.effects = effects  # Effects in Slack, None on the console
        self.inputs = inputs  # SlackInputs in Slack: marks the input handled with the change

    def caller(self, msg) -> Caller:
        frm = msg.frm
        user = getattr(frm, "userid", None)  # Slack: U123
        if not user:
            person = getattr(frm, "person", frm)
            user = person if isinstance(person, str) else str(person)
            if self.bot.mode == "text" and not user.startswith("@"):
                user = "@" + user
        room = getattr(frm, "room", None) if msg.is_group else None
        channel = (getattr(room, "id", None) or str(room)) if room is not None else None
        return Caller(user=user, channel=channel)

    def run(self, msg, cmd: Command, args) -> str | None:
        """Run a registered command: the core checks who may, records the change (marking the input handled
        in its transaction, or after when it changed nothing) and answers. In Slack the answer goes through the
        outbox (Slack's pace, a ✅ where that says enough: see opg_incident_slack/replies.py); on the console,
        and when the database cannot take it, back through errbot."""
        input_key = msg.extras.get("opg_input")  # a Slack input (see backends/opg_slack: InputHandler)
        # Its log lines name the input, and the incident where the words say which: in a direct message the
        # first number (in a channel it may be the channel's incident's own argument: named once known).
        named = LEADING_NUMBER.match(args or "") if cmd.incident and not msg.is_group else None
        with opg_incident_logs.about(int(named[1]) if named else None, input_key):
            return self._run(msg, cmd, args, input_key)

    def _run(self, msg, cmd: Command, args, input_key) -> str | None:
        caller = self.caller(msg)
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
            if self.answer_in_slack(msg, cmd, str(exc)):
                return None
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:  # never errbot's "Computer says nooo" nor the exception's text
            log.error("The command %s was not saved: the database failed: %s", cmd.name, connection.first_line(exc),
                      exc_info=not isinstance(exc, connection.UNAVAILABLE))
            return NOT_SAVED
        except Exception:
            log.exception("The command %s failed", cmd.name)
            return "Sorry, that failed on my side (it is logged for the bot admins). Try again in a minute."
        out = reply.outcome
        with opg_incident_logs.about(out.incident.number if out is not None else None):
            log.info("Command %s from %s: %s", cmd.name, caller.user,
                     "changed the record" if out is not None and out.changed else "answered")
            return self._answer(msg, cmd, reply, caller)

    def _answer(self, msg, cmd: Command, reply: Reply, caller: Caller) -> str | None:
        event = msg.extras.get("slack_event") or {}
        if self.effects is not None and reply.menu is not None and event.get("channel"):
            try:
                connection.retrying(storage.database.obj, lambda: self.effects.job(
                    "escalation_menu", reply.menu, {"channel": event["channel"]}), what="the list of teams")
                return None  # the list comes with a Page button per team
            except DatabaseError as exc:
                log.warning("The command %s is saved, its list of teams was not: %s", cmd.name,
                            connection.first_line(exc))
        react = says_enough(cmd, reply, caller)
        if self.answer_in_slack(msg, cmd, reply.text, react=react):
            return None
        return reply.text

    def answer_in_slack(self, msg, cmd: Command, text: str, react: bool = False) -> bool:
        """Queue the answer to a Slack message for the outbox (in its thread if it was in one); False when
        errbot should post it (the console, or the database cannot take it: the answer still goes out)."""
        event = msg.extras.get("slack_event") or {}
        if self.effects is None or not event.get("channel"):
            return False
        user = self.caller(msg).user
        try:
            connection.retrying(storage.database.obj, lambda: self.effects.reply(
                event["channel"], user, cmd.name, text, ts=event.get("ts"), thread_ts=event.get("thread_ts"),
                react=react), what="the answer")
            return True
        except DatabaseError as exc:
            log.warning("The answer to %s goes through errbot: the database failed: %s", cmd.name,
                        connection.first_line(exc))
            return False


def says_enough(cmd: Command, reply: Reply, caller: Caller) -> bool:
    """A ✅ on the command says it all: it changed what it says, in the incident's own channel, with nothing
    to warn about (elsewhere, the answer names the incident: a wrong number shows at once)."""
    out = reply.outcome
    return (cmd.name in ACK_ONLY and out is not None and out.changed and not out.warnings
            and caller.channel is not None and out.incident.channel_id == caller.channel)
