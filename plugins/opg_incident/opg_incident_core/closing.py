"""Before the close: what is missing, and the process's two reasons to stop. Part of IncidentService."""
from __future__ import annotations

import re

from .errors import InvalidInput
from .storage import Action

REASON = ": "  # between "closed the incident" and its reason on the timeline


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


class ClosingMixin:
    """Provides close_check (IncidentService provides _incident, _holders, settings, format_time)."""

    def close_check(self, number: int, by: str) -> list[str]:
        """What is missing before a close (a summary, an impact, a scribe, open actions); refused, as the
        close would be, for someone who may not close it or an incident closed already."""
        row = self._incident(number)
        if row.status == "closed":
            raise InvalidInput(f"Incident {row.number} was already closed at {self.format_time(row.closed_at)}.")
        self._lead_or_admin(row, by, "close")
        open_actions = [a.number for a in Action.select(Action.number).where(Action.incident == row,
                                                                             Action.done == False)  # noqa: E712
                        .order_by(Action.number)]
        scribe = self.settings.role("scribe")
        missing = [w for w, gone in (("a summary", not row.summary.strip()), ("an impact", not row.impact.strip()),
                                     (f"an {scribe.name if scribe else 'Incident Scribe'}",
                                      scribe is not None and "scribe" not in self._holders(row))) if gone]
        if open_actions:
            missing.append(f"{len(open_actions)} open action{'s' if len(open_actions) > 1 else ''} "
                           f"({', '.join(map(str, open_actions))})")
        return missing

