"""The decorator registries of the Slack adapter, one per kind of Slack input: buttons by `action_id`
(buttons.py), modals by `callback_id` (modals.py), channel events by type (channel_events.py).

Each handler is declared once, where it is written, with its module's decorator; the dispatcher looks the
input up here. What nobody declared is logged and acked, and changes nothing.
"""
from __future__ import annotations

from typing import Generic, Hashable, Iterator, TypeVar

Route = TypeVar("Route")


class Registry(Generic[Route]):
    def __init__(self, what: str):
        self.what = what  # for messages: "button", "modal", "channel event"
        self._routes: dict[Hashable, Route] = {}

    def add(self, key: Hashable, route: Route) -> Route:
        if key in self._routes:
            raise ValueError(f"{self.what} {key!r} is registered twice")
        self._routes[key] = route
        return route

    def get(self, key: Hashable) -> Route | None:
        return self._routes.get(key)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._routes

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._routes)
