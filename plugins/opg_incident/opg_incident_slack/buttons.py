"""The buttons the bot's messages carry (blocks.py), each handled where it is declared:
`@action_handler(action_id)`. A click on a button nobody declared is logged and changes nothing.

A handler gets the interactions (service, effects, Slack gateway, settings) and the `Click`; it answers
within Slack's 3 seconds, opening a modal or writing the record at once and leaving every other Slack
call to Effects' worker. A refusal is told to the person who clicked.

Each button declares the chat command it stands for (`command=`, required): `handle_click` checks that
command's permission (the registry's `may=`, the settings' `permissions:`) before the handler runs, so a
button is never open to more people than its command.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Union

from opg_incident_core import IncidentError

from . import blocks
from .gateway import SlackError
from .modals import EDITS
from .payloads import as_dict, as_text
from .registry import Registry

if TYPE_CHECKING:
    from .interactions import SlackInteractions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Click:
    action_id: str
    user: str
    channel: str | None      # where the button was, when Slack says
    trigger_id: str          # to open a modal (once, within 3 seconds)
    target: int              # from the button's value: the incident's number, or the handover's id
    key: str = ""            # after "<number>:" in the value: the role to take, the team to page


# The chat command(s) a button stands for: a name, several (all are checked), or a function of the click.
StandsFor = Union[str, Iterable[str], Callable[[Click], str]]


@dataclass(frozen=True)
class Button:
    action_id: str
    run: Callable[[SlackInteractions, Click], None]
    keyed: bool              # its value is "<number>:<key>"
    command: StandsFor       # who may click it is who may run this chat command

    def commands(self, click: Click) -> tuple[str, ...]:
        named = self.command(click) if callable(self.command) else self.command
        return (named,) if isinstance(named, str) else tuple(named)


BUTTONS: Registry[Button] = Registry("button")


def action_handler(action_id: str, *, command: StandsFor, keyed: bool = False):
    """Declare the handler `(interactions, click)` of the button `action_id`, which stands for the chat
    `command` (checked before the handler runs); `keyed`: its value is "<number>:<key>"."""
    def register(fn):
        BUTTONS.add(action_id, Button(action_id, fn, keyed, command))
        return fn
    return register


def handle_click(interactions: SlackInteractions, action: dict, payload: dict) -> None:
    """One clicked button of a `block_actions` payload, to its handler."""
    action_id = as_text(action.get("action_id"))
    button = BUTTONS.get(action_id)
    if button is None:
        log.info("Ignoring a click on a button nobody handles: %r", action_id[:100])
        return
    user = as_text(as_dict(payload.get("user")).get("id"))
    channel = as_text(as_dict(payload.get("channel")).get("id")) or None
    value, key = as_text(action.get("value")), ""
    if button.keyed:
        value, _, key = value.partition(":")
    try:
        target = int(value or 0)
    except ValueError:
        log.info("Ignoring a click on %s with a value that is not a number", action_id)
        return
    click = Click(action_id, user, channel, as_text(payload.get("trigger_id")), target, key)
    try:
        interactions.allow(button.commands(click), user, target, channel)  # refused: nothing runs
        button.run(interactions, click)
    except (IncidentError, SlackError) as exc:
        interactions.tell(user, channel, f"Sorry: {exc}")


def role_command(key: str) -> str:
    """The chat command that fills role `key`: `lead`, `scribe`, `comms`, else `role` (`role <key> ...`)."""
    return key if key in ("lead", "scribe", "comms") else "role"


# -- the headline's buttons -------------------------------------------------------------------------
@action_handler(blocks.CREATE_CHANNEL, command="invite")  # it invites the people it names
def create_comms_channel(interactions: SlackInteractions, click: Click) -> None:
    interactions.effects.job("create_channel", click.target, {"by": click.user})


@action_handler(blocks.PAGE_ONCALL, command="escalate")
def page_oncall_lead(interactions: SlackInteractions, click: Click) -> None:
    interactions.effects.job("page_oncall", click.target, {"by": click.user})


@action_handler(blocks.EDIT, command=EDITS)
def open_edit_form(interactions: SlackInteractions, click: Click) -> None:
    number = click.target
    view = blocks.incident_modal(interactions.settings, incident=interactions.service.get(number),
                                 metadata=json.dumps({"number": number, "channel": click.channel}))
    interactions.slack.open_view(click.trigger_id, view)


@action_handler(blocks.CLOSE, command="close")
def open_close_check(interactions: SlackInteractions, click: Click) -> None:
    """Refused at once for someone who may not close it; otherwise a form with what is missing and the
    process's two reasons to stop (submitted: modals.close_incident)."""
    number, service = click.target, interactions.service
    missing = service.close_check(number, click.user)
    view = blocks.close_modal(number, service.get(number).title, missing,
                              json.dumps({"number": number, "channel": click.channel}))
    interactions.slack.open_view(click.trigger_id, view)


# -- a handover's Accept and Decline (the value is the handover's id) -------------------------------
@action_handler(blocks.HANDOVER_ACCEPT, command="accept")
def accept_handover(interactions: SlackInteractions, click: Click) -> None:
    _answer_handover(interactions, click, accept=True)


@action_handler(blocks.HANDOVER_DECLINE, command="decline")
def decline_handover(interactions: SlackInteractions, click: Click) -> None:
    _answer_handover(interactions, click, accept=False)


def _answer_handover(interactions: SlackInteractions, click: Click, accept: bool) -> None:
    outcome = interactions.service.answer_handover(click.target, click.user, accept)
    interactions.effects.after(outcome)
    if outcome.warnings:
        interactions.tell(click.user, click.channel, " ".join(outcome.warnings))


# -- a reminder's "Take this role", the escalation menu's "Page <team>" -----------------------------
@action_handler(blocks.TAKE_ROLE, keyed=True, command=lambda click: role_command(click.key))
def take_role(interactions: SlackInteractions, click: Click) -> None:
    interactions.effects.after(interactions.service.assign_role(click.target, click.key, click.user, click.user))


@action_handler(blocks.PAGE_TEAM, keyed=True, command="escalate")
def page_team(interactions: SlackInteractions, click: Click) -> None:
    interactions.effects.after(interactions.service.page_specialist(click.target, click.key, click.user))
