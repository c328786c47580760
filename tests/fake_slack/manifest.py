"""What the app's manifest (slack-app-manifest.yml) grants: bot scopes, event subscriptions, the App
Home's Messages tab. The fake grants exactly that, like a workspace that installed the app from it.

Event subscriptions use the manifest's names: `message.channels` / `message.groups` / `message.im` /
`message.mpim` for messages by conversation type (api.slack.com/events/message.channels ...), the event
type itself for the others (`pin_added`, `member_joined_channel`, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import yaml

MANIFEST_FILE = Path(__file__).resolve().parents[2] / "slack-app-manifest.yml"
MESSAGE_SUBSCRIPTIONS = {"channel": "message.channels", "group": "message.groups", "im": "message.im",
                         "mpim": "message.mpim"}
SCOPE_FAMILY = {"channels": "public", "groups": "private", "im": "im", "mpim": "mpim"}


@dataclass
class Manifest:
    scopes: tuple
    events: frozenset
    messages_tab: bool = False          # features.app_home.messages_tab_enabled
    messages_tab_read_only: bool = True  # ... messages_tab_read_only_enabled (people cannot write)
    commands: tuple = ()
    escaped_commands: frozenset = frozenset()  # slash commands with should_escape: true
    source: Optional[str] = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str = MANIFEST_FILE) -> "Manifest":
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        features = data.get("features") or {}
        home = features.get("app_home") or {}
        settings = data.get("settings") or {}
        events = (settings.get("event_subscriptions") or {}).get("bot_events") or []
        return cls(scopes=tuple((data.get("oauth_config") or {}).get("scopes", {}).get("bot") or ()),
                   events=frozenset(events), messages_tab=bool(home.get("messages_tab_enabled")),
                   messages_tab_read_only=bool(home.get("messages_tab_read_only_enabled", not home)),
                   commands=tuple(c["command"] for c in features.get("slash_commands") or ()),
                   escaped_commands=frozenset(c["command"] for c in features.get("slash_commands") or ()
                                              if c.get("should_escape")),
                   source=str(path))

    @classmethod
    def granting(cls, scopes: Iterable[str], events: Iterable[str], messages_tab: bool = True) -> "Manifest":
        """A manifest made up by a test."""
        return cls(tuple(scopes), frozenset(events), messages_tab, not messages_tab)


def subscription_for(event: dict, channel_type: Optional[str]) -> str:
    """The manifest's name for the subscription that delivers `event`."""
    if event.get("type") == "message":
        return MESSAGE_SUBSCRIPTIONS.get(channel_type or event.get("channel_type") or "channel",
                                         "message.channels")
    return event["type"]


def subscribed(subscriptions: Iterable[str], event: dict, channel_type: Optional[str] = None) -> bool:
    subs = set(subscriptions)
    if "message" in subs and event.get("type") == "message":  # shorthand: every message.* subscription
        return True
    return subscription_for(event, channel_type) in subs


def scope_family(scope: str) -> Optional[str]:
    """The conversation type a scope is about (channels: public ...), None for the others."""
    return SCOPE_FAMILY.get(scope.split(":", 1)[0])


def needed_scopes(scopes: tuple, kind: Optional[str]) -> tuple:
    """The scopes of a method's list (any one is enough) that serve a conversation of `kind`."""
    if kind is None:
        return scopes
    return tuple(s for s in scopes if scope_family(s) in (None, kind))
