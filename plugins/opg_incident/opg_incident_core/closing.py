"""The end of an incident: what is missing before the close, the process's two reasons to stop, close and
reopen, and the comms channel archived after it. A collaborator of IncidentService."""
from __future__ import annotations

import datetime as dt
import re

from . import storage
from .errors import InvalidInput
from .records import REASON, Records
from .storage import Action, Incident
from .text import mention
from .timeline import older
from .views import Happened, Outcome


def close_reason(text: str | None) -> str:
    """One of the process's two reasons to stop: `resolved`, or `blocked until <a later date>`."""
    text = " ".join((text or "").split()).strip(" .")
    if not text or text.lower() == "resolved":
        return "resolved"
    until = re.fullmatch(r"blocked(?:\s+until)?\s+(.{1,100})", text, re.IGNORECASE)
    if until and not until.group(1).lower().startswith("until"):
        return f"blocked until {until.group(1)}"
    raise InvalidInput("Close for one of the process's two reasons: `resolved`, or `blocked until <a later date>` "
                       "(e.g. `close blocked until 2024-03-12`).")


class Closing:
    def __init__(self, records: Records):
        self.records = records

    def close_check(self, number: int, by: str) -> list[str]:
        """What is missing before a close (a summary, an impact, a scribe, open actions); refused, as the
        close would be, for someone who may not close it or an incident closed already."""
        records = self.records
        row = records.incident(number)
        self._not_closed(row)
        self._lead_may(row, by, "close")
        open_actions = [a.number for a in Action.select(Action.number).where(Action.incident == row,
                                                                             Action.done == False)  # noqa: E712
                        .order_by(Action.number)]
        scribe = records.settings.role("scribe")
        missing = [w for w, gone in (("a summary", not row.summary.strip()), ("an impact", not row.impact.strip()),
                                     (f"an {scribe.name if scribe else 'Incident Scribe'}",
                                      scribe is not None and "scribe" not in records.holders(row))) if gone]
        if open_actions:
            missing.append(f"{len(open_actions)} open action{'s' if len(open_actions) > 1 else ''} "
                           f"({', '.join(map(str, open_actions))})")
        return missing

    def close(self, number: int, by: str, reason: str = "resolved") -> Outcome:
        """Close, for one of the process's two reasons: `resolved`, or `blocked until <a later date>`; the
        reason goes on the timeline and the headline."""
        reason = close_reason(reason)
        records = self.records
        with storage.write():
            row = records.incident(number, lock=True)
            self._not_closed(row)
            self._lead_may(row, by, "close")
            row.status, row.closed_at, row.closed_by = "closed", records.now(), by
            row.save()
            records.log(row, "closed", by, f"{mention(by)} closed the incident{REASON}{reason}")
            return records.outcome(row, [Happened("closed", by, new=reason)])

    def reopen(self, number: int, by: str) -> Outcome:
        records = self.records
        with storage.write():
            row = records.incident(number, lock=True)
            if row.status == "open":
                raise InvalidInput(f"Incident {row.number} is still open.")
            self._lead_may(row, by, "reopen")
            row.status, row.closed_at, row.closed_by = "open", None, None
            row.channel_archived_at = None
            row.save()
            records.log(row, "reopened", by, f"{mention(by)} reopened the incident")
            return records.outcome(row, [Happened("reopened", by)])

    # -- the comms channel after the close ----------------------------------------------------------
    def archive_channel(self, number: int, by: str) -> Outcome:
        """Mark the comms channel of a closed incident archived (the adapter archives it in Slack)."""
        records = self.records
        with storage.write():
            row = records.incident(number, lock=True)
            if not row.channel_id:
                raise InvalidInput(f"Incident {row.number} has no comms channel to archive.")
            if row.status != "closed":
                raise InvalidInput(f"Close incident {row.number} before archiving its channel.")
            if row.channel_archived_at is not None:
                return records.outcome(row, [])
            self._lead_may(row, by, "archive the channel of")
            row.channel_archived_at = records.now()
            row.save()
            records.log(row, "archived", by, f"Comms channel #{row.channel_name} archived")
            return records.outcome(row, [Happened("archived", by)])

    def mark_channel_archived(self, number: int, archived: bool, event_ts: str | None = None) -> None:
        """The adapter's word on the comms channel of an open incident: still archived after a reopen (nobody
        could unarchive it yet: it is worked on in the headline's thread), or back. With Slack's `event_ts`
        (channel_archive/unarchive), an event older than the one applied already changes nothing."""
        with storage.write():
            row = storage.first(Incident.select(Incident.id, Incident.channel_archived_at, Incident.channel_archive_ts)
                                .where(Incident.number == number), lock=True)
            if row is None or older(event_ts, row.channel_archive_ts):
                return
            at = row.channel_archived_at if (row.channel_archived_at is not None) == archived else (
                self.records.now() if archived else None)
            (Incident.update(channel_archived_at=at, channel_archive_ts=event_ts or row.channel_archive_ts)
             .where(Incident.id == row.id).execute())

    def due_for_archive(self, delay_minutes: int) -> list[int]:
        """Closed incidents whose channel should be archived by now."""
        cutoff = self.records.now() - dt.timedelta(minutes=delay_minutes)
        return [r.number for r in Incident.select(Incident.number).where(
            Incident.status == "closed", Incident.channel_id.is_null(False),
            Incident.channel_archived_at.is_null(), Incident.closed_at <= cutoff)]

    def _not_closed(self, row: Incident) -> None:
        if row.status == "closed":
            when = self.records.format_time(row.closed_at)
            raise InvalidInput(f"Incident {row.number} was already closed at {when}.")

    def _lead_may(self, row: Incident, by: str, verb: str) -> None:
        """Close, reopen, archive: the Incident Lead or a bot admin."""
        self.records.authority.require_lead(by, self.records.holders(row).get("lead"), f"{verb} incident {row.number}")
