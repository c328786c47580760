"""/opg-incident: the chat commands as subcommands, the declare form otherwise.

`/opg-incident <command> ...` runs the same registered command as a mention would (the incident implied in
its channel, the number first elsewhere) and answers the person alone; `/opg-incident declare <text>` and
any text that is not a command open the declare form, as does text that starts with a command word but names
no incident where none is implied ("Update service failing" outside an incident's channel); a bare
`/opg-incident` in an incident's channel shows that incident's state and buttons to the person alone,
elsewhere the form.
"""
from __future__ import annotations

import json
import logging
import re

from opg_incident_core import IncidentError
from opg_incident_core.chat import NUMBER, REGISTRY, Caller, refuse
from opg_incident_core.errors import AlreadyHandled

from . import blocks
from .gateway import SlackError

log = logging.getLogger(__name__)
DECLARE_WORDS = ("declare", "incident declare")
# A role command's person (`lead me`, `scribe @bob`, `lead none`): never what has happened.
ROLE_WORDS = ("lead", "scribe", "comms", "role", "handover")
PERSON = re.compile(r"^(?:me|none|nobody|<@[UW][A-Z0-9]+(?:\|[^>]*)?>|@[\w.\-]+)$", re.IGNORECASE)
# What Slack escaped in the command's text (should_escape: true): a person, a channel, a group, @here, a link.
ESCAPED = re.compile(r"<([@#!])([^>|]*)(?:\|([^>]*))?>|<(https?://[^>|]+)(?:\|[^>]*)?>")


def as_typed(text: str) -> str:
    """The command's text as the person typed it (`<@U123|bob>` → `@bob`), for the declare form's title."""
    def one(match: re.Match) -> str:
        sigil, ref, label, link = match.groups()
        if link:
            return link
        if sigil == "!":
            return label or "@" + ref
        return (sigil + label) if label else match.group(0)
    return ESCAPED.sub(one, text)


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
        if self._says_what_happened(cmd, rest, channel):
            return self.open_form(payload, text)
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

    def _says_what_happened(self, cmd, rest: str, channel: str) -> bool:
        """"Call centre phones are down", "Update service failing", "Roles page broken": text that starts with a
        command word but names no incident (no number after the word) where none is implied (not an incident's
        channel) says what has happened. A bare word (`close`), or a role given to someone (`lead me`), stays the
        command, which asks which incident."""
        if not cmd.incident or not rest or self.service.for_channel(channel) is not None:
            return False
        words = rest.split()
        numbered = NUMBER.match(words[0]) or (cmd.name == "role" and len(words) > 1 and NUMBER.match(words[1]))
        names_someone = cmd.name in ROLE_WORDS and any(PERSON.match(w) for w in words[:2])
        return not (numbered or names_someone)

    def state(self, incident) -> dict:
        """The incident of this channel, with the headline's buttons, for the person alone."""
        text, body = blocks.headline(incident, self._settings(), self.effects.document_url(incident.number),
                                     self.service.handovers(incident.number), getattr(self.slack, "user_name", None))
        return ephemeral(text, body)

    def open_form(self, payload: dict, title: str) -> dict | None:
        title = as_typed(title)
        view = blocks.incident_modal(self._settings(), title=title,
                                     metadata=json.dumps({"channel": payload.get("channel_id", ""),
                                                          "response_url": payload.get("response_url", "")}))
        try:
            self.slack.open_view(payload.get("trigger_id", ""), view)
        except SlackError as exc:
            return ephemeral(f"Sorry, I could not open the form: {exc}. "
                             f"You can also type `incident declare {title or '<what happened>'}` to me.")
        return None
