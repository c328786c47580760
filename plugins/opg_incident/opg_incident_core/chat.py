"""Chat commands as text in, text out: the same for errbot's console, Slack mentions and tests.

In an incident channel the incident is implied; elsewhere its number comes first (`summary 12 <text>`).
Bad input raises InvalidInput with the usage and the allowed values; nothing changes.
"""
from __future__ import annotations

import re

from .chat_base import LEADING_NUMBER, NUMBER, USAGE, Caller, Reply  # noqa: F401 (re-exported)
from .chat_comms import CommsCommands
from .chat_roles import RoleCommands
from .errors import InvalidInput, NotAllowed
from .service import IncidentService
from .text import defuse, duration, mention
from .views import IncidentView

class ChatCommands(RoleCommands, CommsCommands):
    def __init__(self, service: IncidentService):
        self.service = service

    # -- incidents ----------------------------------------------------------------------------------
    def declare(self, args: str, caller: Caller) -> Reply:
        words = (args or "").split()
        flags = {w.lower() for w in words if w.startswith("--")}
        unknown = flags - {"--report", "--drill"}
        if unknown:
            raise InvalidInput(f"Unknown option {defuse(sorted(unknown)[0])}. Usage: `{USAGE['declare']}`.")
        title = " ".join(w for w in words if not w.startswith("--"))
        if not title:
            raise InvalidInput(f"Say what has happened. Usage: `{USAGE['declare']}`.")
        out = self.service.declare(title, caller.user, report="--report" in flags, drill="--drill" in flags)
        inc = out.incident
        kind = "Report" if inc.report else ("Drill" if inc.drill else "Incident")
        return Reply(f"{kind} {inc.number} declared: {defuse(inc.title)}\n"
                     f"Next: find an Incident Lead and a Scribe (`lead {inc.number} me`, "
                     f"`scribe {inc.number} @someone`), then set `sev {inc.number} <severity>`.", out)

    def list(self, args: str, caller: Caller) -> Reply:
        which = (args or "open").strip().lower()
        if which not in ("open", "closed", "all"):
            raise InvalidInput(f"Usage: `{USAGE['list']}`.")
        incidents = self.service.list(which)
        if not incidents:
            return Reply(f"No {'' if which == 'all' else which + ' '}incidents.")
        return Reply("\n".join(self._line(i) for i in incidents))

    def show(self, args: str, caller: Caller) -> Reply:
        number, rest = self._incident(args, caller, usage=USAGE["show"])
        return Reply(self.describe(self.service.get(number)))

    # -- the lead's updates -------------------------------------------------------------------------
    def summary(self, args: str, caller: Caller) -> Reply:
        return self._set_text("summary", args, caller)

    def impact(self, args: str, caller: Caller) -> Reply:
        return self._set_text("impact", args, caller)

    def _set_text(self, field: str, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE[field])
        if not text.strip():
            current = getattr(self.service.get(number), field)
            shown = defuse(current) if current else "not set yet"
            raise InvalidInput(f"The {field} of incident {number} is: {shown}\nTo change it: `{USAGE[field]}`.")
        setter = self.service.set_summary if field == "summary" else self.service.set_impact
        out = setter(number, text, caller.user)
        if not out.changed:
            return Reply(f"The {field} of incident {number} is already that.", out)
        return Reply(f"The {field} of incident {number} is now:\n{defuse(getattr(out.incident, field))}", out)

    def sev(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["sev"])
        if not text.strip():
            raise InvalidInput(f"Usage: `{USAGE['sev']}`. Severities: {self._severities()}.")
        out = self.service.set_severity(number, text, caller.user)
        sev = self.service.settings.severity(out.incident.severity)
        if not out.changed:
            return Reply(f"Incident {number} is already {sev.name}.", out)
        return Reply(f"Incident {number} is now {sev.emoji} {sev.name}.".replace("  ", " "), out)

    # -- the scribe's log ---------------------------------------------------------------------------
    def action(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["action"])
        done = re.match(r"^done(?:\s+#?(\d+))?\s*$", text.strip(), re.IGNORECASE)
        if done:  # `action done` without a number is an incomplete command, not an action called "done"
            return self._complete(number, done.group(1) or "", caller)
        return self._log("action", number, text, caller)

    def action_done(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["action done"])
        return self._complete(number, text.strip(), caller)

    def _complete(self, number: int, text: str, caller: Caller) -> Reply:
        match = NUMBER.match(text)
        if not match:
            raise InvalidInput(f"Which action? Usage: `{USAGE['action done']}`; `actions` lists them.")
        out = self.service.complete_action(number, int(match.group(1)), caller.user)
        return Reply(f"Action {match.group(1)} of incident {number} is done.", out)

    def note(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["note"])
        return self._log("note", number, text, caller)

    def decision(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["decision"])
        return self._log("decision", number, text, caller)

    def _log(self, kind: str, number: int, text: str, caller: Caller) -> Reply:
        if not text.strip():
            raise InvalidInput(f"Say what the {kind} is. Usage: `{USAGE[kind]}`.")
        out = self.service.log(number, kind, text, caller.user)
        if kind == "action":
            no = self.service.actions(number)[-1].number
            return Reply(f"Action {no} logged on incident {number}. Mark it with `action done {no}`.", out)
        return Reply(f"{kind.capitalize()} logged on the timeline of incident {number}.", out)

    def actions(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["actions"])
        items = self.service.actions(number)
        if not items:
            return Reply(f"Incident {number} has no actions yet. Log one with `{USAGE['action']}`.")
        return Reply("\n".join(f"{'✅' if a.done else '⬜'} {a.number}. {defuse(a.text)} ({mention(a.owner)})"
                               for a in items))

    def timeline(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["timeline"])
        entries = self.service.timeline(number)
        fmt = self.service.format_time
        return Reply(f"Timeline of incident {number}:\n" + "\n".join(
            f"{fmt(e.at)} [{e.kind}] {defuse(e.text)}" + (f" ({mention(e.author)})" if e.kind == "pin" else "")
            for e in entries))

    # -- close --------------------------------------------------------------------------------------
    def close(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["close"])
        out = self.service.close(number, caller.user)
        return Reply(f"Incident {number} is closed after {duration(out.incident.duration)}. Thank you all. "
                     f"Next: the root-cause analysis.", out)

    def reopen(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["reopen"])
        out = self.service.reopen(number, caller.user)
        return Reply(f"Incident {number} is open again.", out)

    def archive(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["archive"])
        out = self.service.archive_channel(number, caller.user)
        if not out.changed:
            return Reply(f"The comms channel of incident {number} is already archived.", out)
        return Reply(f"Archiving the comms channel of incident {number}.", out)

    # -- rendering ----------------------------------------------------------------------------------
    def describe(self, inc: IncidentView) -> str:
        settings = self.service.settings
        sev = settings.severity(inc.severity)
        roles = [f"{r.name}: {mention(inc.roles.get(r.key))}" for r in settings.roles]
        lines = [
            f"Incident {inc.number}: {defuse(inc.title)}" + (" (drill)" if inc.drill else ""),
            f"Status: {inc.status_text} · Severity: {sev.name if sev else 'not set'}",
            f"Declared {self.service.format_time(inc.declared_at)}"
            + (f" · closed {self.service.format_time(inc.closed_at)}" if inc.closed_at else "")
            + f" · {duration(inc.duration)}",
            *roles,
            f"Summary: {defuse(inc.summary) or 'not set'}",
            f"Impact: {defuse(inc.impact) or 'not set'}",
        ]
        return "\n".join(lines)

    def _line(self, inc: IncidentView) -> str:
        sev = self.service.settings.severity(inc.severity)
        return (f"• {inc.number}: {defuse(inc.title)} [{inc.status_text}] · {sev.name if sev else 'no severity'}"
                f" · lead {mention(inc.roles.get('lead'))}")

    def _severities(self) -> str:
        return ", ".join(s.name for s in self.service.settings.severities)

    def _incident(self, args: str, caller: Caller, usage: str) -> tuple[int, str]:
        """(incident number, the rest of the text): implied by the channel, or the first word."""
        args = args or ""
        here = self.service.for_channel(caller.channel)
        if here is not None:
            return here.number, args
        match = LEADING_NUMBER.match(args)
        if match:
            return int(match.group(1)), match.group(2) or ""
        open_ones = self.service.list("open", limit=5)
        hint = ("\nOpen incidents: " + ", ".join(f"#{i.number} {defuse(i.title)}" for i in open_ones)
                if open_ones else "\nThere are no open incidents.")
        raise InvalidInput(f"Which incident? Outside an incident channel, put its number first: "
                           f"`{_with_number(usage)}`.{hint}")


def _with_number(usage: str) -> str:
    head, _, tail = usage.partition(" ")
    return f"{head} 12 {tail}".strip() if not usage.startswith("incident") else usage


def process_help(settings, bot_prefix: str = "") -> str:
    p = bot_prefix
    sevs = "|".join(s.name for s in settings.severities)
    roles = " / ".join(f"`{p}{r.key} <@user|me>` ({r.name})" for r in settings.assignable_roles)
    lines = [
        "*How an incident runs*" + (f" (the process: {settings.process_url})" if settings.process_url else ""),
        f"1. Declare: `{p}incident declare <what happened>` (`--report` for something already over, "
        f"`--drill` for practice). The bot marks the official start in #{settings.channels.incidents}.",
        f"2. Roles: {roles}. Lead and Scribe must be filled, by different people.",
        f"3. Lead's updates: `{p}summary <text>`, `{p}impact <text>`, `{p}sev <{sevs}>`.",
        f"4. Scribe's log: pin important messages; `{p}action <text>`, `{p}note <text>`, `{p}decision <text>`, "
        f"`{p}action done <n>`, `{p}actions`, `{p}timeline`.",
        f"5. End: `{p}close` (the lead or a bot admin), then the root-cause analysis. `{p}reopen` if it comes back.",
        "In Slack, mention me in the incident's channel (`@opg-incident summary ...`) or write to me directly.",
        f"In an incident channel the incident is implied; elsewhere put its number first: `{p}summary 12 <text>`.",
        f"See them all: `{p}incident list [open|closed|all]`, `{p}incident show <n>`.",
    ]
    return "\n".join(lines)


def refuse(exc: Exception) -> str:
    """The text to send back for a refusal."""
    prefix = "Not allowed: " if isinstance(exc, NotAllowed) else ""
    return prefix + str(exc)
