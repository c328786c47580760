"""Acting as people in Slack: messages, edits, pins, reactions, slash commands, buttons, modals.

Each action changes the workspace state like Slack would and delivers the resulting payloads to
the app through the current transport. Interactive actions (slash commands, button clicks, view
submissions) wait for the app's ack and return it (`delivery.Ack`), then apply what the ack asks
for (a slash-command reply, a view `response_action`).
"""
from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass
from typing import Any, Optional

from . import events
from .api_chat import pin_message
from .api_views import close_views, push_view, replace_view
from .block_state import fill_state, find_action, state_entry
from .blocks import check_message_blocks, check_view
from .delivery import Ack
from .escaping import escape_text
from .workspace import SlackError

RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60


@dataclass
class ResponseUrl:
    """A response_url handed to the app with a slash command or a message interaction."""

    token: str
    kind: str
    channel: str
    user: str
    message_ts: Optional[str] = None
    created: float = 0.0
    uses: int = 0


def _why(exc: SlackError) -> str:
    return "; ".join((exc.extra.get("response_metadata") or {}).get("messages", [])) or "refused"


class PersonActions:
    """Mixin for FakeSlack: helpers that act as a person. `user`/`channel` take ids or names."""

    # --- messages ------------------------------------------------------------------------------
    def post_message(self, channel: str, user: str, text: str, thread_ts: Optional[str] = None) -> dict:
        """Post as a person; delivers `message` (and `app_mention` when the bot is mentioned)."""
        ws = self.workspace
        with ws.lock:
            conv, person = self._person_in(channel, user)
            if conv.is_im and (not self.manifest.messages_tab or self.manifest.messages_tab_read_only):
                # the App Home's Messages tab is off (or read-only): people cannot write to the app
                raise SlackError("messages_tab_disabled")
            message = ws.add_message(conv, events.person_message(ws, person.id, text, thread_ts))
            self.emit(events.message_event(conv, message), conv)
            if ws.bot_user_id in events.mentions(text) and not conv.is_im:
                self.emit(events.app_mention_event(conv, message), conv)
            return dict(copy.deepcopy(message), channel=conv.id)

    def dm_channel(self, user: str) -> str:
        """The id of the bot's DM with `user` (opened if needed), for post_message."""
        return self.workspace.open_im(self._user(user).id).id

    def edit_message(self, channel: str, ts: str, text: str, user: Optional[str] = None) -> dict:
        """Edit a message as its author; delivers `message_changed`."""
        ws = self.workspace
        with ws.lock:
            conv = ws.channel(channel)
            author = self._user(user).id if user else ws.message(conv, ts).get("user")
            previous, updated = ws.update_message(conv, ts, {"text": text,
                                                            "blocks": events.rich_text(text)}, author)
            self.emit(events.message_changed_event(ws, conv, previous, updated), conv)
            return dict(copy.deepcopy(updated), channel=conv.id)

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message; delivers `message_deleted`."""
        ws = self.workspace
        with ws.lock:
            conv = ws.channel(channel)
            previous = ws.delete_message(conv, ts)
            self.emit(events.message_deleted_event(ws, conv, previous), conv)

    def pin(self, channel: str, ts: str, user: str) -> None:
        """Pin a message as `user`: `pin_added` (with item.message) + a pinned_item message."""
        with self.workspace.lock:
            conv, person = self._person_in(channel, user)
            pin_message(self.workspace, self.emit, conv, ts, person.id, True)

    def unpin(self, channel: str, ts: str, user: str) -> None:
        """Unpin a message as `user`: `pin_removed`."""
        with self.workspace.lock:
            conv, person = self._person_in(channel, user)
            pin_message(self.workspace, self.emit, conv, ts, person.id, False)

    def react(self, channel: str, ts: str, name: str, user: str, add: bool = True) -> None:
        """Add (or remove) an emoji reaction: `reaction_added` / `reaction_removed`."""
        ws = self.workspace
        with ws.lock:
            conv, person = self._person_in(channel, user)
            message = ws.react(conv, ts, name, person.id, add)
            kind = "reaction_added" if add else "reaction_removed"
            self.emit(events.reaction_event(ws, kind, conv, message, person.id, name), conv)

    def join(self, channel: str, user: str, inviter: Optional[str] = None) -> None:
        """`user` joins (or is added to) a channel: `member_joined_channel`."""
        ws = self.workspace
        with ws.lock:
            conv, person = ws.channel(channel), self._user(user)
            conv.members.add(person.id)
            inviter_id = self._user(inviter).id if inviter else None
            self.emit(events.member_joined_event(ws, conv, person.id, inviter_id), conv)

    def archive(self, channel: str, user: str) -> None:
        """A person archives a channel: `channel_archive` (or `group_archive`)."""
        ws = self.workspace
        with ws.lock:
            conv, person = ws.channel(channel), self._user(user)
            if conv.is_archived:
                raise SlackError("already_archived")
            conv.is_archived = True
            self.emit(events.channel_archive_event(ws, conv, person.id), conv)

    # --- slash commands, buttons, modals -------------------------------------------------------
    def slash_command(self, command: str, text: str, user: str, channel: str,
                      timeout: float = 10.0) -> Ack:
        """Run `/command text` as `user` in `channel`; returns the app's ack. People, channels and links in
        `text` arrive escaped (`<@U123|bob>`) when the manifest's command has should_escape: true."""
        ws = self.workspace
        command = command if command.startswith("/") else "/" + command
        with ws.lock:
            conv, person = ws.channel(channel), self._user(user)
            if command in self.manifest.escaped_commands:
                text = escape_text(ws, text, person.id)
            hook = self._new_response_url("commands", conv.id, person.id)
            name = "directmessage" if conv.is_im else "privategroup" if conv.is_private else conv.name
            payload = {"token": self.verification_token, "team_id": ws.team["id"],
                       "team_domain": ws.team["domain"], "channel_id": conv.id,
                       "channel_name": name, "user_id": person.id, "user_name": person.name,
                       "command": command,
                       "text": text, "api_app_id": ws.app_id, "is_enterprise_install": "false",
                       "response_url": self._hook_url(hook), "trigger_id": ws.issue_trigger(person.id)}
        ack = self.wait_ack(self.send_envelope("slash_commands", payload, True), timeout)
        reply = ack.payload if ack.ok else None
        if reply is None and ack.ok and self.mode == "http" and ack.body.strip():
            reply = {"text": ack.body}  # a plain-text HTTP answer is shown to the user
        if isinstance(reply, dict) and (reply.get("text") or reply.get("blocks")):
            with ws.lock:
                self._apply_response(hook, reply)
        return ack

    def click_button(self, target: Any, action_id: str, user: str, value: Any = None,
                     timeout: float = 10.0) -> Ack:
        """Click an element by `action_id` in a message (`(channel, ts)` or a message dict with
        "channel" and "ts", as `messages()` returns) or in a view (its id). Returns the ack."""
        ws = self.workspace
        with ws.lock:
            person = self._user(user)
            payload = {"type": "block_actions", "user": self._user_ref(person),
                       "api_app_id": ws.app_id, "token": self.verification_token,
                       "trigger_id": ws.issue_trigger(person.id), "team": self._team_ref(),
                       "enterprise": None, "is_enterprise_install": False}
            if isinstance(target, str) and target in ws.views:
                view = ws.views[target]
                blocks = view.data.get("blocks", [])
                data = copy.deepcopy(view.data)
                data["state"] = fill_state(data, None)
                payload.update(container={"type": "view", "view_id": view.id}, view=data,
                               state=data["state"])
            else:
                channel, ts = (target["channel"], target["ts"]) if isinstance(target, dict) else target
                conv = ws.channel(channel)
                message = ws.message(conv, ts)
                blocks = message.get("blocks", [])
                hook = self._new_response_url("actions", conv.id, person.id, ts)
                payload.update(container={"type": "message", "message_ts": ts,
                                          "channel_id": conv.id, "is_ephemeral": False},
                               channel={"id": conv.id, "name": conv.name},
                               message=copy.deepcopy(message), state={"values": {}},
                               response_url=self._hook_url(hook))
            block_id, element = find_action(blocks, action_id)
            payload["actions"] = [self._action(block_id, element, value)]
        return self.wait_ack(self.send_envelope("interactive", payload, False), timeout)

    def submit_view(self, view_id: str, values: Optional[dict] = None, user: Optional[str] = None,
                    timeout: float = 10.0) -> Ack:
        """Submit an open modal with input `values` (see blocks.fill_state); returns the ack and
        applies its response_action (errors / update / push / clear; empty ack closes the view).
        """
        ws = self.workspace
        with ws.lock:
            view = ws.views[view_id]
            if not view.open:
                raise ValueError(f"view {view_id} is not open")
            person = self._user(user) if user else ws.user(view.user)
            data = copy.deepcopy(view.data)
            data["state"] = fill_state(data, values)
            payload = {"type": "view_submission", "team": self._team_ref(),
                       "user": self._user_ref(person), "api_app_id": ws.app_id,
                       "token": self.verification_token, "trigger_id": ws.issue_trigger(person.id),
                       "view": data, "response_urls": [], "enterprise": None,
                       "is_enterprise_install": False}
        ack = self.wait_ack(self.send_envelope("interactive", payload, True), timeout)
        if ack.ok:
            with ws.lock:
                self._apply_response_action(view, person.id, data["state"], ack.payload or {},
                                            ack.envelope_id)
        return ack

    def close_view(self, view_id: str, timeout: float = 10.0) -> Optional[Ack]:
        """The person closes a modal; sends `view_closed` when the view asked for it."""
        ws = self.workspace
        with ws.lock:
            view = ws.views[view_id]
            close_views(ws, view.user, view_id)
            if not view.data.get("notify_on_close"):
                return None
            payload = {"type": "view_closed", "team": self._team_ref(),
                       "user": self._user_ref(ws.user(view.user)), "api_app_id": ws.app_id,
                       "token": self.verification_token, "view": copy.deepcopy(view.data),
                       "is_cleared": False}
        return self.wait_ack(self.send_envelope("interactive", payload, False), timeout)

    # --- response_url ----------------------------------------------------------------------------
    def use_response_url(self, token: str, data: dict) -> tuple:
        """Handle a POST to a response_url: (HTTP status, body text)."""
        with self.workspace.lock:
            hook = self.response_urls.get(token)
            if hook is None:
                return 404, "invalid_token"
            if time.time() - hook.created > RESPONSE_URL_TTL:
                return 404, "expired_url"
            if hook.uses >= RESPONSE_URL_USES:
                return 404, "used_url"
            hook.uses += 1
            try:
                self._show_response(hook, data)
            except SlackError as exc:
                return 400, exc.error
            return 200, "ok"

    def _apply_response(self, hook: ResponseUrl, data: dict) -> None:
        """A slash command's reply riding on its ack: shown like a response_url answer; one Slack refuses
        (invalid blocks, say) is not shown, and the ledger records it."""
        try:
            self._show_response(hook, data)
        except SlackError as exc:
            self.answer_errors.append((exc.error, "ack of slash command", _why(exc), None))

    def _show_response(self, hook: ResponseUrl, data: dict) -> None:
        """Show a response_url answer (or a slash command's ack reply), with Slack's Block Kit checks."""
        ws = self.workspace
        conv = ws.channel(hook.channel)
        if data.get("delete_original") and hook.message_ts:
            previous = ws.delete_message(conv, hook.message_ts)
            self.emit(events.message_deleted_event(ws, conv, previous), conv)
            return
        if data.get("blocks"):
            data = dict(data, blocks=check_message_blocks(data["blocks"]))
        if not (data.get("text") or data.get("blocks") or data.get("attachments")):
            raise SlackError("no_text")
        if data.get("replace_original") and hook.message_ts:
            changes = {k: data[k] for k in ("text", "blocks", "attachments") if k in data}
            previous, updated = ws.update_message(conv, hook.message_ts, changes, ws.bot_user_id)
            self.emit(events.message_changed_event(ws, conv, previous, updated), conv)
        elif data.get("response_type") == "in_channel":
            message = events.bot_message(ws, data.get("text", ""), data.get("blocks"),
                                         data.get("attachments"), data.get("thread_ts"))
            message = ws.add_message(conv, message)
            self.emit(events.message_event(conv, message), conv)
        else:
            ws.ephemeral.append({"channel": conv.id, "user": hook.user, "text": data.get("text", ""),
                                 "blocks": data.get("blocks"), "attachments": data.get("attachments"),
                                 "thread_ts": data.get("thread_ts"),
                                 "message_ts": ws.clock.next_ts(), "via": "response_url"})

    def _apply_response_action(self, view, user: str, state: dict, answer: dict,
                               envelope_id: Optional[str] = None) -> None:
        """A view_submission's ack: `errors` (keyed by the view's input block_ids), `update` / `push` (a view
        that passes views.*'s checks), `clear`, or nothing (the view closes). One Slack refuses leaves the
        view open as it was, and the ledger records it."""
        action = answer.get("response_action") if isinstance(answer, dict) else None
        try:
            if action == "errors":
                errors = answer.get("errors")
                inputs = {b.get("block_id") for b in view.data.get("blocks", []) if b.get("type") == "input"}
                if not isinstance(errors, dict) or not set(errors) <= inputs:
                    raise SlackError("invalid_arguments", response_metadata={"messages": [
                        f"[ERROR] errors must name input blocks of the view: {sorted(inputs)}"]})
                view.data["state"] = state
                view.errors = dict(errors)
            elif action == "update":
                replace_view(view, check_view(answer.get("view")))
            elif action == "push":
                push_view(self.workspace, user, check_view(answer.get("view")))
            else:
                close_views(self.workspace, user, view.id, clear=action == "clear")
        except SlackError as exc:
            self.answer_errors.append((exc.error, f"response_action {action}", _why(exc), envelope_id))

    def _new_response_url(self, kind: str, channel: str, user: str, message_ts=None) -> ResponseUrl:
        hook = ResponseUrl(secrets.token_urlsafe(18), kind, channel, user, message_ts, time.time())
        self.response_urls[hook.token] = hook
        return hook

    def _hook_url(self, hook: ResponseUrl) -> str:
        return f"{self.base_url}/hooks/{hook.kind}/{hook.token}"

    # --- lookups ---------------------------------------------------------------------------------
    def _user(self, ref: str):
        ws = self.workspace
        if ref in ws.users:
            return ws.users[ref]
        for user in ws.users.values():
            if user.name == ref.lstrip("@"):
                return user
        raise SlackError("user_not_found")

    def _person_in(self, channel: str, user: str) -> tuple:
        """(conversation, user) after checking the person may act there."""
        conv, person = self.workspace.channel(channel), self._user(user)
        if conv.is_archived:
            raise SlackError("is_archived")
        if person.id not in conv.members:
            raise SlackError("not_in_channel")
        return conv, person

    def _user_ref(self, person) -> dict:
        return {"id": person.id, "username": person.name, "name": person.name,
                "team_id": self.workspace.team["id"]}

    def _team_ref(self) -> dict:
        return {"id": self.workspace.team["id"], "domain": self.workspace.team["domain"]}

    @staticmethod
    def _action(block_id: str, element: dict, value: Any) -> dict:
        action = {"action_id": element.get("action_id"), "block_id": block_id,
                  "type": element.get("type", "button"), "action_ts": f"{time.time():.6f}"}
        if action["type"] == "button":
            action["text"] = element.get("text")
            action["value"] = element.get("value") if value is None else value
            if "style" in element:
                action["style"] = element["style"]
        else:
            action.update({k: v for k, v in state_entry(element, value).items() if k != "type"})
        return action
