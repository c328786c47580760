"""The outbox: what to tell the chat platform, recorded with the change, sent later exactly once.

Items are written inside the transaction that makes the change (or on their own for jobs such as
creating a channel), claimed by a worker under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
write lock on SQLite), and sent step by step. Per incident they go out in order: an item is only
claimed when no earlier item of its incident is still pending. A step that started and may have
reached the platform is marked, so a restart can check before sending it again.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
from dataclasses import dataclass

from peewee import JOIN

from . import storage
from .storage import OutboxItem

_origin: contextvars.ContextVar[str | None] = contextvars.ContextVar("opg_origin", default=None)
_input: contextvars.ContextVar[list | None] = contextvars.ContextVar("opg_input", default=None)  # [key, marked]


@contextlib.contextmanager
def origin(channel: str | None, input_key: str | None = None):
    """The channel a command came from (what it causes is not echoed there), and the inbox key of the
    input being handled (marked processed in the same transaction as the change it makes)."""
    tokens = _origin.set(channel), _input.set([input_key, False] if input_key else None)
    try:
        yield
    finally:
        _origin.reset(tokens[0])
        _input.reset(tokens[1])


def current_input() -> str | None:
    state = _input.get()
    return state[0] if state else None


def input_to_mark() -> str | None:
    """The inbox key of the input being handled, the first time it is asked for (its first change marks it
    handled, in that change's transaction); None afterwards, or when there is none."""
    state = _input.get()
    if not state or state[1]:
        return None
    state[1] = True
    return state[0]


@dataclass(frozen=True)
class Item:
    id: int
    kind: str
    number: int | None
    payload: dict
    step: int
    inflight_step: int | None
    attempts: int
    created_at: dt.datetime | None = None

    @property
    def may_have_sent(self) -> bool:
        """True when the current step started before and its result is unknown."""
        return self.inflight_step == self.step


def enqueue(kind: str, incident=None, payload: dict | None = None, *, now: dt.datetime,
            coalesce_key: str | None = None, not_before: dt.datetime | None = None,
            gather: str | None = None) -> int:
    """Add an item; call inside the transaction of the change. A pending item with the same
    coalesce_key absorbs this one (it renders the latest state when it is sent). With `gather` (a key of
    the payload holding a list), what is absorbed is kept: this payload's list joins the pending item's."""
    if coalesce_key:  # join a pending item nobody is sending yet (one being sent may miss this change)
        # Not one that started sending: an expired lease does not mean its worker is gone (a slow call outlives
        # it), and what it renders is older than this change. Locked, so that it cannot start (and render)
        # before this transaction commits.
        existing = storage.first(OutboxItem.select().where(
            OutboxItem.coalesce_key == coalesce_key, OutboxItem.status == "pending",
            OutboxItem.step == 0, OutboxItem.inflight_step.is_null(),
            (OutboxItem.lease_until.is_null()) | (OutboxItem.lease_until < now)), lock=True)
        if existing is not None:
            if gather:
                kept = json.loads(existing.payload or "{}")
                kept[gather] = list(kept.get(gather) or []) + list((payload or {}).get(gather) or [])
                (OutboxItem.update(payload=json.dumps(kept, default=str))
                 .where(OutboxItem.id == existing.id).execute())
            return existing.id
    body = dict(payload or {})
    body.setdefault("origin", _origin.get())
    item = OutboxItem.create(incident=incident, kind=kind, payload=json.dumps(body, default=str),
                             coalesce_key=coalesce_key, next_at=max(now, not_before or now), created_at=now)
    return item.id


def last_done(coalesce_key: str) -> dt.datetime | None:
    row = (OutboxItem.select(OutboxItem.done_at)
           .where(OutboxItem.coalesce_key == coalesce_key, OutboxItem.status == "done")
           .order_by(OutboxItem.id.desc()).first())
    return row.done_at if row else None


def claim(owner: str, now: dt.datetime, *, limit: int = 10, lease_seconds: float = 30) -> list[Item]:
    """Take up to `limit` due items (the head of each incident's queue) under a lease."""
    due = OutboxItem.select(OutboxItem.id).where(OutboxItem.status == "pending", OutboxItem.next_at <= now)
    if not due.limit(1).exists():
        return []  # idle: a read, without taking the write lock
    earlier = OutboxItem.alias()
    blocked = (earlier.select(earlier.id)
               .where(earlier.incident == OutboxItem.incident, earlier.status == "pending",
                      earlier.id < OutboxItem.id))
    with storage.write():
        query = (OutboxItem.select(OutboxItem, storage.Incident.number.alias("incident_number"))
                 .join(storage.Incident, JOIN.LEFT_OUTER)
                 .where(OutboxItem.status == "pending", OutboxItem.next_at <= now,
                        (OutboxItem.lease_until.is_null()) | (OutboxItem.lease_until < now),
                        ~fn_exists(blocked))
                 .order_by(OutboxItem.next_at, OutboxItem.id).limit(limit).objects())
        if not storage.is_sqlite(storage.database.obj):
            query = query.for_update(of=OutboxItem, skip_locked=True)
        rows = list(query)
        if not rows:
            return []
        until = now + dt.timedelta(seconds=lease_seconds)
        (OutboxItem.update(lease_owner=owner, lease_until=until, attempts=OutboxItem.attempts + 1)
         .where(OutboxItem.id.in_([r.id for r in rows])).execute())
    return [Item(r.id, r.kind, r.incident_number, json.loads(r.payload or "{}"),
                 r.step, r.inflight_step, r.attempts + 1, r.created_at) for r in rows]


def fn_exists(query):
    from peewee import fn
    return fn.EXISTS(query)


def hold(item_id: int, owner: str, now: dt.datetime, lease_seconds: float, step: int) -> bool:
    """Before a step: extend this worker's lease and mark the step as started. False when the lease was
    lost (it ran out and another worker took the item): the caller must stop."""
    return (OutboxItem.update(lease_until=now + dt.timedelta(seconds=lease_seconds), inflight_step=step)
            .where(OutboxItem.id == item_id, OutboxItem.lease_owner == owner, OutboxItem.status == "pending")
            .execute()) == 1


def started(item_id: int, step: int) -> None:
    OutboxItem.update(inflight_step=step).where(OutboxItem.id == item_id).execute()


def advanced(item_id: int, step: int, owner: str | None = None) -> bool:
    query = OutboxItem.update(step=step, inflight_step=None).where(OutboxItem.id == item_id)
    if owner is not None:
        query = query.where(OutboxItem.lease_owner == owner)
    return query.execute() == 1


def done(item_id: int, now: dt.datetime, owner: str | None = None) -> None:
    query = (OutboxItem.update(status="done", done_at=now, lease_owner=None, lease_until=None, inflight_step=None)
             .where(OutboxItem.id == item_id))
    if owner is not None:
        query = query.where(OutboxItem.lease_owner == owner)
    query.execute()


def postpone(item_id: int, until: dt.datetime, owner: str) -> None:
    """Not yet (and not an attempt): give the item back, due at `until`."""
    (OutboxItem.update(next_at=until, lease_owner=None, lease_until=None, attempts=OutboxItem.attempts - 1)
     .where(OutboxItem.id == item_id, OutboxItem.lease_owner == owner).execute())


def retry(item_id: int, now: dt.datetime, delay_seconds: float, error: str, max_attempts: int = 12,
          owner: str | None = None) -> bool:
    """Try again after `delay_seconds`; False once `max_attempts` is reached (the caller parks it)."""
    item = OutboxItem.get_by_id(item_id)
    if owner is not None and item.lease_owner != owner:
        return True  # another worker has it now
    if item.attempts >= max_attempts:
        return False
    (OutboxItem.update(next_at=now + dt.timedelta(seconds=delay_seconds), last_error=error[:2000],
                       lease_owner=None, lease_until=None)
     .where(OutboxItem.id == item_id).execute())
    return True


PARKED = "parked"


def park(item_id: int, now: dt.datetime, error: str, *, owner: str | None = None,
         tell: dict | None = None) -> bool:
    """Give an item up for good (Slack will not change its mind, or it was tried long enough): it no longer
    holds back its incident's later items, and it stays, with its error, for a person to see. `tell`: the
    payload of a "tell" job (user, channel, text) queued in the same transaction, so that someone knows.
    False when this worker no longer holds the item."""
    with storage.write():
        query = (OutboxItem.update(status=PARKED, last_error=error[:2000], lease_owner=None, lease_until=None,
                                   inflight_step=None, done_at=now)
                 .where(OutboxItem.id == item_id, OutboxItem.status == "pending"))
        if owner is not None:
            query = query.where(OutboxItem.lease_owner == owner)
        if not query.execute():
            return False
        if tell is not None:
            row = OutboxItem.get_by_id(item_id)
            enqueue("tell", row.incident_id, dict(tell, about_parked=item_id, origin=None), now=now)
    return True


def prune(before: dt.datetime) -> int:
    """Forget items sent (or given up) before `before`; returns how many."""
    return OutboxItem.delete().where(OutboxItem.status.in_(["done", "failed", PARKED]),
                                     OutboxItem.created_at < before).execute()


def pending(number: int | None = None) -> int:
    query = OutboxItem.select().where(OutboxItem.status == "pending")
    if number is not None:
        query = query.join(storage.Incident).where(storage.Incident.number == number)
    return query.count()
