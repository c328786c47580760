"""Who may call what: token types, and the scopes the manifest grants, per method and per conversation type.

A method's scope list (docs.slack.dev, in methods.json) holds alternatives; the ones about a conversation
type (channels:* public, groups:* private, im:*, mpim:*) count only for that type. So with the manifest's
`channels:history` but no `mpim:history`, conversations.history works in public channels and answers
`missing_scope` (with `needed` and `provided`) in a group DM, as Slack does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .manifest import needed_scopes
from .spec import MethodSpec
from .workspace import SlackError

LIST_TYPES = {"public_channel": "public", "private_channel": "private", "im": "im", "mpim": "mpim"}


@dataclass
class UserToken:
    """A user token (xoxp-) of a person, with the user scopes it was granted."""

    token: str
    user: str
    scopes: tuple


def kind_of(channel) -> str:
    if channel.is_im:
        return "im"
    return "private" if channel.is_private else "public"


def _truthy(value) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def conversation_kinds(ws, method: str, params: dict) -> Optional[set]:
    """The conversation types a call is about, or None when it is about none (or an unknown one)."""
    if method == "conversations.create":
        return {"private" if _truthy(params.get("is_private")) else "public"}
    if method == "conversations.list":
        types = [t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()]
        return {LIST_TYPES[t] for t in types if t in LIST_TYPES} or None
    if method == "conversations.open" and not params.get("channel"):
        users = [u for u in str(params.get("users") or "").split(",") if u.strip()]
        return {"mpim" if len(users) > 1 else "im"} if users else None
    ref = params.get("channel") or params.get("channel_id")
    if not isinstance(ref, str) or not ref:
        return None
    if ref[0] in "UW" and ref in ws.users:
        return {"im"}  # chat.postMessage to a user: their DM with the app
    try:
        return {kind_of(ws.channel(ref))}
    except SlackError:
        return None


def check_scopes(spec: MethodSpec, token_kind: str, granted: tuple, kinds: Optional[set]) -> None:
    """`missing_scope` unless `granted` holds one of the method's scopes for each conversation type."""
    listed = spec.bot_scopes if token_kind == "bot" else spec.user_scopes if token_kind == "user" else ()
    if not listed:
        return
    groups = [needed_scopes(listed, k) for k in sorted(kinds)] if kinds else [listed]
    for group in groups:
        if group and not set(group) & set(granted):
            raise SlackError("missing_scope", needed=",".join(group), provided=",".join(granted))
