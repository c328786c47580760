"""Read-only views of the fake's state for assertions (copies, safe to keep and compare)."""
from __future__ import annotations

import copy
from typing import Callable, Iterator, Optional

from .workspace import Channel, SlackError


class ChannelIndex:
    """`fake.channels["incident-1"]`, `fake.channels["C0F..."]`, `"name" in fake.channels`."""

    def __init__(self, workspace):
        self._ws = workspace

    def __getitem__(self, ref: str) -> Channel:
        try:
            return self._ws.channel(ref)
        except SlackError:
            raise KeyError(ref) from None

    def __contains__(self, ref: str) -> bool:
        try:
            self._ws.channel(ref)
            return True
        except SlackError:
            return False

    def __iter__(self) -> Iterator[Channel]:
        with self._ws.lock:
            return iter([c for c in self._ws.channels.values() if not c.is_im])

    def __len__(self) -> int:
        return len(list(iter(self)))

    def names(self) -> list:
        return [c.name for c in self]


class Inspection:
    """Mixin for FakeSlack: state, calls and deliveries for assertions."""

    @property
    def channels(self) -> ChannelIndex:
        return ChannelIndex(self.workspace)

    def channel(self, ref: str) -> Channel:
        """A channel by id or name (KeyError when missing)."""
        return self.channels[ref]

    def messages(self, channel: str, thread_ts: Optional[str] = None,
                 include_replies: bool = True) -> list:
        """Messages oldest first, each with "channel"; a thread when `thread_ts` is given."""
        with self.workspace.lock:
            conv = self.channel(channel)
            result = []
            for message in conv.messages.values():
                in_thread = message.get("thread_ts") not in (None, message["ts"])
                if thread_ts is not None and thread_ts not in (message["ts"], message.get("thread_ts")):
                    continue
                if thread_ts is None and in_thread and not include_replies:
                    continue
                result.append(dict(copy.deepcopy(message), channel=conv.id))
            return result

    def bot_messages(self, channel: str, thread_ts: Optional[str] = None) -> list:
        """Messages the app posted (chat.postMessage / response_url in_channel)."""
        bot = self.workspace.bot_user_id
        return [m for m in self.messages(channel, thread_ts) if m.get("user") == bot
                and m.get("subtype") in (None, "thread_broadcast", "file_share")]

    def message(self, channel: str, ts: str) -> dict:
        with self.workspace.lock:
            conv = self.channel(channel)
            return dict(copy.deepcopy(self.workspace.message(conv, ts)), channel=conv.id)

    def pins(self, channel: str) -> list:
        """Pinned messages, in pin order."""
        with self.workspace.lock:
            conv = self.channel(channel)
            return [dict(copy.deepcopy(conv.messages[ts]), channel=conv.id) for ts in conv.pins]

    def topic(self, channel: str) -> str:
        return self.channel(channel).topic["value"]

    def purpose(self, channel: str) -> str:
        return self.channel(channel).purpose["value"]

    def members(self, channel: str) -> set:
        return set(self.channel(channel).members)

    @property
    def views(self) -> dict:
        """Open views by id (the view objects as the app last set them)."""
        with self.workspace.lock:
            return {v.id: copy.deepcopy(v.data) for v in self.workspace.views.values() if v.open}

    def view(self, view_id: str) -> dict:
        """Any view by id, open or closed, with "open" and "errors" (from response_action)."""
        with self.workspace.lock:
            view = self.workspace.views[view_id]
            return dict(copy.deepcopy(view.data), open=view.open, errors=dict(view.errors),
                        user=view.user)

    @property
    def ephemeral(self) -> list:
        """Ephemeral messages (chat.postEphemeral and response_url) with channel and user."""
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.ephemeral)

    def ephemeral_for(self, user: str) -> list:
        user_id = self._user(user).id
        return [m for m in self.ephemeral if m["user"] == user_id]

    @property
    def calls(self) -> list:
        """Every Web API call (method, params, time, status, response), oldest first."""
        return self.calls_log.all()

    def calls_of(self, method: str, **match) -> list:
        """Calls of `method` whose params contain `match` (values compared as given)."""
        return [c for c in self.calls if c.method == method
                and all(c.params.get(k) == v for k, v in match.items())]

    def reset_calls(self) -> None:
        self.calls_log.clear()

    def deliveries(self, kind: Optional[str] = None, event_type: Optional[str] = None,
                   where: Optional[Callable] = None) -> list:
        """Deliveries (envelopes / HTTP requests) by envelope type, inner event type or predicate."""
        result = []
        for delivery in self.log.all():
            event = delivery.payload.get("event", {}) if delivery.type == "events_api" else {}
            if kind and delivery.type != kind:
                continue
            if event_type and event.get("type") != event_type:
                continue
            if where and not where(delivery):
                continue
            result.append(delivery)
        return result

    def delivery(self, envelope_id: str):
        return self.log.get(envelope_id)

    @property
    def acks(self) -> list:
        """Every ack received, in delivery order."""
        return [ack for delivery in self.log.all() for ack in delivery.acks]

    @property
    def connections(self) -> list:
        """Socket Mode connections ever opened (see socket_mode.Connection)."""
        return list(self.socket.connections)

    @property
    def open_connections(self) -> list:
        return self.socket.open_connections()
