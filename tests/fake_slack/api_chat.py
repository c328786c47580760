"""chat.*, reactions.*, pins.* and the files upload_v2 methods, with their events."""
from __future__ import annotations

import secrets
import time

from . import events
from .blocks import check_message_blocks, parse_json
from .web_api import Params, WebApi, method
from .workspace import SlackError

TEXT_MAX = 40_000
UPDATE_TEXT_MAX = 4_000
ATTACHMENTS_MAX = 100


def _content(p: Params, required: bool = True) -> dict:
    """text/blocks/attachments after Slack's checks; `warnings` when text was truncated."""
    text = p.get("text")
    blocks = check_message_blocks(p.get("blocks"))
    attachments = parse_json(p.get("attachments"), "attachments") if p.get("attachments") else None
    if attachments is not None and len(attachments) > ATTACHMENTS_MAX:
        raise SlackError("too_many_attachments")
    if required and not (text or blocks or attachments):
        raise SlackError("no_text")
    content = {"text": text or "", "blocks": blocks, "attachments": attachments, "warnings": []}
    if text and len(text) > TEXT_MAX:
        content["text"] = text[:TEXT_MAX]
        content["warnings"].append("message_truncated")
    return content


def _postable(api: WebApi, ref) -> object:
    """The conversation for chat.postMessage/postEphemeral, with Slack's membership rules."""
    channel = api.ws.conversation_for(ref)
    if not api.can_see(channel):
        raise SlackError("channel_not_found")
    if channel.is_archived:
        raise SlackError("is_archived")
    if channel.is_im and not api.fake.manifest.messages_tab:
        raise SlackError("messages_tab_disabled")  # the App Home has no Messages tab: no DMs
    public_ok = "chat:write.public" in api.fake.scopes and not (channel.is_private or channel.is_im)
    if api.bot not in channel.members and not public_ok:
        raise SlackError("not_in_channel")
    return channel


def _with_warnings(body: dict, warnings: list) -> dict:
    if warnings:
        body["warning"] = ",".join(warnings)
        body["response_metadata"] = {"warnings": warnings}
    return body


@method("chat.postMessage")
def chat_post_message(api: WebApi, p: Params) -> dict:
    channel = _postable(api, p.require("channel", "channel_not_found"))
    content = _content(p)
    thread_ts = p.get("thread_ts")
    message = events.bot_message(api.ws, content["text"], content["blocks"],
                                 content["attachments"], thread_ts)
    if thread_ts and p.bool("reply_broadcast"):
        message["subtype"] = "thread_broadcast"
    if p.get("metadata"):  # message metadata: returned by history with include_all_metadata
        metadata = parse_json(p.get("metadata"), "metadata")
        if not isinstance(metadata, dict) or not metadata.get("event_type"):
            raise SlackError("invalid_metadata_format")
        message["metadata"] = {"event_type": metadata["event_type"],
                               "event_payload": metadata.get("event_payload", {})}
    message = api.ws.add_message(channel, message)
    api.emit(events.message_event(channel, message), channel)
    return _with_warnings({"channel": channel.id, "ts": message["ts"], "message": dict(message)},
                          content["warnings"])


@method("chat.postEphemeral")
def chat_post_ephemeral(api: WebApi, p: Params) -> dict:
    channel = _postable(api, p.require("channel", "channel_not_found"))
    user = p.require("user", "user_not_found")
    api.ws.user(user)
    if user not in channel.members:
        raise SlackError("user_not_in_channel")
    content = _content(p)
    ts = api.ws.clock.next_ts()
    api.ws.ephemeral.append({"channel": channel.id, "user": user, "text": content["text"],
                             "blocks": content["blocks"], "attachments": content["attachments"],
                             "thread_ts": p.get("thread_ts"), "message_ts": ts,
                             "via": "chat.postEphemeral"})
    return {"message_ts": ts}


def _own_message(api: WebApi, p: Params, error: str) -> tuple:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    message = api.ws.message(channel, p.require("ts", "message_not_found"))
    if message.get("user") != api.bot:
        raise SlackError(error)
    return channel, message


@method("chat.update")
def chat_update(api: WebApi, p: Params) -> dict:
    channel, message = _own_message(api, p, "cant_update_message")
    content = _content(p)  # neither text nor blocks nor attachments: no_text
    if len(content["text"]) > UPDATE_TEXT_MAX:
        raise SlackError("msg_too_long")
    changes = {"text": content["text"]}
    for key in ("blocks", "attachments"):
        if content[key] is not None:
            changes[key] = content[key]
        elif p.get(key) == "[]" or p.data.get(key) == []:
            changes[key] = []
    previous, updated = api.ws.update_message(channel, message["ts"], changes, api.bot)
    api.emit(events.message_changed_event(api.ws, channel, previous, updated), channel)
    return {"channel": channel.id, "ts": updated["ts"], "text": updated["text"],
            "message": {k: v for k, v in updated.items() if k != "ts"}}


@method("chat.delete")
def chat_delete(api: WebApi, p: Params) -> dict:
    channel, message = _own_message(api, p, "cant_delete_message")
    previous = api.ws.delete_message(channel, message["ts"])
    api.emit(events.message_deleted_event(api.ws, channel, previous), channel)
    return {"channel": channel.id, "ts": previous["ts"]}


@method("chat.getPermalink")
def chat_get_permalink(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    ts = p.require("message_ts", "message_not_found")
    api.ws.message(channel, ts)
    return {"channel": channel.id, "permalink": api.ws.permalink(channel, ts)}


# --- reactions ------------------------------------------------------------------------------------
def _react(api: WebApi, p: Params, add: bool) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    if add and channel.is_archived:
        raise SlackError("is_archived")
    ts = p.require("timestamp", "no_item_specified")
    name = p.require("name", "invalid_name")
    message = api.ws.react(channel, ts, name, api.bot, add)
    kind = "reaction_added" if add else "reaction_removed"
    api.emit(events.reaction_event(api.ws, kind, channel, message, api.bot, name), channel)
    return {}


@method("reactions.add")
def reactions_add(api: WebApi, p: Params) -> dict:
    return _react(api, p, True)


@method("reactions.remove")
def reactions_remove(api: WebApi, p: Params) -> dict:
    return _react(api, p, False)


@method("reactions.get")
def reactions_get(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    message = api.ws.message(channel, p.require("timestamp", "no_item_specified"))
    return {"type": "message", "channel": channel.id, "message": dict(message)}


# --- pins -----------------------------------------------------------------------------------------
def pin_message(ws, emit, channel, ts: str, user: str, add: bool) -> None:
    """Pin/unpin as `user`, then `emit` pin_added/pin_removed (+ the pinned_item message)."""
    if add:
        ws.pin(channel, ts, user)
        item = ws.pin_item(channel, ts)
        emit(events.pin_event(ws, "pin_added", channel, ts, user, item), channel)
        notice = ws.add_message(channel, events.pinned_item_message(ws, user))
        emit(events.message_event(channel, notice), channel)
    else:
        item = ws.pin_item(channel, ts)
        ws.unpin(channel, ts)
        item["message"].pop("pinned_to", None)
        emit(events.pin_event(ws, "pin_removed", channel, ts, user, item), channel)


@method("pins.add")
def pins_add(api: WebApi, p: Params) -> dict:
    channel = api.member_channel(p.require("channel", "channel_not_found"))
    pin_message(api.ws, api.emit, channel, p.require("timestamp", "no_item_specified"), api.bot, True)
    return {}


@method("pins.remove")
def pins_remove(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    pin_message(api.ws, api.emit, channel, p.require("timestamp", "no_item_specified"), api.bot, False)
    return {}


@method("pins.list")
def pins_list(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    items = [api.ws.pin_item(channel, ts) for ts in channel.pins]
    items.sort(key=lambda item: item["created"], reverse=True)
    return {"items": items}


# --- files (upload_v2: getUploadURLExternal, raw POST, completeUploadExternal) --------------------
@method("files.getUploadURLExternal")
def files_get_upload_url(api: WebApi, p: Params) -> dict:
    filename = p.require("filename")
    length = p.int("length", 0)
    file_id = api.ws.ids.new("F")
    api.fake.files[file_id] = {"id": file_id, "name": filename, "title": filename,
                               "length": length, "content": None, "created": int(time.time())}
    return {"upload_url": f"{api.fake.base_url}/upload/{file_id}/{secrets.token_hex(8)}",
            "file_id": file_id}


@method("files.completeUploadExternal")
def files_complete_upload(api: WebApi, p: Params) -> dict:
    entries = p.json("files") or []
    shared = []
    for entry in entries:
        stored = api.fake.files.get(entry.get("id"))
        if stored is None or stored["content"] is None:
            raise SlackError("file_not_found")
        stored["title"] = entry.get("title") or stored["name"]
        shared.append({"id": stored["id"], "name": stored["name"], "title": stored["title"],
                       "size": len(stored["content"])})
    channel_ref = p.get("channel_id") or p.get("channels")
    if channel_ref:
        channel = _postable(api, channel_ref)
        message = dict(events.bot_message(api.ws, p.get("initial_comment", ""),
                                          thread_ts=p.get("thread_ts")),
                       subtype="file_share", files=shared, upload=True)
        message = api.ws.add_message(channel, message)
        api.emit(events.message_event(channel, message), channel)
    return {"files": shared}
