"""Chat commands as text in, text out: the same for errbot's console, Slack mentions and tests.

In an incident channel the incident is implied; elsewhere its number comes first (`summary 12 <text>`).
Bad input raises InvalidInput with the usage and the allowed values; nothing changes.
"""
from __future__ import annotations

import re
from contextvars import ContextVar

from .commands import ADMINS, IN_CHANNEL, REGISTRY, RESPONDERS, Command, Permissions, command  # noqa: F401
from . import backup
from .chat_base import LEADING_NUMBER, NUMBER, USAGE, Caller, Reply  # noqa: F401 (re-exported)
from .chat_comms import CommsCommands
from .chat_roles import RoleCommands
from .errors import InvalidInput, NotAllowed, NotFound
from .closing import close_reason
from .service import IncidentService
from .text import defuse, duration, mention
from .help import command_help, process_help  # noqa: F401 (re-exported)
from .views import IncidentView

# The command being run (set by ChatCommands.run): `_incident` applies its permission once the incident
# is known.
_running: ContextVar[Command | None] = ContextVar("opg_incident_command", default=None)
# Whether the incident was named by its number (not implied by its channel): the reply then names it.
_by_number: ContextVar[bool] = ContextVar("opg_incident_by_number", default=False)
# Commands whose text may start with a number: the channel's own number is not taken off their text.
FREE_TEXT = ("summary", "impact", "note", "decision", "action", "update", "ask")
# Commands whose argument is itself a number: in an incident's channel one number is that argument
# (`action done 2` is action 2 of this incident, whatever incident 2 is); two numbers are incident, argument.
NUMBER_ARGUMENT = ("action done",)
ONE_NUMBER = re.compile(r"^\s*#?\d{1,9}\s*$")


class ChatCommands(RoleCommands, CommsCommands):
    def __init__(self, service: IncidentService, document_url: str = "", settings_store=None, data_dir: str = "data"):
        self.service = service
        self.data_dir = data_dir
        self.document_url = document_url
        self.settings_store = settings_store
        self.permissions = Permissions(lambda: service.settings.permissions, service.is_admin)

    def run(self, cmd: Command, args: str, caller: Caller) -> Reply:
        """Run a registered command for `caller`. Its permission is checked before anything changes: at
        once for a command about no incident, and by `_incident` when the incident is known."""
        token = _running.set(cmd)
        try:
            if not cmd.incident:
                self.permissions.check(cmd, caller.user)
            return cmd.run(self, args or "", caller)
        finally:
            _running.reset(token)

    # -- incidents ----------------------------------------------------------------------------------
    @command("incident declare", usage="incident declare <title> [--report] [--drill]", help="Declare an incident (`--report` for something already over, `--drill` for practice): the headline marks the official start.", incident=False)
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

    @command("incident list", usage="incident list [open|closed|all]", help="List incidents (open ones by default).", incident=False)
    def list(self, args: str, caller: Caller) -> Reply:
        which = (args or "open").strip().lower()
        if which not in ("open", "closed", "all"):
            raise InvalidInput(f"Usage: `{USAGE['list']}`.")
        incidents = self.service.list(which)
        if not incidents:
            return Reply(f"No {'' if which == 'all' else which + ' '}incidents.")
        return Reply("\n".join(self._line(i) for i in incidents))

    @command("incident show", usage="incident show <number>", help="Show an incident: state, roles, summary and impact.")
    def show(self, args: str, caller: Caller) -> Reply:
        number, rest = self._incident(args, caller, usage=USAGE["show"])
        return Reply(self.describe(self.service.get(number)))

    @command("incident reload", usage="incident reload", help="Re-read the settings YAML (roles, severities, "
             "permissions, ...); an invalid file is refused with the file, line and field, and the old settings stay.",
             group="admins", may=ADMINS, incident=False)
    def reload(self, args: str, caller: Caller) -> Reply:
        changes = self.service.reload_settings(self.settings_store, caller.user)
        return Reply("Settings reloaded. " + ("Changed: " + "; ".join(changes) if changes else "Nothing changed."))

    @command("incident backup", usage="incident backup", help="A consistent copy of the SQLite database in "
             "BOT_DATA_DIR/backups (on PostgreSQL: use pg_dump).", group="admins", may=ADMINS, incident=False)
    def backup(self, args: str, caller: Caller) -> Reply:
        return Reply(backup.take(self.data_dir, self.service.now()).describe())

    @command("help", usage="help [command]", help="How the incident process runs, and every command.",
             incident=False)
    def help(self, args: str, caller: Caller) -> Reply:
        settings = self.service.settings
        if (args or "").strip():
            return Reply(command_help(args.strip(), settings=settings))
        return Reply(process_help(settings, admins=bool(self.service.admins)))

    # -- the lead's updates -------------------------------------------------------------------------
    @command("summary", usage="summary <text>", help="Set the summary of what is going on.", group="lead", may=RESPONDERS)
    def summary(self, args: str, caller: Caller) -> Reply:
        return self._set_text("summary", args, caller)

    @command("impact", usage="impact <text>", help="Say who or what is affected.", group="lead", may=RESPONDERS)
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
            return self._said(number, f"The {field} of incident {number} is already that.", out,
                              f"the {field} is already that.")
        now = defuse(getattr(out.incident, field))
        return self._said(number, f"The {field} of incident {number} is now:\n{now}", out,
                          f"the {field} is now:\n{now}")

    @command("sev", usage="sev <severity>", help="Set the severity.", group="lead", may=RESPONDERS, aliases=("severity",))
    def sev(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["sev"])
        if not text.strip():
            raise InvalidInput(f"Usage: `{USAGE['sev']}`. Severities: {self._severities()}.")
        out = self.service.set_severity(number, text, caller.user)
        sev = self.service.settings.severity(out.incident.severity)
        if not out.changed:
            return self._said(number, f"Incident {number} is already {sev.name}.", out, f"already {sev.name}.")
        return self._said(number, f"Incident {number} is now {sev.emoji} {sev.name}.".replace("  ", " "), out,
                          f"the severity is now {sev.emoji} {sev.name}.".replace("  ", " "))

    # -- the scribe's log ---------------------------------------------------------------------------
    @command("action", usage="action <text>", help="Log a follow-up action.", group="scribe", may=IN_CHANNEL)
    def action(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["action"])
        done = re.match(r"^done(?:\s+#?(\d+))?\s*$", text.strip(), re.IGNORECASE)
        if done:  # `action done` without a number is an incomplete command, not an action called "done"
            return self._complete(number, done.group(1) or "", caller)
        return self._log("action", number, text, caller)

    @command("action done", usage="action done <action number>", help="Mark an action done.", group="scribe", may=IN_CHANNEL)
    def action_done(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["action done"])
        return self._complete(number, text.strip(), caller)

    def _complete(self, number: int, text: str, caller: Caller) -> Reply:
        match = NUMBER.match(text)
        if not match:
            raise InvalidInput(f"Which action? Usage: `{USAGE['action done']}`; `actions` lists them.")
        out = self.service.complete_action(number, int(match.group(1)), caller.user)
        return self._said(number, f"Action {match.group(1)} of incident {number} is done.", out,
                          f"action {match.group(1)} is done.")

    @command("note", usage="note <text>", help="Put a note on the timeline (pinning a message does too).", group="scribe", may=IN_CHANNEL)
    def note(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["note"])
        return self._log("note", number, text, caller)

    @command("decision", usage="decision <text>", help="Record a decision on the timeline.", group="scribe", may=IN_CHANNEL)
    def decision(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["decision"])
        return self._log("decision", number, text, caller)

    def _log(self, kind: str, number: int, text: str, caller: Caller) -> Reply:
        if not text.strip():
            raise InvalidInput(f"Say what the {kind} is. Usage: `{USAGE[kind]}`.")
        out = self.service.log(number, kind, text, caller.user)
        if kind == "action":
            no = self.service.actions(number)[-1].number
            done = f"action done {number} {no}" if _by_number.get() else f"action done {no}"  # works where it is said
            return self._said(number, f"Action {no} logged on incident {number}. Mark it with `{done}`.", out,
                              f"action {no} logged. Mark it with `{done}`.")
        return self._said(number, f"{kind.capitalize()} logged on the timeline of incident {number}.", out,
                          f"{kind} logged on the timeline.")

    @command("actions", usage="actions", help="List the actions of the incident.", group="scribe")
    def actions(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["actions"])
        items = self.service.actions(number)
        if not items:
            return Reply(f"Incident {number} has no actions yet. Log one with `{USAGE['action']}`.")
        return Reply("\n".join(f"{'✅' if a.done else '⬜'} {a.number}. {defuse(a.text)} ({mention(a.owner)})"
                               for a in items))

    @command("timeline", usage="timeline", help="Show the timeline of the incident.", group="scribe")
    def timeline(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["timeline"])
        entries = self.service.timeline(number)
        fmt = self.service.format_time
        return Reply(f"Timeline of incident {number}:\n" + "\n".join(
            f"{fmt(e.at)} [{e.kind}] {defuse(e.text)}" + (f" ({mention(e.author)})" if e.kind == "pin" else "")
            for e in entries))

    # -- close --------------------------------------------------------------------------------------
    @command("close", usage="close [anyway] [resolved|blocked until <date>]", help="Close the incident (the "
             "Incident Lead or a bot admin): first it lists what is missing (summary, impact, scribe, open actions) "
             "and asks to confirm with `close anyway`; the reason, resolved or blocked until a later date, goes on "
             "the timeline.", group="lead", may=RESPONDERS)
    def close(self, args: str, caller: Caller) -> Reply:
        number, rest = self._incident(args, caller, usage=USAGE["close"])
        anyway = re.match(r"^\s*anyway\b", rest, re.IGNORECASE)
        reason = close_reason(rest[anyway.end():] if anyway else rest)
        if not anyway:
            missing = self.service.close_check(number, caller.user)
            if missing:
                n = f"{number} " if _by_number.get() else ""
                confirm = (f"this is missing: {', '.join(missing)}.\nClose it anyway, for one of the process's two "
                           f"reasons:\n• resolved: `close {n}anyway`\n"
                           f"• blocked until a later date: `close {n}anyway blocked until <date>`")
                return self._said(number, f"Before closing incident {number}, {confirm}", None,
                                  f"before closing, {confirm}")
        out = self.service.close(number, caller.user, reason)
        why = defuse(out.happened[0].new)
        return self._said(number, f"Incident {number} is closed after {duration(out.incident.duration)} ({why}). Thank "
                                  f"you all. Next: the root-cause analysis.", out,
                          f"closed after {duration(out.incident.duration)} ({why}). Thank you all. Next: the "
                          f"root-cause analysis.")

    @command("reopen", usage="reopen", help="Reopen a closed incident (the Incident Lead or a bot admin).", group="lead", may=RESPONDERS)
    def reopen(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["reopen"])
        out = self.service.reopen(number, caller.user)
        return self._said(number, f"Incident {number} is open again.", out, "open again.")

    @command("archive", usage="archive", help="Archive the comms channel of a closed incident.", group="lead", may=RESPONDERS)
    def archive(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["archive"])
        out = self.service.archive_channel(number, caller.user)
        if not out.changed:
            return self._said(number, f"The comms channel of incident {number} is already archived.", out,
                              "its comms channel is already archived.")
        return self._said(number, f"Archiving the comms channel of incident {number}.", out,
                          "archiving its comms channel.")

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
        cmd = _running.get()
        here = self.service.for_channel(caller.channel)
        if here is not None:
            if cmd is not None and cmd.name in NUMBER_ARGUMENT and ONE_NUMBER.match(args):
                self._allowed(cmd, here, caller)
                _by_number.set(False)
                return here.number, args
            match = LEADING_NUMBER.match(args)
            named = int(match.group(1)) if match else None
            if named is not None and named != here.number and self._exists(named):
                other = self.service.get(named)
                raise InvalidInput(f"This is the channel of incident {here.number} ({defuse(here.title)}), but "
                                   f"{named} names incident {named} ({defuse(other.title)}). Nothing changed: run it "
                                   f"in incident {named}'s channel, or in a direct message to me.")
            if named == here.number and (cmd is None or cmd.name not in FREE_TEXT):
                args = match.group(2) or ""
            self._allowed(cmd, here, caller)
            _by_number.set(False)
            return here.number, args
        match = LEADING_NUMBER.match(args)
        if match:
            number = int(match.group(1))
            self._allowed(cmd, self.service.get(number), caller)
            _by_number.set(True)
            return number, match.group(2) or ""
        open_ones = self.service.list("open", limit=5)
        hint = ("\nOpen incidents: " + ", ".join(f"#{i.number} {defuse(i.title)}" for i in open_ones)
                if open_ones else "\nThere are no open incidents.")
        raise InvalidInput(f"Which incident? Outside an incident channel, put its number first: "
                           f"`{_with_number(usage)}`.{hint}")


    def _said(self, number: int, text: str, out=None, named: str | None = None) -> Reply:
        """The reply to a change. When the incident was named by its number, the reply starts with its number
        and title ("Incident 2 — Payments API timing out: the impact is now ..."), so a wrong number shows
        at once; `named` is the text after that (default: `text`)."""
        if _by_number.get():
            inc = out.incident if out is not None else self.service.get(number)
            return Reply(f"Incident {number} — {defuse(inc.title)}: {text if named is None else named}", out)
        return Reply(text, out)

    def _allowed(self, cmd: Command | None, inc: IncidentView, caller: Caller) -> None:
        if cmd is not None:
            self.permissions.check(cmd, caller.user, inc, caller.channel)

    def _exists(self, number: int) -> bool:
        try:
            self.service.get(number)
            return True
        except NotFound:
            return False


def _with_number(usage: str) -> str:
    head, _, tail = usage.partition(" ")
    return f"{head} 12 {tail}".strip() if not usage.startswith("incident") else usage


def refuse(exc: Exception) -> str:
    """The text to send back for a refusal."""
    prefix = "Not allowed: " if isinstance(exc, NotAllowed) else ""
    return prefix + str(exc)
