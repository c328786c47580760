"""Slack inputs errbot does not route, to their handlers: /opg-incident (slash.py), the buttons of the bot's
messages (buttons.py, by action_id), the modals' submissions (modals.py, by callback_id) and what happens
in an incident's channel (channel_events.py, by event type).

Each handler answers within Slack's 3 seconds: it opens views and writes the record at once, and leaves
every other Slack call to Effects' worker. An input nobody declared a handler for is logged, acked and
changes nothing.

Every button and form declares the chat command it stands for (`command=` / `commands=`), and its
dispatcher checks that command's permission (`allow`) before the handler runs: whoever may not run the
command may not click the button either, and is told who may.
"""
from __future__ import annotations

import logging
from typing import Iterable

from opg_incident_core.commands import REGISTRY

from . import buttons, channel_events, modals
from .slash import SlashCommand

log = logging.getLogger(__name__)


class SlackInteractions:
    """What the handlers work with: the core's service, the effects (outbox jobs), the Slack gateway (for
    what must happen within the 3 seconds: opening a modal, fetching a pinned message) and the settings."""

    def __init__(self, service, effects, gateway, settings, chat):
        self.service = service
        self.effects = effects
        self.slack = gateway
        self._settings = settings
        self.chat = chat
        self.slash_command = SlashCommand(chat, effects, gateway, settings)

    @property
    def settings(self):
        return self._settings()

    def tell(self, user: str, channel: str | None, text: str) -> None:
        """Tell `user` alone (through the outbox), where they clicked when Slack says."""
        self.effects.job("tell", None, {"user": user, "channel": channel, "text": text})

    def allow(self, commands: Iterable[str], user: str, number: int | None, channel: str | None) -> None:
        """Raise NotAllowed, saying who may, unless `user` may run each chat command of `commands` (the
        registry's defaults and the settings' `permissions:`) on incident `number`, from `channel` (where
        the button was, when Slack says). The one check of every button and form (buttons.handle_click,
        modals.handle_submission), as ChatCommands makes it for typed commands."""
        inc = None  # read once, for the first command about the incident (the Edit form stands for four)
        for name in commands:
            cmd = REGISTRY.get(name)
            if cmd is None:
                raise ValueError(f"a button or form stands for {name!r}, which is not a command")
            if cmd.incident and inc is None:
                inc = self.service.get(number or 0)
            self.chat.permissions.check(cmd, user, inc if cmd.incident else None, channel)

    # -- entry points (from the OPGSlack backend through the plugin's SlackInputs) ------------------
    def on_interaction(self, kind: str, payload: dict) -> dict | None:
        """A slash command, a click or a modal's submission; returns the ack's body (None: empty)."""
        if not isinstance(payload, dict):
            return None
        if kind == "slash_commands":
            return self.slash_command(payload)
        if payload.get("type") == "block_actions":
            actions = payload.get("actions")
            for action in actions if isinstance(actions, list) else []:
                if isinstance(action, dict):
                    buttons.handle_click(self, action, payload)
            return None
        if payload.get("type") == "view_submission":
            return modals.handle_submission(self, payload)
        log.info("Ignoring interaction of type %s", payload.get("type"))
        return None

    def follow_channel_event(self, event: dict) -> None:
        """Bring the incident's record in step with what happened in its channel: a pin, an unpin, an edit or
        deletion of a pinned message, a rename, archiving."""
        channel_events.handle_event(self, event)
