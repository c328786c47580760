"""The modals' submissions (blocks.py builds them), each handled where it is declared:
`@view_submission(callback_id)`. A handler returns the ack: None closes the modal, `{"response_action":
"errors", ...}` keeps it open with a message under a field. A modal nobody declared is logged and closed.

Each form declares the chat commands it stands for (`commands=`, required): `handle_submission` checks
every one's permission before the handler runs; a refusal, saying who may, comes back under the form's
first field and nothing changes.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from opg_incident_core import IncidentError
from opg_incident_core.service import MAX_TITLE
from opg_incident_core.text import USER_ID

from . import blocks
from .payloads import as_dict, as_text, private_metadata
from .registry import Registry

if TYPE_CHECKING:
    from .interactions import SlackInteractions

log = logging.getLogger(__name__)

# The Edit form (and the headline's Edit button that opens it) changes the title and summary, the impact,
# the severity and the lead: whoever uses it must be allowed all of those commands.
EDITS = ("summary", "impact", "sev", "lead")


@dataclass(frozen=True)
class Form:
    run: Callable[[SlackInteractions, dict, str], dict | None]  # (interactions, view, user) -> the ack
    commands: tuple[str, ...]                                     # the chat commands it stands for


MODALS: Registry[Form] = Registry("modal")


def view_submission(callback_id: str, *, commands: tuple[str, ...]):
    """Declare the handler `(interactions, view, user) -> ack` of the modal `callback_id`, which stands for
    the chat `commands` (each checked before the handler runs)."""
    def register(fn):
        MODALS.add(callback_id, Form(fn, tuple(commands)))
        return fn
    return register


def handle_submission(interactions: SlackInteractions, payload: dict) -> dict | None:
    view = as_dict(payload.get("view"))
    callback_id = as_text(view.get("callback_id"))
    form = MODALS.get(callback_id)
    if form is None:
        log.info("Ignoring the submission of a modal nobody handles: %r", callback_id[:100])
        return None
    user = as_text(as_dict(payload.get("user")).get("id"))
    meta = private_metadata(view.get("private_metadata"))  # ours: written when the form was opened
    number, channel = meta.get("number"), meta.get("channel")
    try:
        interactions.allow(form.commands, user, number if isinstance(number, int) else 0,
                           channel if isinstance(channel, str) else None)
    except IncidentError as exc:
        return _errors({_first_field(view): _plain(str(exc))[:150]})
    return form.run(interactions, view, user)


def _first_field(view: dict) -> str:
    """The block id of the form's first input (where a refusal of the whole form is shown)."""
    for block in view.get("blocks") if isinstance(view.get("blocks"), list) else []:
        if isinstance(block, dict) and block.get("type") == "input" and isinstance(block.get("block_id"), str):
            return block["block_id"]
    return next(iter(as_dict(as_dict(view.get("state")).get("values"))), "title")


# -- declare and edit (the incident form) -----------------------------------------------------------
@view_submission(blocks.DECLARE_VIEW, commands=("incident declare",))
def declare(interactions: SlackInteractions, view: dict, user: str) -> dict | None:
    values = blocks.modal_values(view)
    errors = _validate(interactions.settings, values)
    if errors:
        return _errors(errors)
    meta = private_metadata(view.get("private_metadata"))
    service, effects, settings = interactions.service, interactions.effects, interactions.settings
    try:
        outcome = service.declare(values["title"], user, report=values.get("live") == "report",
                                  drill="drill" in (values.get("drill") or "").split(","),
                                  summary=values.get("summary") or "", impact=values.get("impact") or "",
                                  severity=values.get("severity"), lead=values.get("lead"))
        effects.after(outcome)
        number = outcome.incident.number
        thanks = (f"Thanks for raising incident {number} 🙏 Head over to #{settings.channels.incidents} "
                  f"to complete the report and help deal with it: {effects.document_url(number)}")
        effects.job("tell", None, {"user": user, "channel": meta.get("channel"), "text": thanks,
                                   "response_url": meta.get("response_url")})  # the slash command's: where they are
    except IncidentError as exc:
        return _errors({"title": _plain(str(exc))[:150]})
    return None


@view_submission(blocks.EDIT_VIEW, commands=EDITS)
def edit(interactions: SlackInteractions, view: dict, user: str) -> dict | None:
    values = blocks.modal_values(view)
    errors = _validate(interactions.settings, values)
    if errors:
        return _errors(errors)
    number = private_metadata(view.get("private_metadata")).get("number")
    number = number if isinstance(number, int) else 0
    service, after = interactions.service, interactions.effects.after
    try:
        current = service.get(number)
        if values.get("lead") and values["lead"] != current.roles.get("lead"):  # refused: nothing else changes
            after(service.assign_role(number, "lead", values["lead"], user))
        steps = [(values.get("title"), current.title, lambda v: service.set_title(number, v, user)),
                 (values.get("summary") or "", current.summary, lambda v: service.set_summary(number, v, user)),
                 (values.get("impact") or "", current.impact, lambda v: service.set_impact(number, v, user)),
                 (values.get("severity"), current.severity, lambda v: service.set_severity(number, v, user))]
        for new, old, apply in steps:
            if new and new != old:
                after(apply(new))
    except IncidentError as exc:
        return _errors({"lead": _plain(str(exc))[:150]})  # the one change that may be refused goes first
    return None


def _validate(settings, values: dict) -> dict:
    errors = {}
    title = " ".join((values.get("title") or "").split())
    if not title:
        errors["title"] = "Say in a sentence what has happened."
    elif len(title) > MAX_TITLE:
        errors["title"] = f"Keep the title under {MAX_TITLE} characters; put the detail in the summary."
    if values.get("severity") and settings.severity(values["severity"]) is None:
        errors["severity"] = "Choose one of: " + ", ".join(s.name for s in settings.severities)
    if values.get("live") not in (None, "live", "report"):
        errors["live"] = "Choose live incident or report."
    return errors


# -- the pre-close check (opened by the headline's Close button: buttons.open_close_check) -----------
@view_submission(blocks.CLOSE_VIEW, commands=("close",))
def close_incident(interactions: SlackInteractions, view: dict, user: str) -> dict | None:
    values = blocks.modal_values(view)
    number = private_metadata(view.get("private_metadata")).get("number")
    reason = "resolved"
    if values.get("reason") == "blocked":
        if not values.get("until"):
            return _errors({"until": "Until when? Pick the date to pick it up."})
        reason = f"blocked until {values['until']}"
    try:
        interactions.effects.after(interactions.service.close(number if isinstance(number, int) else 0, user, reason))
    except IncidentError as exc:
        return _errors({"reason": _plain(str(exc))[:150]})
    return None


def _errors(errors: dict) -> dict:
    return {"response_action": "errors", "errors": errors}


def _plain(text: str) -> str:
    """A refusal for a modal field error (plain text: mentions as @U…)."""
    return re.sub(rf"<@({USER_ID})>", r"@\1", text)
