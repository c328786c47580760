"""Slack inputs errbot does not route: /opg-incident, the headline's buttons, the modal, pins and edits.

Each handler answers within Slack's 3 seconds: it opens views and writes the record at once, and leaves
every other Slack call to Effects' worker.
"""
from __future__ import annotations

import json
import logging
import re

from opg_incident_core import IncidentError
from opg_incident_core.service import MAX_TITLE
from opg_incident_core.text import USER_ID

from . import blocks
from .blocks import as_dict as _dict
from .gateway import SlackError
from .slash import SlashCommand

log = logging.getLogger(__name__)


class SlackInteractions:
    def __init__(self, service, effects, gateway, settings, chat):
        self.service = service
        self.effects = effects
        self.slack = gateway
        self._settings = settings
        self.slash_command = SlashCommand(chat, effects, gateway, settings)

    @property
    def settings(self):
        return self._settings()

    # -- entry points (from the OPGSlack backend through the plugin) --------------------------------
    def on_interaction(self, kind: str, payload: dict) -> dict | None:
        if not isinstance(payload, dict):
            return None
        if kind == "slash_commands":
            return self.slash_command(payload)
        if payload.get("type") == "block_actions":
            actions = payload.get("actions")
            for action in actions if isinstance(actions, list) else []:
                if isinstance(action, dict):
                    self._button(action, payload)
            return None
        if payload.get("type") == "view_submission":
            return self._view_submission(payload)
        log.info("Ignoring interaction of type %s", payload.get("type"))
        return None

    def on_event(self, event: dict) -> None:
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        item, message = _dict(event.get("item")), _dict(event.get("message"))
        pinned = _dict(item.get("message"))
        try:
            if kind == "pin_added":
                self._pin_added(event)
            elif kind == "pin_removed":
                self.service.remove_pin(_text(event.get("channel_id")), _text(pinned.get("ts")),
                                        _text(event.get("user")), event_ts=_text(event.get("event_ts")) or None)
            elif kind == "message" and event.get("subtype") == "message_changed":
                self.service.edit_pinned_message(_text(event.get("channel")), _text(message.get("ts")),
                                                 _text(message.get("text")), _text(message.get("user")))
            elif kind == "message" and event.get("subtype") == "message_deleted":
                self.service.remove_pin(_text(event.get("channel")), _text(event.get("deleted_ts")), "")
            elif kind == "channel_rename":
                channel = _dict(event.get("channel"))
                self.service.rename_channel(_text(channel.get("id")), _text(channel.get("name")))
            elif kind in ("channel_archive", "channel_unarchive"):  # by a person too: posts follow (effects)
                inc = self.service.for_channel(_text(event.get("channel")))
                if inc is not None and inc.channel_archived != (kind == "channel_archive"):
                    self.service.mark_channel_archived(inc.number, kind == "channel_archive")
        except IncidentError as exc:
            log.debug("Event %s not for an incident: %s", kind, exc)

    # -- the modal ----------------------------------------------------------------------------------
    def _view_submission(self, payload: dict) -> dict | None:
        view = _dict(payload.get("view"))
        user = _text(_dict(payload.get("user")).get("id"))
        if view.get("callback_id") == blocks.CLOSE_VIEW:
            return self._close_submission(view, user)
        values = blocks.modal_values(view)
        errors = self._validate(values)
        if errors:
            return {"response_action": "errors", "errors": errors}
        meta = _metadata(view.get("private_metadata"))
        field = "title"
        try:
            if view.get("callback_id") == blocks.DECLARE_VIEW:
                self._declare(values, user, meta.get("channel"), meta.get("response_url"))
            elif view.get("callback_id") == blocks.EDIT_VIEW:
                number = meta.get("number")
                field = "lead"  # the one change that may be refused: it goes first
                self._edit(number if isinstance(number, int) else 0, values, user)
        except IncidentError as exc:
            return {"response_action": "errors", "errors": {field: _plain(str(exc))[:150]}}
        return None

    def _validate(self, values: dict) -> dict:
        errors = {}
        title = " ".join((values.get("title") or "").split())
        if not title:
            errors["title"] = "Say in a sentence what has happened."
        elif len(title) > MAX_TITLE:
            errors["title"] = f"Keep the title under {MAX_TITLE} characters; put the detail in the summary."
        if values.get("severity") and self.settings.severity(values["severity"]) is None:
            errors["severity"] = "Choose one of: " + ", ".join(s.name for s in self.settings.severities)
        if values.get("live") not in (None, "live", "report"):
            errors["live"] = "Choose live incident or report."
        return errors

    def _declare(self, values: dict, user: str, origin_channel: str | None, response_url: str | None = None) -> None:
        outcome = self.service.declare(values["title"], user, report=values.get("live") == "report",
                                       drill="drill" in (values.get("drill") or "").split(","),
                                       summary=values.get("summary") or "", impact=values.get("impact") or "",
                                       severity=values.get("severity"), lead=values.get("lead"))
        self.effects.after(outcome)
        number = outcome.incident.number
        thanks = (f"Thanks for raising incident {number} 🙏 Head over to #{self.settings.channels.incidents} "
                  f"to complete the report and help deal with it: {self.effects.document_url(number)}")
        self.effects.job("tell", None, {"user": user, "channel": origin_channel, "text": thanks,
                                        "response_url": response_url})  # the slash command's: where they are

    def _edit(self, number: int, values: dict, user: str) -> None:
        service = self.service
        current = service.get(number)
        if values.get("lead") and values["lead"] != current.roles.get("lead"):  # refused: nothing else changes
            self.effects.after(service.assign_role(number, "lead", values["lead"], user))
        steps = [(values.get("title"), current.title, lambda v: service.set_title(number, v, user)),
                 (values.get("summary") or "", current.summary, lambda v: service.set_summary(number, v, user)),
                 (values.get("impact") or "", current.impact, lambda v: service.set_impact(number, v, user)),
                 (values.get("severity"), current.severity, lambda v: service.set_severity(number, v, user))]
        for new, old, apply in steps:
            if new and new != old:
                self.effects.after(apply(new))

    # -- the headline's buttons ---------------------------------------------------------------------
    def _button(self, action: dict, payload: dict) -> None:
        action_id = action.get("action_id")
        user = _text(_dict(payload.get("user")).get("id"))
        channel = _text(_dict(payload.get("channel")).get("id")) or None
        value = _text(action.get("value"))
        if action_id in (blocks.TAKE_ROLE, blocks.PAGE_TEAM):
            number_text, _, role_key = value.partition(":")  # the role, or the team to page
            value = number_text
        try:
            number = int(value or 0)
        except ValueError:
            return
        if action_id in (blocks.TAKE_ROLE, blocks.PAGE_TEAM):
            try:
                if action_id == blocks.TAKE_ROLE:
                    self.effects.after(self.service.assign_role(number, role_key, user, user))
                else:
                    self.effects.after(self.service.page_specialist(number, role_key, user))
            except (IncidentError, SlackError) as exc:
                self.effects.job("tell", None, {"user": user, "channel": channel, "text": f"Sorry: {exc}"})
            return
        try:
            if action_id == blocks.CREATE_CHANNEL:
                self.effects.job("create_channel", number, {"by": user})
            elif action_id == blocks.PAGE_ONCALL:
                self.effects.job("page_oncall", number, {"by": user})
            elif action_id == blocks.EDIT:
                incident = self.service.get(number)
                view = blocks.incident_modal(self.settings, incident=incident,
                                             metadata=json.dumps({"number": number}))
                self.slack.open_view(payload.get("trigger_id", ""), view)
            elif action_id == blocks.CLOSE:
                self._close_form(number, user, payload)
            elif action_id in (blocks.HANDOVER_ACCEPT, blocks.HANDOVER_DECLINE):
                outcome = self.service.answer_handover(number, user, action_id == blocks.HANDOVER_ACCEPT)
                self.effects.after(outcome)
                if outcome.warnings:
                    self.effects.job("tell", None, {"user": user, "channel": channel, "text": " ".join(outcome.warnings)})
        except (IncidentError, SlackError) as exc:
            self.effects.job("tell", None, {"user": user, "channel": channel, "text": f"Sorry: {exc}"})

    # -- the pre-close check (the headline's Close button) ------------------------------------------
    def _close_form(self, number: int, user: str, payload: dict) -> None:
        """Refused at once for someone who may not close it; otherwise a form with what is missing and the
        process's two reasons to stop."""
        missing = self.service.close_check(number, user)
        view = blocks.close_modal(number, self.service.get(number).title, missing, json.dumps({"number": number}))
        self.slack.open_view(payload.get("trigger_id", ""), view)

    def _close_submission(self, view: dict, user: str) -> dict | None:
        values = blocks.modal_values(view)
        number = _metadata(view.get("private_metadata")).get("number")
        reason = "resolved"
        if values.get("reason") == "blocked":
            if not values.get("until"):
                return {"response_action": "errors", "errors": {"until": "Until when? Pick the date to pick it up."}}
            reason = f"blocked until {values['until']}"
        try:
            self.effects.after(self.service.close(number if isinstance(number, int) else 0, user, reason))
        except IncidentError as exc:
            return {"response_action": "errors", "errors": {"reason": _plain(str(exc))[:150]}}
        return None

    # -- pins ---------------------------------------------------------------------------------------
    def _pin_added(self, event: dict) -> None:
        item = _dict(event.get("item"))
        channel = _text(event.get("channel_id")) or _text(item.get("channel"))
        if self.service.for_channel(channel) is None:
            return
        message = _dict(item.get("message"))
        ts = _text(message.get("ts"))
        if not ts:
            return
        if not isinstance(message.get("text"), str):
            message = self.slack.message(channel, ts) or message
        files = [{"name": _text(f.get("name")) or _text(f.get("title")) or "file",
                  "url": _text(f.get("permalink")) or _text(f.get("url_private"))}
                 for f in _list(message.get("files")) if isinstance(f, dict)]
        permalink = _text(message.get("permalink")) or self.slack.permalink(channel, ts)
        author = _text(message.get("user")) or _text(message.get("bot_id"))
        self.service.record_pin(channel, ts, author, _text(message.get("text")), _text(event.get("user")),
                                permalink=permalink, thread_ts=_text(message.get("thread_ts")) or None,
                                files=files, event_ts=_text(event.get("event_ts")) or None)


def _plain(text: str) -> str:
    """A refusal for a modal field error (plain text: mentions as @U…)."""
    return re.sub(rf"<@({USER_ID})>", r"@\1", text)


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _metadata(raw: str | None) -> dict:
    try:
        value = json.loads(raw if isinstance(raw, str) and raw else "{}")
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}
