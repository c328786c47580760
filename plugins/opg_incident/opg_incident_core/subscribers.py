"""Who hears what happened. The core records a change and what happened (its Happened facts); adapters that
subscribe are handed them inside the change's own transaction, so what a subscriber queues in the outbox
commits with the change, or not at all. The core decides nothing about what a chat platform is told: a
subscriber does."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Iterable, Protocol

from . import outbox
from .views import Happened, IncidentView


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One change as its subscribers see it: the incident as it is now, what happened, when; `queue` adds an
    outbox item for the incident in the change's transaction."""

    incident: IncidentView
    happened: tuple[Happened, ...]
    now: dt.datetime
    _row: Any = dataclasses.field(repr=False, compare=False, default=None)  # storage.Incident, for `queue`

    def queue(self, kind: str, payload: dict | None = None, *, coalesce_key: str | None = None) -> int:
        """An outbox item of `kind` for this incident, sent after the change commits (see outbox.enqueue)."""
        return outbox.enqueue(kind, self._row, payload, now=self.now, coalesce_key=coalesce_key)


class Subscriber(Protocol):
    def __call__(self, recorded: Recorded) -> None: ...


class Subscribers:
    """The subscribers adapters registered, each with the kinds of Happened it hears (None: every kind)."""

    def __init__(self) -> None:
        self._subscribed: list[tuple[Subscriber, frozenset[str] | None]] = []

    def subscribe(self, subscriber: Subscriber, kinds: Iterable[str] | None = None) -> None:
        self._subscribed.append((subscriber, frozenset(kinds) if kinds is not None else None))

    def hears(self, kind: str) -> bool:
        """Some adapter acts on `kind` (e.g. "page": something here can send a page)."""
        return any(kinds is None or kind in kinds for _, kinds in self._subscribed)

    def publish(self, recorded: Recorded) -> None:
        """Inside the change's transaction: an exception here rolls the change back."""
        for subscriber, kinds in self._subscribed:
            if kinds is None or any(h.kind in kinds for h in recorded.happened):
                subscriber(recorded)

    def __bool__(self) -> bool:
        return bool(self._subscribed)
