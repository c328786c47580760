"""What an operator's probes and dashboards read from the database: is it writable, how far behind are
the inbox and the outbox, how many incidents are open. No incident data beyond counts."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from peewee import fn

from . import storage
from .storage import Incident, InboxEntry, OutboxItem, SchemaVersion


class _RolledBack(Exception):
    pass


@dataclass(frozen=True)
class QueueState:
    pending: int
    oldest_age_seconds: float  # 0 when nothing is pending
    failed: int = 0
    overdue_seconds: float = 0.0  # outbox: how long its most overdue item has been due and not sent (0: none)


def database_writable(now: dt.datetime) -> None:
    """Raise when the database cannot take a write now (gone, read-only, locked for too long). The probe
    writes a row and rolls it back, so that nothing is left behind."""
    db = storage.database.obj
    if storage.is_sqlite(db) and db.database != ":memory:" and not Path(db.database).exists():
        db.close()  # an open connection would keep writing to a file that is no longer there
        raise OSError(f"the database file {Path(db.database).name} is missing")
    try:
        with storage.write():
            SchemaVersion.insert(version=-1, applied_at=now).execute()
            raise _RolledBack
    except _RolledBack:
        pass
    except Exception:
        if not db.in_transaction():
            db.close()  # reconnect next time: the server may be back
        raise


def outbox_state(now: dt.datetime) -> QueueState:
    """The waiting items, the age of the oldest, those given up, and how overdue the outbox is: an item is
    overdue once its next attempt time has passed while it is next in its incident's queue. An item
    waiting for its time (a long Retry-After, a backoff, a later start), and the items queued behind it,
    are not overdue: nothing is stuck."""
    rows = (OutboxItem.select(OutboxItem.status, fn.COUNT(OutboxItem.id), fn.MIN(OutboxItem.created_at))
            .where(OutboxItem.status.in_(["pending", "failed", "parked"])).group_by(OutboxItem.status).tuples())
    found = {status: (count, oldest) for status, count, oldest in rows}
    count, oldest = found.get("pending", (0, None))
    given_up = found.get("failed", (0, None))[0] + found.get("parked", (0, None))[0]
    overdue = None
    if count:
        earlier = OutboxItem.alias()
        ahead = (earlier.select(earlier.id).where(earlier.incident == OutboxItem.incident,
                                                  earlier.status == "pending", earlier.id < OutboxItem.id))
        overdue = (OutboxItem.select(fn.MIN(OutboxItem.next_at))
                   .where(OutboxItem.status == "pending", OutboxItem.next_at <= now, ~fn.EXISTS(ahead))
                   .scalar())
    return QueueState(count, _age(now, oldest), given_up, _age(now, overdue))


def inbox_state(now: dt.datetime, window_minutes: int = 60) -> QueueState:
    """Inputs recorded and not yet handled among those received in the last `window_minutes` (older ones
    are past replaying and stay as they are)."""
    since = now - dt.timedelta(minutes=window_minutes)
    count, oldest = (InboxEntry.select(fn.COUNT(InboxEntry.id), fn.MIN(InboxEntry.received_at))
                     .where(InboxEntry.processed_at.is_null(), InboxEntry.received_at >= since).tuples().get())
    return QueueState(count or 0, _age(now, oldest))


def open_incidents() -> dict[str | None, int]:
    """Open incidents (drills included) by severity key; None for those without one."""
    rows = (Incident.select(Incident.severity, fn.COUNT(Incident.id)).where(Incident.status == "open")
            .group_by(Incident.severity).tuples())
    return {severity: count for severity, count in rows}


def _age(now: dt.datetime, then) -> float:
    if then is None:
        return 0.0
    if isinstance(then, str):  # SQLite hands MIN() back as text
        then = dt.datetime.fromisoformat(then)
    return max(0.0, (now - then).total_seconds())
