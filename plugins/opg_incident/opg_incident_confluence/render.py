"""The analysis as a Confluence page in storage format (XHTML). Every piece of user text is XML-escaped
(and stripped of characters XML cannot hold), so a `<script>` in a summary stays text; only http(s)
links from the record become links. No clock in here: the same record gives the same page, so
publishing again without a change makes no new version."""
from __future__ import annotations

import re
from html import escape

from opg_incident_web import present, rca

NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text(value: str | None, names: dict | None = None) -> str:
    """User text (Slack markup as plain text, people by name from `names`) escaped for XHTML, line breaks kept."""
    plain = NOT_XML.sub("", present.slack_text(value, names))
    return "<br />".join(escape(line, quote=True) for line in plain.splitlines())


_text = text


def link(url: str | None, label: str) -> str:
    safe = present.safe_url(url)
    return f'<a href="{escape(safe, quote=True)}">{text(label)}</a>' if safe else text(label)


def table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A table; cells are XHTML already."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tbody><tr>{th}</tr>{body}</tbody></table>"


def panel(kind: str, body: str) -> str:
    return (f'<ac:structured-macro ac:name="{kind}"><ac:rich-text-body>{body}</ac:rich-text-body>'
            "</ac:structured-macro>")


def marker(mark: str) -> str:
    """An anchor, invisible on the page, that a page we create carries: proof that we made it."""
    return (f'<ac:structured-macro ac:name="anchor"><ac:parameter ac:name="">opg-incident-{escape(mark)}'
            "</ac:parameter></ac:structured-macro>")


def storage(a: rca.Analysis) -> str:
    def text(value):  # noqa: F811 - every text of the record: people by name
        return _text(value, a.names)

    facts = [(f"<strong>{escape(label)}</strong>", text(value)) for label, value in a.facts]
    if a.channel_name:
        facts.append(("<strong>Comms channel</strong>", "#" + text(a.channel_name)))
    facts.append(("<strong>Living document</strong>", link(a.document_url, a.document_url)))
    out = [
        panel("info", "<p>Written by opg-incident from the incident record; times are in "
                      f"{text(a.zone)}. Publishing again (<code>rca publish</code>) rewrites this page; if it was "
                      "changed here meanwhile, the bot asks first (<code>rca publish --force</code> overwrites "
                      "it).</p>"),
        f"<h1>{text(a.heading)}</h1>",
        "<table><tbody>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts) + "</tbody></table>",
        "<h2>Summary</h2>", _paragraph(text, a.summary, "No summary was recorded."),
        "<h2>Impact</h2>", _paragraph(text, a.impact, "No impact was recorded."),
        "<h2>Roles</h2>",
        table(("Role", "Held by", "From", "Until"), [tuple(text(v) for v in row) for row in a.roles]),
        "<h2>Timeline</h2>",
    ]
    if a.timeline:
        out.append(table(("When", "What", "By", "Entry"), [
            (text(e.when), text(e.label), text(e.author),
             text(e.text) + (" (" + link(e.link, "message in Slack") + ")" if e.link else ""))
            for e in a.timeline]))
    else:
        out.append("<p><em>Nothing was recorded.</em></p>")
    out.append("<h2>Actions taken during the incident</h2>")
    if a.actions:
        out.append(table(("#", "Action", "Owner", "Done"), [
            (str(r.number), text(r.text), text(r.owner), text(r.done)) for r in a.actions]))
    else:
        out.append("<p><em>No actions were logged.</em></p>")
    out += [
        f"<h2>{escape(rca.WHAT_HAPPENED[0])}</h2>", f"<p><em>{escape(rca.WHAT_HAPPENED[1])}</em></p>",
        f"<h2>{escape(rca.FIVE_WHYS[0])}</h2>", f"<p><em>{escape(rca.FIVE_WHYS[1])}</em></p>",
        "<ol>" + "<li>Why? </li>" * 5 + "</ol>",
        f"<p><strong>Root cause:</strong> <em>{escape(rca.TO_FILL)}</em></p>",
    ]
    for heading in rca.LISTS:
        out += [f"<h2>{escape(heading)}</h2>", "<ul><li></li></ul>"]
    out.append("<h2>Follow-up actions</h2>")
    out.append(table(rca.FOLLOW_UP_COLUMNS, [(text(r.text), text(r.owner), "", "") for r in a.follow_ups]
                     or [("", "", "", "")]))
    return "".join(out)


def _paragraph(text, value: str, empty: str) -> str:
    shown = text(value.strip())
    return f"<p>{shown}</p>" if shown else f"<p><em>{escape(empty)}</em></p>"
