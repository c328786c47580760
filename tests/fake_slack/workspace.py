"""The fake workspace: team, users, conversations, messages, pins, reactions, views, triggers.

All state lives here and is guarded by one re-entrant lock (`Workspace.lock`): the Web API runs on
the server's event-loop thread while tests seed state and act as people from the test thread.
Methods raise `SlackError` with Slack's own error codes; the Web API turns those into
`{"ok": false, "error": ...}` responses.
"""
from __future__ import annotations

import copy
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

CHANNEL_NAME_MAX = 80
TOPIC_MAX = 250
_NAME_OK = re.compile(r"^[a-z0-9_\-\u00c0-\uffff]+$")


class SlackError(Exception):
    """A Slack business error: HTTP 200 with `{"ok": false, "error": error, **extra}`."""

    def __init__(self, error: str, **extra):
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict:
        return {"ok": False, "error": self.error, **self.extra}


def missing(field_name: str) -> SlackError:
    """Slack's shape for a missing required argument."""
    return SlackError("invalid_arguments", response_metadata={
        "messages": [f"[ERROR] missing required field: {field_name}"]})


class Clock:
    """Issues message timestamps: unique, strictly increasing, `"1700000000.000100"` strings."""

    def __init__(self):
        self._last = 0
        self._lock = threading.Lock()

    def next_ts(self) -> str:
        with self._lock:
            micros = max(int(time.time() * 1_000_000), self._last + 1)
            self._last = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class IdFactory:
    """Slack-looking ids: a type prefix (C, G, D, U, B, V, F, Ev) and upper-case characters."""

    def __init__(self):
        self._counter = itertools.count(1)

    def new(self, prefix: str) -> str:
        return f"{prefix}0F{next(self._counter):08X}"


@dataclass
class User:
    """A workspace member (a person, or the app's bot user when `bot_id` is set)."""

    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    bot_id: Optional[str] = None
    email: Optional[str] = None
    tz: str = "Europe/London"
    is_admin: bool = False
    deleted: bool = False

    def to_api(self, team_id: str) -> dict:
        real_name = self.real_name or self.name
        profile = {"real_name": real_name, "real_name_normalized": real_name,
                   "display_name": self.name, "display_name_normalized": self.name,
                   "avatar_hash": "g0000000000", "image_48": "https://a.slack-edge.com/x48.png",
                   "image_72": "https://a.slack-edge.com/x72.png", "team": team_id}
        if self.email:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        return {"id": self.id, "team_id": team_id, "name": self.name, "deleted": self.deleted,
                "color": "9f69e7", "real_name": real_name, "tz": self.tz, "tz_label": self.tz,
                "tz_offset": 0, "profile": profile, "is_admin": self.is_admin, "is_owner": False,
                "is_primary_owner": False, "is_restricted": False, "is_ultra_restricted": False,
                "is_bot": self.is_bot, "is_app_user": False, "updated": 1700000000}


@dataclass
class Channel:
    """A conversation: public or private channel, or a DM (`is_im`). Messages are keyed by ts."""

    id: str
    name: str
    creator: str
    is_private: bool = False
    is_im: bool = False
    im_user: Optional[str] = None
    is_general: bool = False
    is_archived: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    members: set = field(default_factory=set)
    topic: dict = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    purpose: dict = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    previous_names: list = field(default_factory=list)
    messages: dict = field(default_factory=dict)
    pins: dict = field(default_factory=dict)
    bookmarks: list = field(default_factory=list)

    @property
    def channel_type(self) -> str:
        """The `channel_type` of message events: channel, group or im."""
        return "im" if self.is_im else "group" if self.is_private else "channel"

    def to_api(self, viewer: str) -> dict:
        """The conversation object as conversations.info/create/join return it."""
        if self.is_im:
            return {"id": self.id, "created": self.created, "is_im": True, "is_org_shared": False,
                    "user": self.im_user, "is_user_deleted": False, "priority": 0,
                    "is_open": True, "last_read": "0000000000.000000"}
        return {"id": self.id, "name": self.name, "name_normalized": self.name,
                "is_channel": not self.is_private, "is_group": False, "is_im": False,
                "is_mpim": False, "is_private": self.is_private, "created": self.created,
                "creator": self.creator, "is_archived": self.is_archived,
                "is_general": self.is_general, "unlinked": 0, "is_shared": False,
                "is_ext_shared": False, "is_org_shared": False, "pending_shared": [],
                "is_pending_ext_shared": False, "is_member": viewer in self.members,
                "topic": dict(self.topic), "purpose": dict(self.purpose),
                "previous_names": list(self.previous_names), "num_members": len(self.members)}


@dataclass
class Trigger:
    """A trigger_id handed to the app with an interaction: valid for `ttl` seconds, once."""

    id: str
    user: str
    issued_at: float
    used: bool = False


@dataclass
class View:
    """A modal (or home tab) the app opened. `data` is the view object Slack returns."""

    id: str
    user: str
    data: dict
    open: bool = True
    errors: dict = field(default_factory=dict)


class Workspace:
    """In-memory Slack workspace state and the rules that guard it."""

    def __init__(self, team_id="T0FAKE0001", team_domain="fake-workspace", team_name="Fake Workspace",
                 bot_user_id="U0FAKEBOT1", bot_id="B0FAKEBOT1", app_id="A0FAKEAPP1",
                 bot_name="opg-incident", trigger_ttl=3.0):
        self.lock = threading.RLock()
        self.ids = IdFactory()
        self.clock = Clock()
        self.team = {"id": team_id, "name": team_name, "domain": team_domain,
                     "email_domain": "", "icon": {"image_default": True}}
        self.app_id = app_id
        self.bot_user = User(bot_user_id, bot_name, real_name=bot_name, is_bot=True, bot_id=bot_id)
        self.users: dict[str, User] = {bot_user_id: self.bot_user}
        self.bots = {bot_id: {"id": bot_id, "deleted": False, "name": bot_name, "updated": 1700000000,
                              "app_id": app_id, "user_id": bot_user_id,
                              "icons": {"image_36": "https://a.slack-edge.com/bot_36.png",
                                        "image_48": "https://a.slack-edge.com/bot_48.png",
                                        "image_72": "https://a.slack-edge.com/bot_72.png"}}}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, dict] = {}  # S... -> {"id", "handle", "users", "date_delete"}
        self.views: dict[str, View] = {}
        self.view_stacks: dict[str, list] = {}
        self.ephemeral: list[dict] = []
        self.triggers: dict[str, Trigger] = {}
        self.trigger_ttl = trigger_ttl

    # --- people -------------------------------------------------------------------------------
    @property
    def bot_user_id(self) -> str:
        return self.bot_user.id

    def add_user(self, user_id: str, name: str, **attrs) -> User:
        with self.lock:
            self.users[user_id] = User(user_id, name, **attrs)
            return self.users[user_id]

    def user(self, user_id: Optional[str]) -> User:
        user = self.users.get(user_id or "")
        if user is None:
            raise SlackError("user_not_found")
        return user

    def bot_profile(self) -> dict:
        bot = self.bots[self.bot_user.bot_id]
        return {"id": bot["id"], "deleted": False, "name": bot["name"], "updated": bot["updated"],
                "app_id": self.app_id, "icons": bot["icons"], "team_id": self.team["id"]}

    # --- conversations ------------------------------------------------------------------------
    def channel(self, ref: Optional[str]) -> Channel:
        """A conversation by id, `name` or `#name`; SlackError(channel_not_found) otherwise."""
        if ref in self.channels:
            return self.channels[ref]
        name = (ref or "").lstrip("#")
        for channel in self.channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        raise SlackError("channel_not_found")

    def validate_channel_name(self, name: Optional[str], exclude: Optional[str] = None) -> str:
        """Slack's naming rules; names of archived channels stay taken."""
        if not name:
            raise SlackError("invalid_name_required")
        if len(name) > CHANNEL_NAME_MAX:
            raise SlackError("invalid_name_maxlength")
        if not _NAME_OK.match(name):
            raise SlackError("invalid_name_specials")
        if not name.strip("-_"):
            raise SlackError("invalid_name_punctuation")
        if any(c.name == name and c.id != exclude for c in self.channels.values() if not c.is_im):
            raise SlackError("name_taken")
        return name

    def add_channel(self, name: str, creator: str, is_private=False, members=(), channel_id=None,
                    is_general=False) -> Channel:
        with self.lock:
            self.validate_channel_name(name)
            channel_id = channel_id or self.ids.new("C")
            channel = Channel(channel_id, name, creator, is_private=is_private, is_general=is_general,
                              members=set(members))
            self.channels[channel_id] = channel
            return channel

    def open_im(self, user_id: str) -> Channel:
        """The bot's DM with a person, created on first use."""
        with self.lock:
            user = self.user(user_id)
            if user.id == self.bot_user_id:
                raise SlackError("cannot_dm_bot")
            for channel in self.channels.values():
                if channel.is_im and channel.im_user == user.id:
                    return channel
            channel = Channel(self.ids.new("D"), user.id, user.id, is_im=True, im_user=user.id,
                              members={user.id, self.bot_user_id})
            self.channels[channel.id] = channel
            return channel

    def conversation_for(self, ref: Optional[str]) -> Channel:
        """chat.postMessage's `channel`: a conversation id or name, or a user id (their DM)."""
        if ref and ref[0] in "UW" and ref in self.users:
            return self.open_im(ref)
        return self.channel(ref)

    # --- messages -----------------------------------------------------------------------------
    def add_message(self, channel: Channel, message: dict) -> dict:
        """Store a message: assign `ts`, keep thread bookkeeping on the parent."""
        with self.lock:
            message = dict(message)
            message.setdefault("type", "message")
            message["ts"] = ts = self.clock.next_ts()
            thread_ts = message.get("thread_ts")
            if thread_ts:
                parent = channel.messages.get(thread_ts)
                if parent is None:
                    raise SlackError("thread_not_found")
                message.setdefault("parent_user_id", parent.get("user"))
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if message.get("user") and message["user"] not in users:
                    users.append(message["user"])
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = ts
            channel.messages[ts] = message
            return message

    def message(self, channel: Channel, ts: Optional[str]) -> dict:
        message = channel.messages.get(ts or "")
        if message is None:
            raise SlackError("message_not_found")
        return message

    def permalink(self, channel: Channel, ts: str) -> str:
        link = f"https://{self.team['domain']}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        thread_ts = channel.messages.get(ts, {}).get("thread_ts")
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={channel.id}"
        return link

    def update_message(self, channel: Channel, ts: str, changes: dict, editor: str) -> tuple:
        """Apply `changes`; return (previous copy, updated message)."""
        with self.lock:
            message = self.message(channel, ts)
            previous = copy.deepcopy(message)
            message.update(changes)
            message["edited"] = {"user": editor, "ts": self.clock.next_ts()}
            return previous, message

    def delete_message(self, channel: Channel, ts: str) -> dict:
        with self.lock:
            message = self.message(channel, ts)
            del channel.messages[ts]
            channel.pins.pop(ts, None)
            return message

    # --- pins and reactions ---------------------------------------------------------------------
    def pin(self, channel: Channel, ts: str, user: str) -> dict:
        with self.lock:
            message = self.message(channel, ts)
            if ts in channel.pins:
                raise SlackError("already_pinned")
            channel.pins[ts] = {"created": int(time.time()), "created_by": user}
            message["pinned_to"] = [channel.id]
            return message

    def unpin(self, channel: Channel, ts: str) -> dict:
        with self.lock:
            message = self.message(channel, ts)
            if channel.pins.pop(ts, None) is None:
                raise SlackError("no_pin")
            message.pop("pinned_to", None)
            return message

    def pin_item(self, channel: Channel, ts: str) -> dict:
        """The `item` of pins.list and pin events."""
        info = channel.pins.get(ts, {"created": int(time.time()), "created_by": ""})
        message = dict(channel.messages[ts], permalink=self.permalink(channel, ts))
        return {"type": "message", "channel": channel.id, "created": info["created"],
                "created_by": info["created_by"], "message": message}

    def react(self, channel: Channel, ts: str, name: str, user: str, add: bool) -> dict:
        with self.lock:
            if not name or ":" in name or " " in name:
                raise SlackError("invalid_name")
            message = self.message(channel, ts)
            reactions = message.setdefault("reactions", [])
            entry = next((r for r in reactions if r["name"] == name), None)
            if add:
                if entry and user in entry["users"]:
                    raise SlackError("already_reacted")
                if entry is None:
                    entry = {"name": name, "users": [], "count": 0}
                    reactions.append(entry)
                entry["users"].append(user)
            else:
                if entry is None or user not in entry["users"]:
                    raise SlackError("no_reaction")
                entry["users"].remove(user)
                if not entry["users"]:
                    reactions.remove(entry)
            if entry in reactions:
                entry["count"] = len(entry["users"])
            if not reactions:
                message.pop("reactions")
            return message

    # --- triggers and views ---------------------------------------------------------------------
    def issue_trigger(self, user: str) -> str:
        with self.lock:
            trigger_id = f"{int(time.time() * 1000)}.{self.team['id'][1:]}.{secrets.token_hex(16)}"
            self.triggers[trigger_id] = Trigger(trigger_id, user, time.monotonic())
            return trigger_id

    def use_trigger(self, trigger_id: Optional[str]) -> Trigger:
        """Exchange a trigger_id once, within its time to live."""
        with self.lock:
            if not trigger_id:
                raise missing("trigger_id")
            trigger = self.triggers.get(trigger_id)
            if trigger is None:
                raise SlackError("invalid_trigger_id")
            if trigger.used:
                raise SlackError("exchanged_trigger_id")
            if time.monotonic() - trigger.issued_at > self.trigger_ttl:
                raise SlackError("expired_trigger_id")
            trigger.used = True
            return trigger

    def find_view(self, view_id: Optional[str] = None, external_id: Optional[str] = None) -> View:
        for view in self.views.values():
            if (view_id and view.id == view_id) or (
                    external_id and view.data.get("external_id") == external_id):
                return view
        raise SlackError("not_found")
