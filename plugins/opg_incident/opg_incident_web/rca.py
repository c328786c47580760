"""The root-cause-analysis draft in markdown, ready to paste into Confluence: the record (summary,
impact, roles, timeline, actions) and the sections the team fills in after the incident.

User text is markdown-escaped (CommonMark backslash escapes), so a `<script>` or a stray `|` in a
summary stays text in whatever renders the draft.
"""
from __future__ import annotations

import datetime as dt
import re

from . import present

MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#&])")
LINE_START = re.compile(r"^([ \t]*)(?:([-+=])|(\d+)([.)]))", re.MULTILINE)
TO_FILL = "_To be filled in by the team._"


def md(text: str | None) -> str:
    """Escape user text for markdown; Slack markup becomes plain text first."""
    escaped = MD_SPECIAL.sub(r"\\\1", present.slack_text(text))

    def line_start(m: re.Match) -> str:  # "- x", "+ x", "1. x" at a line start would make a list
        return m.group(1) + ("\\" + m.group(2) if m.group(2) else m.group(3) + "\\" + m.group(4))

    return LINE_START.sub(line_start, escaped)


def md_cell(text: str | None) -> str:
    """Escape for a table cell: one line."""
    return " ".join(md(text).split()) or " "


def md_block(text: str | None, empty: str) -> str:
    value = md(text).strip()
    if not value:
        return f"_{empty}_"
    # Keep the author's line breaks: a hard break (two spaces) inside a paragraph.
    return "\n".join(line.rstrip() + ("  " if line.strip() else "") for line in value.splitlines()).rstrip()


def draft(inc, timeline, actions, history, settings, *, url: str, now: dt.datetime | None = None) -> str:
    zone = settings.zone
    when = lambda value: present.when(value, zone)  # noqa: E731
    sev_name, _ = present.severity_tag(settings, inc.severity)
    role_name = {r.key: r.name for r in settings.roles}
    kind = "Report" if inc.report else ("Drill" if inc.drill else "Incident")
    out: list[str] = [
        f"# {kind} {inc.number}: {md(inc.title)}",
        "",
        f"Root-cause analysis, draft of {when(now or dt.datetime.now(dt.timezone.utc))}, written by "
        f"opg-incident from the incident record. Times are in {settings.time_zone}.",
        "",
        "| | |",
        "| --- | --- |",
        f"| Status | {present.status_tag(inc)[0]} |",
        f"| Severity | {md_cell(sev_name)} |",
        f"| Declared | {when(inc.declared_at)} |",
        f"| Resolved | {when(inc.closed_at) if inc.closed_at else 'not yet'} |",
        f"| Duration | {present.took(inc)} |",
    ]
    if inc.channel_name:
        out.append(f"| Comms channel | \\#{md_cell(inc.channel_name)} |")
    out += [f"| Living document | {url} |", ""]

    out += ["## Summary", "", md_block(inc.summary, "No summary was recorded."), "",
            "## Impact", "", md_block(inc.impact, "No impact was recorded."), "", "## Roles", "",
            "| Role | Held by | From | Until |", "| --- | --- | --- | --- |"]
    for h in history:
        out.append(f"| {md_cell(role_name.get(h.role, h.role))} | {md_cell(h.holder)} | {when(h.assigned_at)} | "
                   f"{when(h.released_at) if h.released_at else 'the end'} |")
    out.append(f"| Reporter | {md_cell(inc.reporter)} | {when(inc.declared_at)} | |")
    out.append("")

    out += ["## Timeline", ""]
    if not timeline:
        out.append("_Nothing was recorded._")
    for e in timeline:
        link = (f" ([message in Slack]({e.permalink}))"
                if present.safe_url(e.permalink) and not re.search(r"[\s()<>]", e.permalink) else "")
        body = md(e.text).replace("\n", "\n  ")
        out.append(f"- **{when(e.at)}** · {present.kind_label(e.kind)} · {md(e.author)}: {body}{link}")
    out.append("")

    out += ["## Actions taken during the incident", ""]
    if actions:
        out += ["| # | Action | Owner | Done |", "| --- | --- | --- | --- |"]
        out += [f"| {a.number} | {md_cell(a.text)} | {md_cell(a.owner)} | "
                f"{('yes, ' + when(a.done_at)) if a.done else 'no'} |" for a in actions]
    else:
        out.append("_No actions were logged._")
    out.append("")

    out += [
        "## What happened", "",
        "_In a few paragraphs: what users saw, what the team saw, and how service was restored._", "",
        "## Why it happened: five whys", "",
        "_Start from the problem and ask why until you reach a cause you can act on._", "",
        "1. Why? ", "2. Why? ", "3. Why? ", "4. Why? ", "5. Why? ", "",
        "**Root cause:** " + TO_FILL, "",
        "## What went well", "", "- ", "",
        "## What could be improved", "", "- ", "",
        "## Follow-up actions", "",
        "| Action | Owner | Due | Ticket |", "| --- | --- | --- | --- |",
    ]
    open_actions = [a for a in actions if not a.done]
    out += [f"| {md_cell(a.text)} | {md_cell(a.owner)} | | |" for a in open_actions] or ["| | | | |"]
    out.append("")
    return "\n".join(out)
