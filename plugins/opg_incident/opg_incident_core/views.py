"""Immutable snapshots of the record, handed to adapters (chat, Slack, web pages) instead of rows."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from . import storage


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """Stored times are naive UTC; views carry aware UTC times."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


@dataclass(frozen=True)
class RoleHolding:
    role: str
    holder: str
    assigned_by: str
    assigned_at: dt.datetime
    released_at: dt.datetime | None = None


@dataclass(frozen=True)
class IncidentView:
    number: int
    title: str
    report: bool
    drill: bool
    summary: str
    impact: str
    severity: str | None
    status: str
    reporter: str
    declared_at: dt.datetime
    closed_at: dt.datetime | None
    closed_by: str | None
    channel_id: str | None
    channel_name: str | None
    channel_archived: bool
    headline_channel_id: str | None
    headline_ts: str | None
    roles: dict[str, str] = field(default_factory=dict)  # role key -> holder, current holders only
    call_url: str | None = None
    rca_ready: bool = False
    rca_url: str | None = None  # the published analysis (a Confluence page), once published
    close_reason: str | None = None  # closed: "resolved" or "blocked until <date>"

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def status_text(self) -> str:
        if not self.is_open:
            return "Resolved"
        return "Reported" if self.report else "Live"

    @property
    def duration(self) -> dt.timedelta:
        end = self.closed_at or dt.datetime.now(dt.timezone.utc)
        return end - self.declared_at

    @classmethod
    def of(cls, row: storage.Incident, roles: dict[str, str]) -> "IncidentView":
        return cls(
            number=row.number, title=row.title, report=row.report, drill=row.drill,
            summary=row.summary, impact=row.impact, severity=row.severity, status=row.status,
            reporter=row.reporter, declared_at=aware(row.declared_at), closed_at=aware(row.closed_at),
            closed_by=row.closed_by, channel_id=row.channel_id, channel_name=row.channel_name,
            channel_archived=row.channel_archived_at is not None,
            headline_channel_id=row.headline_channel_id, headline_ts=row.headline_ts,
            roles={"reporter": row.reporter, **roles}, call_url=row.call_url,
            rca_ready=row.rca_ready_at is not None, rca_url=row.rca_url,
        )


@dataclass(frozen=True)
class TimelineView:
    id: int
    kind: str
    at: dt.datetime
    author: str
    text: str
    permalink: str | None = None
    source_channel: str | None = None
    source_ts: str | None = None
    thread_ts: str | None = None
    files: tuple[dict, ...] = ()

    @classmethod
    def of(cls, row: storage.TimelineEntry) -> "TimelineView":
        return cls(
            id=row.id, kind=row.kind, at=aware(row.at), author=row.author, text=row.text,
            permalink=row.permalink, source_channel=row.source_channel, source_ts=row.source_ts,
            thread_ts=row.thread_ts, files=tuple(json.loads(row.files or "[]")),
        )


@dataclass(frozen=True)
class ActionView:
    number: int
    text: str
    owner: str
    created_at: dt.datetime
    done: bool
    done_at: dt.datetime | None
    done_by: str | None

    @classmethod
    def of(cls, row: storage.Action) -> "ActionView":
        return cls(number=row.number, text=row.text, owner=row.owner, created_at=aware(row.created_at),
                   done=row.done, done_at=aware(row.done_at), done_by=row.done_by)


@dataclass(frozen=True)
class Happened:
    """One thing that changed, for adapters to announce. `kind` names the step of the process."""

    kind: str  # declared, summary, impact, severity, role, action, note, decision, action_done, pin, closed, ...
    by: str
    old: str | None = None
    new: str | None = None
    role: str | None = None  # the role (key) it concerns: role changes and handovers
    entry_id: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What an operation did: the incident as it is now, what happened, and warnings to pass on."""

    incident: IncidentView
    happened: tuple[Happened, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.happened)


@dataclass(frozen=True)
class HandoverView:
    id: int
    number: int
    role: str
    from_holder: str | None
    to_user: str
    requested_by: str
    awaiting: str
    note: str
    status: str
    created_at: dt.datetime
    expires_at: dt.datetime
    message_channel: str | None
    message_ts: str | None

    @property
    def is_request(self) -> bool:
        """Someone asked the holder for the role (rather than being offered it)."""
        return self.awaiting != self.to_user

    @classmethod
    def of(cls, row: storage.Handover) -> "HandoverView":
        return cls(id=row.id, number=row.incident.number, role=row.role, from_holder=row.from_holder,
                   to_user=row.to_user, requested_by=row.requested_by, awaiting=row.awaiting, note=row.note,
                   status=row.status, created_at=aware(row.created_at), expires_at=aware(row.expires_at),
                   message_channel=row.message_channel, message_ts=row.message_ts)


@dataclass(frozen=True)
class UpdateView:
    id: int
    number: int
    text: str
    author: str
    at: dt.datetime
    status: str
    severity: str | None
    summary: str

    @classmethod
    def of(cls, row: storage.StakeholderUpdate, number: int) -> "UpdateView":
        return cls(id=row.id, number=number, text=row.text, author=row.author, at=aware(row.at),
                   status=row.status, severity=row.severity, summary=row.summary)


def document_url(public_url: str, number: int, part: str = "") -> str:
    """The living document of incident `number` (`part`: "/rca.md", ".json"), under INCIDENT_PUBLIC_URL."""
    return f"{(public_url or '').rstrip('/')}/incidents/{number}{part}"
