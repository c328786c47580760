"""Keyword nudges: a helpful note when a keyword (e.g. "runbook") is said in an incident's channel."""
from __future__ import annotations


def nudge(service, effects, event: dict, text: str) -> None:
    """Said by a person (not an edit, a join or a bot) in a channel: the notes its keywords call for, posted
    by the outbox."""
    if not event.get("channel") or event.get("subtype") or event.get("bot_id"):
        return
    for note in service.nudges(event["channel"], text):
        effects.job("post", None, {"channel": event["channel"], "text": note})
