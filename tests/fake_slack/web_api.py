"""The Web API dispatcher: method registry, argument parsing, token and scope checks.

Method handlers live in api_*.py and register with `@method(...)`. A handler gets the `WebApi`
and a `Params` and returns the success body (without "ok"); it raises `SlackError` for Slack's
business errors. This module also holds the auth/users/team/bots/apps methods.
"""
from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .access import check_scopes, conversation_kinds
from .blocks import parse_json
from .spec import SPECS, check_call
from .workspace import SlackError, Workspace, missing

log = logging.getLogger(__name__)


@dataclass
class Method:
    handler: Callable
    tokens: tuple


HANDLERS: dict[str, Method] = {}


def method(name: str, tokens=("bot",)):
    """Register a Web API method; its arguments and scopes come from methods.json (spec.py)."""
    def register(fn):
        if name not in SPECS:
            raise KeyError(f"{name} is not in methods.json: add it to make_methods.py")
        HANDLERS[name] = Method(fn, tuple(tokens))
        return fn
    return register


class Params:
    """Arguments from the query string, a form or a JSON body (values may be str or native)."""

    def __init__(self, data: dict):
        self.data = data

    def get(self, name: str, default: Any = None) -> Any:
        value = self.data.get(name)
        return default if value is None or value == "" else value

    def require(self, name: str, error: Optional[str] = None) -> Any:
        value = self.get(name)
        if value is None:
            raise SlackError(error) if error else missing(name)
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def int(self, name: str, default: int) -> int:
        try:
            return int(self.get(name, default))
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments", response_metadata={
                "messages": [f"[ERROR] {name} must be an integer"]})

    def json(self, name: str) -> Any:
        return parse_json(self.get(name), name)

    def list(self, name: str) -> list:
        value = self.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        return [v.strip() for v in str(value).split(",") if v.strip()]


def paginate(items: list, p: Params, default_limit: int = 100) -> tuple:
    """(page, next_cursor) with opaque base64 cursors."""
    offset = 0
    cursor = p.get("cursor")
    if cursor:
        try:
            offset = int(base64.b64decode(cursor).decode().split(":", 1)[1])
        except (ValueError, IndexError):
            raise SlackError("invalid_cursor")
    limit = max(1, min(p.int("limit", default_limit) or default_limit, 1000))
    page = items[offset:offset + limit]
    more = offset + limit < len(items)
    next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
    return page, next_cursor


class WebApi:
    """Runs one Web API call against the fake's workspace."""

    def __init__(self, fake):
        self.fake = fake
        self.caller, self.caller_kind = fake.workspace.bot_user_id, "bot"  # who the current call acts as

    @property
    def ws(self) -> Workspace:
        return self.fake.workspace

    @property
    def bot(self) -> str:
        return self.ws.bot_user_id

    def emit(self, event: dict, channel=None) -> None:
        """Deliver an event caused by this call (if subscribed and visible to the bot)."""
        self.fake.emit(event, channel)

    def token_kind(self, token: Optional[str]) -> Optional[str]:
        if token == self.fake.bot_token:
            return "bot"
        if token == self.fake.app_token:
            return "app"
        if token in self.fake.user_tokens:
            return "user"
        return None

    def granted(self, kind: str, token: str) -> tuple:
        if kind == "user":
            return self.fake.user_tokens[token].scopes
        return self.fake.scopes if kind == "bot" else ("connections:write",)

    def call(self, name: str, params: dict, token: Optional[str], from_json: bool = False) -> dict:
        """The JSON body for a call (success or Slack error). `from_json`: the arguments came in a
        JSON body (server.py has already dropped them where the method does not read JSON)."""
        try:
            handler = HANDLERS.get(name)
            if handler is None:
                raise SlackError("unknown_method")
            if not token:
                raise SlackError("not_authed")
            kind = self.token_kind(token)
            if kind is None:
                raise SlackError("invalid_auth")
            if kind not in handler.tokens:
                raise SlackError("not_allowed_token_type")
            spec = SPECS[name]
            check_call(spec, params, from_json)
            with self.ws.lock:
                check_scopes(spec, kind, self.granted(kind, token),
                             conversation_kinds(self.ws, name, params))
                self.caller = self.fake.user_tokens[token].user if kind == "user" else self.bot
                self.caller_kind = kind
                return {"ok": True, **handler.handler(self, Params(params))}
        except SlackError as exc:
            return exc.body()
        except Exception as exc:  # a bug in the fake: say so loudly, answer like Slack would
            log.exception("fake Slack failed in %s", name)
            self.fake.internal_errors.append(f"{name}: {exc!r}")
            return {"ok": False, "error": "fatal_error", "detail": repr(exc)}

    # helpers shared by handlers -----------------------------------------------------------------
    def can_see(self, channel) -> bool:
        """Private channels and DMs are visible to the bot only when it is a member."""
        return not (channel.is_private or channel.is_im) or self.bot in channel.members

    def visible_channel(self, ref) -> Any:
        channel = self.ws.channel(ref)
        if not self.can_see(channel):
            raise SlackError("channel_not_found")
        return channel

    def member_channel(self, ref, allow_archived=False) -> Any:
        """A channel the bot may act in: visible, not archived, bot is a member."""
        channel = self.visible_channel(ref)
        if channel.is_archived and not allow_archived:
            raise SlackError("is_archived")
        if self.bot not in channel.members:
            raise SlackError("not_in_channel")
        return channel


# --- auth, apps, users, team, bots ---------------------------------------------------------------
@method("auth.test", tokens=("bot", "app", "user"))
def auth_test(api: WebApi, p: Params) -> dict:
    ws = api.ws
    body = {"url": f"https://{ws.team['domain']}.slack.com/", "team": ws.team["name"],
            "user": ws.bot_user.name, "team_id": ws.team["id"], "user_id": ws.bot_user_id,
            "bot_id": ws.bot_user.bot_id, "is_enterprise_install": False}
    if api.caller_kind == "user":
        person = ws.user(api.caller)
        body.update(user=person.name, user_id=person.id)
        body.pop("bot_id")
    return body


@method("apps.connections.open", tokens=("app",))
def apps_connections_open(api: WebApi, p: Params) -> dict:
    return {"url": api.fake.issue_socket_url()}


@method("users.info")
def users_info(api: WebApi, p: Params) -> dict:
    user = api.ws.user(p.require("user", "user_not_found"))
    return {"user": user.to_api(api.ws.team["id"])}


@method("users.list")
def users_list(api: WebApi, p: Params) -> dict:
    users = [u.to_api(api.ws.team["id"]) for u in api.ws.users.values()]
    page, cursor = paginate(users, p, 200)
    return {"members": page, "cache_ts": 0, "response_metadata": {"next_cursor": cursor}}


@method("users.lookupByEmail")
def users_lookup_by_email(api: WebApi, p: Params) -> dict:
    email = p.require("email")
    for user in api.ws.users.values():
        if user.email and user.email.lower() == email.lower():
            return {"user": user.to_api(api.ws.team["id"])}
    raise SlackError("users_not_found")


@method("team.info")
def team_info(api: WebApi, p: Params) -> dict:
    team = p.get("team")
    if team and team != api.ws.team["id"]:
        raise SlackError("team_not_found")
    return {"team": dict(api.ws.team)}


@method("bots.info")
def bots_info(api: WebApi, p: Params) -> dict:
    bot = api.ws.bots.get(p.require("bot", "bot_not_found"))
    if bot is None:
        raise SlackError("bot_not_found")
    return {"bot": dict(bot)}


@method("usergroups.users.list")
def usergroups_users_list(api: WebApi, p: Params) -> dict:
    group = api.ws.usergroups.get(p.get("usergroup") or "")
    if group is None or (group["date_delete"] and not p.bool("include_disabled")):
        raise SlackError("no_such_subteam")
    return {"users": list(group["users"])}


# Importing the handler modules registers their methods.
from . import api_bookmarks, api_chat, api_conversations, api_views  # noqa: E402,F401
