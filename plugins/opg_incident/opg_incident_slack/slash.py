"""/opg-incident: the chat commands as subcommands, the declare form otherwise.

`/opg-incident <command> ...` runs the same registered command as a mention would (the incident implied in
its channel, the number first elsewhere) and answers the person alone; `/opg-incident declare <text>` and
any text that is not a command open the declare form; a bare `/opg-incident` in an incident's channel
shows that incident's state and buttons to the person alone, elsewhere the form.
"""
from __future__ import annotations

import json
import logging

from opg_incident_core import IncidentError
from opg_incident_core.chat import REGISTRY, Caller, refuse
from opg_incident_core.errors import AlreadyHandled

from . import blocks
from .gateway import SlackError

log = logging.getLogger(__name__)
DECLARE_WORDS = ("declare", "incident declare")


def ephemeral(text: str, blocks_: list | None = None) -> dict:
    answer = {"response_type": "ephemeral", "text": text}
    if blocks_:
        answer["blocks"] = blocks_
    return answer


class SlashCommand:
    def __init__(self, chat, effects, gateway, settings):
        self.chat = chat
        self.service = chat.service
        self.effects = effects
        self.slack = gateway
        self._settings = settings

    def __call__(self, payload: dict) -> dict | None:
        text = " ".join(str(payload.get("text") or "").split())
        user, channel = str(payload.get("user_id") or ""), str(payload.get("channel_id") or "")
        if not text:
            here = self.service.for_channel(channel)
            return self.state(here) if here is not None else self.open_form(payload, "")
        cmd, rest = REGISTRY.find(text)
        if cmd is None and text.split()[0].lower() == "declare":
            return self.open_form(payload, text.partition(" ")[2])
        if cmd is None or cmd.name == "incident declare":
            return self.open_form(payload, rest if cmd is not None else text)
        caller = Caller(user=user, channel=channel or None)
        try:  # (the input handler runs this inside the input's origin: its change marks it)
            reply = self.chat.run(cmd, rest, caller)
        except AlreadyHandled:
            return None
        except IncidentError as exc:
            return ephemeral(refuse(exc))
        if reply.menu is not None and channel:
            self.effects.job("escalation_menu", reply.menu, {"channel": channel})
        self.effects.wake()
        return ephemeral(reply.text)

    def state(self, incident) -> dict:
        """The incident of this channel, with the headline's buttons, for the person alone."""
        text, body = blocks.headline(incident, self._settings(), self.effects.document_url(incident.number),
                                     self.service.handovers(incident.number), getattr(self.slack, "user_name", None))
        return ephemeral(text, body)

    def open_form(self, payload: dict, title: str) -> dict | None:
        view = blocks.incident_modal(self._settings(), title=title,
                                     metadata=json.dumps({"channel": payload.get("channel_id", ""),
                                                          "response_url": payload.get("response_url", "")}))
        try:
            self.slack.open_view(payload.get("trigger_id", ""), view)
        except SlackError as exc:
            return ephemeral(f"Sorry, I could not open the form: {exc}. "
                             f"You can also type `incident declare {title or '<what happened>'}` to me.")
        return None
