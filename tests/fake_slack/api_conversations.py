"""conversations.* methods, with the events Slack emits for them."""
from __future__ import annotations

import time

from . import events
from .web_api import Params, WebApi, method, paginate
from .workspace import TOPIC_MAX, SlackError

TYPES = {"public_channel", "private_channel", "im", "mpim"}


def _post_subtype(api: WebApi, channel, subtype: str, text: str, **extra) -> None:
    """Channel messages Slack adds for state changes (channel_topic, channel_archive, ...)."""
    message = api.ws.add_message(channel, events.subtype_message(api.ws, subtype, api.bot, text,
                                                                 **extra))
    api.emit(events.message_event(channel, message), channel)


@method("conversations.info")
def conversations_info(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    return {"channel": channel.to_api(api.bot)}


@method("conversations.list")
def conversations_list(api: WebApi, p: Params) -> dict:
    types = set(p.list("types") or ["public_channel"])
    if not types <= TYPES:
        raise SlackError("invalid_types")
    exclude_archived = p.bool("exclude_archived")
    chosen = []
    for channel in api.ws.channels.values():
        kind = "im" if channel.is_im else "private_channel" if channel.is_private else "public_channel"
        if kind in types and api.can_see(channel) and not (exclude_archived and channel.is_archived):
            chosen.append(channel.to_api(api.bot))
    page, cursor = paginate(chosen, p)
    return {"channels": page, "response_metadata": {"next_cursor": cursor}}


@method("conversations.members")
def conversations_members(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    page, cursor = paginate(sorted(channel.members), p)
    return {"members": page, "response_metadata": {"next_cursor": cursor}}


@method("conversations.create")
def conversations_create(api: WebApi, p: Params) -> dict:
    name = p.get("name")
    if name is None:
        raise SlackError("invalid_name_required")
    channel = api.ws.add_channel(name, api.bot, is_private=p.bool("is_private"), members={api.bot})
    if not channel.is_private:
        api.emit(events.channel_created_event(api.ws, channel))
    api.emit(events.member_joined_event(api.ws, channel, api.bot), channel)
    return {"channel": channel.to_api(api.bot)}


@method("conversations.invite")
def conversations_invite(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    users = p.list("users")
    if not users:
        raise SlackError("no_user")
    if channel.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    if api.bot not in channel.members:
        raise SlackError("not_in_channel")
    errors = []
    for user in users:
        if user == api.bot:
            errors.append({"user": user, "ok": False, "error": "cant_invite_self"})
        elif user not in api.ws.users:
            errors.append({"user": user, "ok": False, "error": "user_not_found"})
        elif user in channel.members:
            errors.append({"user": user, "ok": False, "error": "already_in_channel"})
    if errors and not (p.bool("force") and len(errors) < len(users)):
        raise SlackError(errors[0]["error"], errors=errors)
    failed = {e["user"] for e in errors}
    for user in users:
        if user not in failed:
            channel.members.add(user)
            api.emit(events.member_joined_event(api.ws, channel, user, inviter=api.bot), channel)
    return {"channel": channel.to_api(api.bot)}


@method("conversations.join")
def conversations_join(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    if channel.is_private or channel.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    result = {"channel": None}
    if api.bot in channel.members:
        result["warning"] = "already_in_channel"
        result["response_metadata"] = {"warnings": ["already_in_channel"]}
    else:
        channel.members.add(api.bot)
        api.emit(events.member_joined_event(api.ws, channel, api.bot), channel)
    result["channel"] = channel.to_api(api.bot)
    return result


@method("conversations.leave")
def conversations_leave(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    if channel.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if api.bot not in channel.members:
        return {"not_in_channel": True}
    api.emit(events.member_left_event(api.ws, channel, api.bot), channel)
    channel.members.discard(api.bot)
    return {}


def _set_text_field(api: WebApi, p: Params, field_name: str) -> dict:
    channel = api.member_channel(p.require("channel", "channel_not_found"))
    value = p.get(field_name, "")
    if len(value) > TOPIC_MAX:
        raise SlackError("too_long")
    setattr(channel, field_name, {"value": value, "creator": api.bot, "last_set": int(time.time())})
    _post_subtype(api, channel, f"channel_{field_name}",
                  f"set the channel {field_name}: {value}", **{field_name: value})
    return channel


@method("conversations.setTopic")
def conversations_set_topic(api: WebApi, p: Params) -> dict:
    return {"channel": _set_text_field(api, p, "topic").to_api(api.bot)}


@method("conversations.setPurpose")
def conversations_set_purpose(api: WebApi, p: Params) -> dict:
    _set_text_field(api, p, "purpose")
    return {}


@method("conversations.archive")
def conversations_archive(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    if channel.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("already_archived")
    if channel.is_general:
        raise SlackError("cant_archive_general")
    if api.bot not in channel.members:
        raise SlackError("not_in_channel")
    _post_subtype(api, channel, "channel_archive", "archived the channel")
    channel.is_archived = True
    api.emit(events.channel_archive_event(api.ws, channel, api.bot), channel)
    return {}


@method("conversations.unarchive", tokens=("bot", "user"))
def conversations_unarchive(api: WebApi, p: Params) -> dict:
    """docs: "Bot tokens (xoxb-...) cannot currently be used to unarchive conversations ... use a user
    token (xoxp-...)"; a bot token gets `not_in_channel`. "The calling user is added to the conversation."
    """
    channel = api.visible_channel(p.require("channel", "channel_not_found"))
    if channel.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if not channel.is_archived:
        raise SlackError("not_archived")
    if api.caller_kind == "bot" and "bot_unarchive" not in api.fake.relaxed:
        raise SlackError("not_in_channel")
    channel.is_archived = False
    channel.members.add(api.caller)
    api.emit(events.channel_archive_event(api.ws, channel, api.caller, "unarchive"), channel)
    return {}


@method("conversations.rename")
def conversations_rename(api: WebApi, p: Params) -> dict:
    channel = api.member_channel(p.require("channel", "channel_not_found"))
    name = api.ws.validate_channel_name(p.get("name"), exclude=channel.id)
    if name != channel.name:
        channel.previous_names.insert(0, channel.name)
        channel.name = name
        api.emit(events.channel_rename_event(api.ws, channel), channel)
    return {"channel": channel.to_api(api.bot)}


@method("conversations.open")
def conversations_open(api: WebApi, p: Params) -> dict:
    if p.get("channel"):
        channel = api.visible_channel(p.get("channel"))
    else:
        users = p.list("users")
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise SlackError("method_not_supported_for_channel_type")
        channel = api.ws.open_im(users[0])
    body = channel.to_api(api.bot) if p.bool("return_im") else {"id": channel.id}
    return {"channel": body}


def _page_messages(messages: list, p: Params) -> dict:
    if not p.bool("include_all_metadata"):
        messages = [{k: v for k, v in m.items() if k != "metadata"} for m in messages]
    latest, oldest = p.get("latest"), p.get("oldest")
    inclusive = p.bool("inclusive")
    if latest:
        messages = [m for m in messages if m["ts"] < latest or (inclusive and m["ts"] == latest)]
    if oldest:
        messages = [m for m in messages if m["ts"] > oldest or (inclusive and m["ts"] == oldest)]
    page, cursor = paginate(messages, p)
    return {"messages": page, "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor}}


@method("conversations.history")
def conversations_history(api: WebApi, p: Params) -> dict:
    channel = api.member_channel(p.require("channel", "channel_not_found"), allow_archived=True)
    top = [dict(m) for m in reversed(list(channel.messages.values()))
           if m.get("thread_ts") in (None, m["ts"])]
    return {**_page_messages(top, p), "pin_count": len(channel.pins)}


@method("conversations.replies")
def conversations_replies(api: WebApi, p: Params) -> dict:
    channel = api.member_channel(p.require("channel", "channel_not_found"), allow_archived=True)
    ts = p.require("ts")
    parent = channel.messages.get(ts)
    if parent is None:
        raise SlackError("thread_not_found")
    thread = [dict(m) for m in channel.messages.values()
              if m["ts"] == ts or (parent.get("thread_ts") == ts and m.get("thread_ts") == ts)]
    return _page_messages(thread, p)
