"""Plain-text helpers shared by every adapter: mentions, user ids, safe echo of user text, durations."""
from __future__ import annotations

import datetime as dt
import re

# Slack's ids, in one place: a person (U…, W… on Enterprise Grid) and a user group (S…).
USER_ID = r"[UW][A-Z0-9]{2,}"
GROUP_ID = r"S[A-Z0-9]{2,}"
SLACK_USER = re.compile(rf"^{USER_ID}$")
USER_REF = re.compile(rf"^<@({USER_ID})(?:\|[^>]*)?>$|^@([\w.\-]+)$")
# A person or a user group as Slack writes them in a message, or a plain @name.
PERSON_OR_GROUP = re.compile(rf"<@({USER_ID})(?:\|[^>]*)?>|<!subteam\^({GROUP_ID})(?:\|[^>]*)?>|(?<![\w<])@([\w.\-]+)")
ZWSP = "\u200b"
MAX_TEXT = 40_000
BROADCASTS = ("channel", "here", "everyone")


def mention(user: str | None) -> str:
    """How a stored user id is written in chat: <@U123> for Slack ids, the id itself otherwise."""
    if not user:
        return "nobody"
    return f"<@{user}>" if SLACK_USER.match(user) else defuse(user)


def parse_user(token: str, sender: str) -> str | None:
    """A user id from `me`, a Slack mention `<@U123>` or a console `@name`; None when it is neither."""
    token = token.strip()
    if token.lower() == "me":
        return sender
    m = USER_REF.match(token)
    if not m or (m.group(2) or "").lower().startswith(BROADCASTS):
        return None  # @here, @channel., @everyone_ are not people (and must not be echoed)
    return m.group(1) or "@" + m.group(2)


def unknown_person(who: str) -> str:
    """The refusal of a plain `@name` where people are named by id (Slack): a name Slack did not recognise."""
    return (f"I don't know who {defuse(who.strip())} is: Slack did not turn it into a mention. Pick the person from "
            "the list Slack shows as you type @ (the name becomes a link), then send it again. Nothing changed.")


def defuse(text: str) -> str:
    """User text to echo in chat without pinging anyone or forming links: <!channel>, @here, <@U..>."""
    text = re.sub(r"<([!@#])", lambda m: "<" + ZWSP + m.group(1), text)
    return re.sub(r"(?<![A-Za-z0-9])@(channel|here|everyone)", "@" + ZWSP + r"\1", text, flags=re.IGNORECASE)


def duration(delta: dt.timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    parts.append(f"{mins} min")
    return " ".join(parts)


def clean(value: str | None) -> str:
    """User text is kept whole (newlines included), only trimmed at the ends and capped."""
    return (value or "").strip()[:MAX_TEXT]
