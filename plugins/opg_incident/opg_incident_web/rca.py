"""The root-cause analysis: the record (summary, impact, roles, timeline, actions) and the sections the
team fills in after the incident, gathered once as data (`gather`, `analysis`) and written out as a
markdown draft here (`draft`) or as a Confluence page (opg_incident_confluence.render).

User text is markdown-escaped (CommonMark backslash escapes), so a `<script>` or a stray `|` in a
summary stays text in whatever renders the draft.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from . import present

MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#&])")
LINE_START = re.compile(r"^([ \t]*)(?:([-+=])|(\d+)([.)]))", re.MULTILINE)
TO_FILL = "To be filled in by the team."
# The sections the team writes after the incident: (heading, prompt); the five whys and the lists apart.
WHAT_HAPPENED = ("What happened", "In a few paragraphs: what users saw, what the team saw, and how service "
                                  "was restored.")
FIVE_WHYS = ("Why it happened: five whys", "Start from the problem and ask why until you reach a cause you "
                                           "can act on.")
LISTS = ("What went well", "What could be improved")
FOLLOW_UP_COLUMNS = ("Action", "Owner", "Due", "Ticket")
# Not part of the analysis: its own publication (else each publish would change the page it publishes).
LEFT_OUT = frozenset({"rca_published"})


@dataclass(frozen=True)
class Entry:
    when: str
    label: str
    author: str
    text: str
    link: str | None  # the message in Slack, when it is a safe URL


@dataclass(frozen=True)
class ActionRow:
    number: int
    text: str
    owner: str
    done: str  # "no" or "yes, <when>"
    is_done: bool


@dataclass(frozen=True)
class Analysis:
    """The analysis as data. Texts are as recorded (Slack markup included): each renderer escapes them."""

    heading: str  # "Incident 4: <title>" (Report, Drill)
    zone: str
    facts: tuple[tuple[str, str], ...]  # (label, value): status, severity, declared, ...
    channel_name: str | None
    document_url: str
    summary: str
    impact: str
    roles: tuple[tuple[str, str, str, str], ...]  # (role, held by, from, until)
    timeline: tuple[Entry, ...]
    actions: tuple[ActionRow, ...]
    names: dict = field(default_factory=dict)  # {Slack user id: display name}: for mentions in the texts

    @property
    def follow_ups(self) -> tuple[ActionRow, ...]:
        """Open actions, carried into the follow-up table."""
        return tuple(a for a in self.actions if not a.is_done)


def gather(service, number: int) -> tuple:
    """What the analysis is made from: (incident, timeline, actions, role history)."""
    return service.get(number), service.timeline(number), service.actions(number), service.role_history(number)


def analysis(inc, timeline, actions, history, settings, *, url: str, names: dict | None = None) -> Analysis:
    """`names`: present.record_people(...) of the record; people are shown by name (their id when unknown)."""
    names = names or {}
    who = lambda user_id: present.user(user_id, names)  # noqa: E731
    zone = settings.zone
    when = lambda value: present.when(value, zone)  # noqa: E731
    role_name = {r.key: r.name for r in settings.roles}
    kind = "Report" if inc.report else ("Drill" if inc.drill else "Incident")
    roles = [(role_name.get(h.role, h.role), who(h.holder), when(h.assigned_at),
              when(h.released_at) if h.released_at else "the end") for h in history]
    roles.append(("Reporter", who(inc.reporter), when(inc.declared_at), ""))
    return Analysis(
        heading=f"{kind} {inc.number}: {inc.title}", zone=settings.time_zone,
        facts=(("Status", present.status_tag(inc)[0]), ("Severity", present.severity_tag(settings, inc.severity)[0]),
               ("Declared", when(inc.declared_at)),
               ("Resolved", when(inc.closed_at) if inc.closed_at else "not yet"), ("Duration", present.took(inc))),
        channel_name=inc.channel_name, document_url=url, summary=inc.summary or "", impact=inc.impact or "",
        roles=tuple(roles),
        timeline=tuple(Entry(when(e.at), present.kind_label(e.kind), who(e.author), e.text,
                             e.permalink if present.safe_url(e.permalink) and not re.search(r"[\s()<>]", e.permalink)
                             else None) for e in timeline if e.kind not in LEFT_OUT),
        actions=tuple(ActionRow(a.number, a.text, who(a.owner), ("yes, " + when(a.done_at)) if a.done else "no",
                                a.done) for a in actions), names=dict(names))


# -- markdown ---------------------------------------------------------------------------------------

def md(text: str | None, names: dict | None = None) -> str:
    """Escape user text for markdown; Slack markup becomes plain text first (people by name)."""
    escaped = MD_SPECIAL.sub(r"\\\1", present.slack_text(text, names))

    def line_start(m: re.Match) -> str:  # "- x", "+ x", "1. x" at a line start would make a list
        return m.group(1) + ("\\" + m.group(2) if m.group(2) else m.group(3) + "\\" + m.group(4))

    return LINE_START.sub(line_start, escaped)


def md_cell(text: str | None, names: dict | None = None) -> str:
    """Escape for a table cell: one line."""
    return " ".join(md(text, names).split()) or " "


def md_block(text: str | None, empty: str, names: dict | None = None) -> str:
    value = md(text, names).strip()
    if not value:
        return f"_{empty}_"
    # Keep the author's line breaks: a hard break (two spaces) inside a paragraph.
    return "\n".join(line.rstrip() + ("  " if line.strip() else "") for line in value.splitlines()).rstrip()


def draft(inc, timeline, actions, history, settings, *, url: str, now: dt.datetime | None = None,
          names: dict | None = None) -> str:
    return markdown(analysis(inc, timeline, actions, history, settings, url=url, names=names), settings,
                    now or dt.datetime.now(dt.timezone.utc))


def markdown(a: Analysis, settings, now: dt.datetime) -> str:
    kind, _, title = a.heading.partition(": ")
    out: list[str] = [
        f"# {kind}: {md(title)}", "",
        f"Root-cause analysis, draft of {present.when(now, settings.zone)}, written by "
        f"opg-incident from the incident record. Times are in {a.zone}.", "",
        "| | |", "| --- | --- |",
    ]
    out += [f"| {label} | {md_cell(value) if label == 'Severity' else value} |" for label, value in a.facts]
    if a.channel_name:
        out.append(f"| Comms channel | \\#{md_cell(a.channel_name)} |")
    out += [f"| Living document | {a.document_url} |", ""]

    out += ["## Summary", "", md_block(a.summary, "No summary was recorded.", a.names), "",
            "## Impact", "", md_block(a.impact, "No impact was recorded.", a.names), "", "## Roles", "",
            "| Role | Held by | From | Until |", "| --- | --- | --- | --- |"]
    out += [f"| {md_cell(role)} | {md_cell(holder)} | {start} |" + (f" {until} |" if until else " |")
            for role, holder, start, until in a.roles]
    out.append("")

    out += ["## Timeline", ""]
    if not a.timeline:
        out.append("_Nothing was recorded._")
    for e in a.timeline:
        link = f" ([message in Slack]({e.link}))" if e.link else ""
        body = md(e.text, a.names).replace("\n", "\n  ")
        out.append(f"- **{e.when}** · {e.label} · {md(e.author)}: {body}{link}")
    out.append("")

    out += ["## Actions taken during the incident", ""]
    if a.actions:
        out += ["| # | Action | Owner | Done |", "| --- | --- | --- | --- |"]
        out += [f"| {r.number} | {md_cell(r.text, a.names)} | {md_cell(r.owner)} | {r.done} |" for r in a.actions]
    else:
        out.append("_No actions were logged._")
    out.append("")

    out += [f"## {WHAT_HAPPENED[0]}", "", f"_{WHAT_HAPPENED[1]}_", "", f"## {FIVE_WHYS[0]}", "",
            f"_{FIVE_WHYS[1]}_", "", *["{}. Why? ".format(i) for i in range(1, 6)], "",
            f"**Root cause:** _{TO_FILL}_", ""]
    for heading in LISTS:
        out += [f"## {heading}", "", "- ", ""]
    out += ["## Follow-up actions", "", "| " + " | ".join(FOLLOW_UP_COLUMNS) + " |", "| --- | --- | --- | --- |"]
    out += [f"| {md_cell(r.text, a.names)} | {md_cell(r.owner)} | | |" for r in a.follow_ups] or ["| | | | |"]
    out.append("")
    return "\n".join(out)
