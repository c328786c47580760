"""Read-only queries over many incidents, for indexes and statistics (the living document's index,
`/stats`). Platform-free like the rest of the core; they return views, never rows.

Index-friendly: every page is ordered by the unique `number` index and cut with LIMIT/OFFSET, counts
use the `status` index, and statistics select only the columns they need over a `declared_at` range
(indexed).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from peewee import SQL, fn

from .errors import InvalidInput
from .storage import Incident, RoleAssignment
from .views import IncidentView, aware

STATUSES = ("all", "open", "closed")
DRILLS = ("with", "without", "only")  # drills listed with the rest, left out, or alone


def _filtered(status: str = "all", drills: str = "with"):
    if status not in STATUSES:
        raise InvalidInput(f"{status!r} is not a status filter; choose one of {', '.join(STATUSES)}.")
    if drills not in DRILLS:
        raise InvalidInput(f"{drills!r} is not a drills filter; choose one of {', '.join(DRILLS)}.")
    query = Incident.select()
    if status != "all":
        query = query.where(Incident.status == status)
    if drills == "without":
        query = query.where(Incident.drill == False)  # noqa: E712 (peewee expression)
    elif drills == "only":
        query = query.where(Incident.drill == True)  # noqa: E712
    return query


def list_incidents(status: str = "all", drills: str = "with", limit: int = 25,
                   offset: int = 0) -> list[IncidentView]:
    """One page of incidents, newest (highest number) first, with their current role holders."""
    rows = list(_filtered(status, drills).order_by(Incident.number.desc())
                .limit(max(1, min(limit, 500))).offset(max(0, offset)))
    return views_of(rows)


def views_of(rows: list[Incident]) -> list[IncidentView]:
    """Incidents' views with their current role holders, in one query for all of them."""
    holders: dict[int, dict[str, str]] = {r.id: {} for r in rows}
    if holders:
        for a in RoleAssignment.select().where(RoleAssignment.incident.in_(list(holders)),
                                               RoleAssignment.released_at.is_null()):
            holders[a.incident_id][a.role] = a.holder
    return [IncidentView.of(r, holders[r.id]) for r in rows]


def count_incidents(status: str = "all", drills: str = "with", at_most: int | None = None) -> int:
    """How many incidents match. With `at_most`, counting stops after at_most + 1 of them (a result above
    at_most means "more than at_most"): the cost stays the same however long the history grows."""
    query = _filtered(status, drills)
    if at_most is not None:
        limited = query.select(SQL("1")).limit(max(0, at_most) + 1)
        return Incident.select(fn.COUNT(SQL("*"))).from_(limited.alias("matching")).scalar() or 0
    # COUNT(*), not COUNT(id): SQLite counts index pages for it instead of reading every entry.
    return query.select(fn.COUNT(SQL("*"))).scalar() or 0


@dataclass(frozen=True)
class IncidentFacts:
    """The few facts statistics need about one incident (times aware, UTC)."""

    number: int
    severity: str | None
    report: bool
    declared_at: dt.datetime
    closed_at: dt.datetime | None

    @property
    def time_to_resolve(self) -> dt.timedelta | None:
        return self.closed_at - self.declared_at if self.closed_at else None


def incident_facts(since: dt.datetime, until: dt.datetime | None = None,
                   drills: bool = False) -> list[IncidentFacts]:
    """Incidents declared in [since, until), oldest first; drills left out unless asked for."""
    def naive_utc(value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value

    query = (Incident.select(Incident.number, Incident.severity, Incident.report, Incident.declared_at,
                             Incident.closed_at)
             .where(Incident.declared_at >= naive_utc(since)))
    if until is not None:
        query = query.where(Incident.declared_at < naive_utc(until))
    if not drills:
        query = query.where(Incident.drill == False)  # noqa: E712
    return [IncidentFacts(r.number, r.severity, r.report, aware(r.declared_at), aware(r.closed_at))
            for r in query.order_by(Incident.declared_at, Incident.number)]
