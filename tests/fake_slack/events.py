"""Builders for Events API payloads, shaped after the samples in slack-reference/payloads.

Each function returns the inner `event` object; `event_callback` wraps one for delivery.
"""
from __future__ import annotations

import copy
import re
import secrets
import time
import uuid

from .workspace import Channel, Workspace

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def rich_text(text: str) -> list:
    """The `rich_text` block Slack adds to messages typed by people; mentions become user elements."""
    elements, pos = [], 0
    for match in _MENTION.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos:match.start()]})
        elements.append({"type": "user", "user_id": match.group(1)})
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    return [{"type": "rich_text", "block_id": secrets.token_hex(3),
             "elements": [{"type": "rich_text_section", "elements": elements}]}]


def mentions(text: str) -> list:
    return _MENTION.findall(text or "")


def event_callback(ws: Workspace, event: dict) -> dict:
    """The Events API body (Socket Mode envelope payload) around one event."""
    team_id = ws.team["id"]
    return {"token": "fake-verification-token", "team_id": team_id, "context_team_id": team_id,
            "context_enterprise_id": None, "api_app_id": ws.app_id, "event": event,
            "type": "event_callback", "event_id": "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": team_id,
                                "user_id": ws.bot_user_id, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(24)}


def person_message(ws: Workspace, user: str, text: str, thread_ts=None) -> dict:
    """A message as stored when a person types it in the Slack client."""
    message = {"client_msg_id": str(uuid.uuid4()), "type": "message", "text": text,
               "user": user, "team": ws.team["id"], "blocks": rich_text(text)}
    if thread_ts:
        message["thread_ts"] = thread_ts
    return message


def bot_message(ws: Workspace, text: str, blocks=None, attachments=None, thread_ts=None) -> dict:
    """A message as stored when the app posts through chat.postMessage."""
    message = {"bot_id": ws.bot_user.bot_id, "type": "message", "text": text or "",
               "user": ws.bot_user_id, "app_id": ws.app_id, "team": ws.team["id"],
               "bot_profile": ws.bot_profile()}
    if blocks:
        message["blocks"] = blocks
    if attachments:
        message["attachments"] = attachments
    if thread_ts:
        message["thread_ts"] = thread_ts
    return message


def message_event(channel: Channel, message: dict) -> dict:
    event = copy.deepcopy(message)
    for key in ("pinned_to", "reactions", "reply_count", "reply_users", "reply_users_count",
                "latest_reply"):
        event.pop(key, None)
    event.update(channel=channel.id, event_ts=message["ts"], channel_type=channel.channel_type)
    return event


def app_mention_event(channel: Channel, message: dict) -> dict:
    """Sent alongside the message event when a person mentions the bot (never in DMs)."""
    event = {"client_msg_id": message.get("client_msg_id"), "type": "app_mention",
             "text": message["text"], "user": message["user"], "ts": message["ts"],
             "team": message.get("team"), "blocks": message.get("blocks", []),
             "channel": channel.id, "event_ts": message["ts"]}
    if message.get("thread_ts"):
        event["thread_ts"] = message["thread_ts"]
    return event


def message_changed_event(ws: Workspace, channel: Channel, previous: dict, message: dict) -> dict:
    ts = ws.clock.next_ts()
    return {"type": "message", "subtype": "message_changed", "message": copy.deepcopy(message),
            "previous_message": previous, "channel": channel.id, "hidden": True, "ts": ts,
            "event_ts": ts, "channel_type": channel.channel_type}


def message_deleted_event(ws: Workspace, channel: Channel, previous: dict) -> dict:
    ts = ws.clock.next_ts()
    return {"type": "message", "subtype": "message_deleted", "hidden": True,
            "deleted_ts": previous["ts"], "channel": channel.id, "previous_message": previous,
            "ts": ts, "event_ts": ts, "channel_type": channel.channel_type}


def pin_event(ws: Workspace, kind: str, channel: Channel, message_ts: str, user: str,
              item: dict) -> dict:
    """pin_added / pin_removed with `item.message` (slack-go sample + java-sdk inventory)."""
    event = {"type": kind, "user": user, "channel_id": channel.id, "item": item,
             "item_user": item["message"].get("user"), "pin_count": len(channel.pins),
             "pinned_info": {"channel": channel.id, "pinned_by": item.get("created_by") or user,
                             "pinned_ts": item.get("created")},
             "event_ts": ws.clock.next_ts()}
    if kind == "pin_removed":
        event["has_pins"] = bool(channel.pins)
    return event


def pinned_item_message(ws: Workspace, user: str) -> dict:
    """The channel-visible "X pinned a message" message (subtype pinned_item)."""
    name = ws.users[user].name if user in ws.users else user
    return {"type": "message", "subtype": "pinned_item", "user": user, "item_type": "C",
            "text": f"<@{user}|{name}> pinned a message to this channel.", "item": {}}


def reaction_event(ws: Workspace, kind: str, channel: Channel, message: dict, user: str,
                   name: str) -> dict:
    return {"type": kind, "user": user, "reaction": name, "item_user": message.get("user"),
            "item": {"type": "message", "channel": channel.id, "ts": message["ts"]},
            "event_ts": ws.clock.next_ts()}


def member_joined_event(ws: Workspace, channel: Channel, user: str, inviter=None) -> dict:
    event = {"type": "member_joined_channel", "user": user, "channel": channel.id,
             "channel_type": "G" if channel.is_private else "C", "team": ws.team["id"],
             "event_ts": ws.clock.next_ts()}
    if inviter:
        event["inviter"] = inviter
    return event


def member_left_event(ws: Workspace, channel: Channel, user: str) -> dict:
    return {"type": "member_left_channel", "user": user, "channel": channel.id,
            "channel_type": "G" if channel.is_private else "C", "team": ws.team["id"],
            "event_ts": ws.clock.next_ts()}


def channel_created_event(ws: Workspace, channel: Channel) -> dict:
    return {"type": "channel_created", "event_ts": ws.clock.next_ts(),
            "channel": {"id": channel.id, "name": channel.name, "name_normalized": channel.name,
                        "created": channel.created, "creator": channel.creator,
                        "is_channel": True, "is_private": channel.is_private}}


def channel_archive_event(ws: Workspace, channel: Channel, user: str, kind="archive") -> dict:
    """channel_archive / channel_unarchive; private channels get group_archive / group_unarchive."""
    prefix = "group" if channel.is_private else "channel"
    return {"type": f"{prefix}_{kind}", "channel": channel.id, "user": user,
            "event_ts": ws.clock.next_ts()}


def channel_rename_event(ws: Workspace, channel: Channel) -> dict:
    prefix = "group" if channel.is_private else "channel"
    return {"type": f"{prefix}_rename", "event_ts": ws.clock.next_ts(),
            "channel": {"id": channel.id, "name": channel.name, "created": channel.created}}


def subtype_message(ws: Workspace, subtype: str, user: str, text: str, **extra) -> dict:
    """Channel messages Slack posts for state changes: channel_topic, channel_join, ..."""
    return {"type": "message", "subtype": subtype, "user": user, "text": text, **extra}
