"""What happens in an incident's channel that errbot does not route (the OPGSlack backend passes these on:
its ROUTED_EVENTS and ROUTED_SUBTYPES), each handled where it is declared: `@slack_event(type)` or
`@slack_event(type, subtype)`. The timeline follows pins, unpins, edits and deletions of pinned messages;
the record follows the channel's renames and archiving. An event for no incident changes nothing; an event
nobody declared is logged and changes nothing.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from opg_incident_core import IncidentError

from .payloads import as_dict, as_list, as_text
from .registry import Registry

if TYPE_CHECKING:
    from .interactions import SlackInteractions

log = logging.getLogger(__name__)

# (type, subtype or None) -> handler(interactions, event); a handler declared without a subtype takes the
# events of that type whose subtype has no handler of its own.
CHANNEL_EVENTS: Registry[Callable[[SlackInteractions, dict], None]] = Registry("channel event")


def slack_event(kind: str, subtype: str | None = None):
    """Declare the handler `(interactions, event)` of the Slack events of type `kind` (and `subtype`)."""
    def register(fn):
        CHANNEL_EVENTS.add((kind, subtype), fn)
        return fn
    return register


def handle_event(interactions: SlackInteractions, event: dict) -> None:
    if not isinstance(event, dict):
        return
    kind, subtype = as_text(event.get("type")), as_text(event.get("subtype")) or None
    handler = CHANNEL_EVENTS.get((kind, subtype)) or CHANNEL_EVENTS.get((kind, None))
    if handler is None:
        log.info("Ignoring a Slack event nobody handles: %r (%r)", kind[:100], (subtype or "")[:100])
        return
    try:
        handler(interactions, event)
    except IncidentError as exc:
        log.debug("Event %s not for an incident: %s", kind, exc)


# -- pins: the timeline -----------------------------------------------------------------------------
@slack_event("pin_added")
def pin_added(interactions: SlackInteractions, event: dict) -> None:
    service, slack = interactions.service, interactions.slack
    item = as_dict(event.get("item"))
    channel = as_text(event.get("channel_id")) or as_text(item.get("channel"))
    message = as_dict(item.get("message"))
    ts = as_text(message.get("ts"))
    if not ts:
        return
    # Slack is asked for what the event lacks only in an incident's channel. With nothing to ask (Slack sends the
    # message and its link), record_pin finds the incident itself, and says NotFound in another channel.
    complete = isinstance(message.get("text"), str) and bool(as_text(message.get("permalink")))
    if not complete and not service.has_channel(channel):
        return
    if not isinstance(message.get("text"), str):
        message = slack.message(channel, ts) or message
    files = [{"name": as_text(f.get("name")) or as_text(f.get("title")) or "file",
              "url": as_text(f.get("permalink")) or as_text(f.get("url_private"))}
             for f in as_list(message.get("files")) if isinstance(f, dict)]
    permalink = as_text(message.get("permalink")) or slack.permalink(channel, ts)
    author = as_text(message.get("user")) or as_text(message.get("bot_id"))
    edited_ts = as_text(as_dict(message.get("edited")).get("ts")) or None  # the pinned text's edit, if any
    service.record_pin(channel, ts, author, as_text(message.get("text")), as_text(event.get("user")),
                       permalink=permalink, thread_ts=as_text(message.get("thread_ts")) or None,
                       files=files, event_ts=_event_ts(event), edited_ts=edited_ts)


@slack_event("pin_removed")
def pin_removed(interactions: SlackInteractions, event: dict) -> None:
    pinned = as_dict(as_dict(event.get("item")).get("message"))
    interactions.service.remove_pin(as_text(event.get("channel_id")), as_text(pinned.get("ts")),
                                    as_text(event.get("user")), event_ts=_event_ts(event))


@slack_event("message", "message_changed")
def message_edited(interactions: SlackInteractions, event: dict) -> None:
    """Ordered by the edit's own time (message.edited.ts; the event's when Slack sends none)."""
    message = as_dict(event.get("message"))
    channel, edited_ts = as_text(event.get("channel")), as_text(as_dict(message.get("edited")).get("ts"))
    interactions.service.edit_pinned_message(channel, as_text(message.get("ts")), as_text(message.get("text")),
                                             as_text(message.get("user")), edited_ts=edited_ts or _event_ts(event),
                                             pinned=_pinned_in(message, channel))


@slack_event("message", "message_deleted")
def message_deleted(interactions: SlackInteractions, event: dict) -> None:
    """Like an unpin at the deletion's event_ts: a pin handled later (older) does not bring it back."""
    channel = as_text(event.get("channel"))
    interactions.service.remove_pin(channel, as_text(event.get("deleted_ts")), "", event_ts=_event_ts(event),
                                    pinned=_pinned_in(as_dict(event.get("previous_message")), channel))


# -- the channel itself: the record ------------------------------------------------------------------
@slack_event("channel_rename")
def channel_renamed(interactions: SlackInteractions, event: dict) -> None:
    channel = as_dict(event.get("channel"))
    interactions.service.rename_channel(as_text(channel.get("id")), as_text(channel.get("name")),
                                        event_ts=_event_ts(event))


@slack_event("channel_archive")
@slack_event("channel_unarchive")
def channel_archived_or_unarchived(interactions: SlackInteractions, event: dict) -> None:
    """By a person too: the posts that follow are the effects'. Each is recorded with its event_ts, even when
    it changes nothing, so that an older one handled later (archive after unarchive) changes nothing either."""
    archived = event.get("type") == "channel_archive"
    service, event_ts = interactions.service, _event_ts(event)
    inc = service.for_channel(as_text(event.get("channel")))
    if inc is not None and (inc.channel_archived != archived or event_ts):
        service.mark_channel_archived(inc.number, archived, event_ts=event_ts)


def _pinned_in(message: dict, channel: str) -> bool:
    """Slack's word (the message's pinned_to) that a message is pinned in `channel`: only then is an edit or a
    deletion that may have overtaken its pin remembered for it."""
    return channel in [as_text(c) for c in as_list(message.get("pinned_to"))]


def _event_ts(event: dict) -> str | None:
    """Slack's event_ts (or the event's ts): the order events about one message or channel are applied in."""
    return as_text(event.get("event_ts")) or as_text(event.get("ts")) or None
