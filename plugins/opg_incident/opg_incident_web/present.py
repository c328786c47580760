"""How the record reads on the web: times in the settings' zone, Slack markup as plain text, links to
Slack, tags, and the JSON document. Returns plain data; HTML escaping is left to Jinja's autoescape.
"""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote, urlsplit

from opg_incident_core.text import duration

SLACK_MARKUP = re.compile(r"<([^<>\n]{1,2000})>")
BARE_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
SAFE_URL = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")
MENTIONED = re.compile(r"<@([UW][A-Z0-9]{2,31})(?:\|[^>]*)?>")
PERSON_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")

# What each timeline kind is called on the page; unknown kinds fall back to their name.
KIND_LABELS = {
    "declared": "Declared", "severity": "Severity", "role": "Role", "summary": "Summary",
    "impact": "Impact", "action": "Action", "action_done": "Action done", "note": "Note",
    "decision": "Decision", "pin": "Pinned message", "closed": "Closed", "reopened": "Reopened",
    "channel": "Comms channel", "handover": "Handover", "checkin": "Check-in",
    "rca_published": "Analysis published",
}
SCRIBE_KINDS = ("note", "decision", "action")


# -- text -------------------------------------------------------------------------------------------

def slack_text(text: str | None, names: dict | None = None) -> str:
    """Slack's markup as plain text: `<@U123>` → `@Alice` (`names`, else `@U123`), `<#C1|name>` → `#name`,
    `<!here>` → `@here`, `<url|label>` → `label (url)`; Slack's own `&lt; &gt; &amp;` back to characters.
    Anything else (`<script>` typed on the console, say) is left as it is, to be escaped by the template."""
    def token(match: re.Match) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@") and SLACK_ID.match(target[1:]):
            return "@" + (names or {}).get(target[1:], target[1:])
        if target.startswith("#") and SLACK_ID.match(target[1:]):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            word = target[1:].split("^")[0]
            if word.startswith("subteam"):
                return "@" + (label.lstrip("@") or word)
            if word.startswith("date"):
                return label or word
            return "@" + (label.lstrip("@") or word)
        if SAFE_URL.match(target):
            return f"{label} ({target})" if label and label != target else target
        return match.group(0)

    text = SLACK_MARKUP.sub(token, text or "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def segments(text: str | None, names: dict | None = None) -> list[tuple[str, str, str]]:
    """Plain text cut into ("text", value, "") and ("link", url, label) pieces for the template, which
    escapes every piece; only http(s) and mailto URLs ever become links."""
    out: list[tuple[str, str, str]] = []
    plain = slack_text(text, names)
    pos = 0
    for match in BARE_URL.finditer(plain):
        if match.start() > pos:
            out.append(("text", plain[pos:match.start()], ""))
        out.append(("link", match.group(0), match.group(0)))
        pos = match.end()
    if pos < len(plain):
        out.append(("text", plain[pos:], ""))
    return out


def safe_url(url: str | None) -> str | None:
    """A URL fit for an href (http, https, mailto), or None."""
    return url if url and SAFE_URL.match(url) else None


def user(user_id: str | None, names: dict | None = None) -> str:
    """A user as shown: their display name (`names`, from people()), else the stored id as it is."""
    return (names or {}).get(user_id or "") or user_id or "nobody"


def people(ids, texts=(), lookup=None) -> dict:
    """{Slack user id: display name} of `ids` and of everyone mentioned in `texts`, from `lookup` (the Slack
    adapter's cached users.info; None: no names, ids are shown). An id it cannot name is left out."""
    wanted = {i for i in ids if i and PERSON_ID.match(i)}
    for text in texts:
        wanted.update(MENTIONED.findall(text or ""))
    if lookup is None:
        return {}
    found = {}
    for user_id in sorted(wanted):
        try:
            name = lookup(user_id)
        except Exception:  # noqa: BLE001 - a name is a nicety: the id is shown instead
            name = None
        if name and name != user_id:
            found[user_id] = name
    return found


def record_people(inc, timeline, actions, history, pending=(), lookup=None) -> dict:
    """people() of everyone an incident's record names: roles, authors, owners, and mentions in its texts."""
    ids = [inc.reporter, inc.closed_by, *inc.roles.values(), *(e.author for e in timeline),
           *(a.owner for a in actions), *(a.done_by for a in actions), *(h.holder for h in history),
           *(h.assigned_by for h in history), *(p.to_user for p in pending), *(p.awaiting for p in pending)]
    texts = [inc.summary, inc.impact, *(e.text for e in timeline), *(a.text for a in actions)]
    return people(ids, texts, lookup)


def named(user_id: str | None, names: dict) -> dict | None:
    """A person in the JSON: {"id": "U…", "name": "Alice"} (the name is the id when none is known)."""
    return {"id": user_id, "name": user(user_id, names)} if user_id else None


# -- time -------------------------------------------------------------------------------------------

def local(value: dt.datetime | None, zone) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(zone)


def when(value: dt.datetime | None, zone, seconds: bool = False) -> str:
    """"3 Nov 2025, 14:05 GMT": date, time and zone, always all three."""
    d = local(value, zone)
    if d is None:
        return "-"
    clock = f"{d:%H:%M:%S}" if seconds else f"{d:%H:%M}"
    return f"{d.day} {d:%b %Y}, {clock} {d.tzname()}"


def iso(value: dt.datetime | None, zone) -> str | None:
    """ISO 8601 with the offset of the settings' zone, e.g. 2025-06-03T14:05:09+01:00."""
    d = local(value, zone)
    return d.isoformat(timespec="seconds") if d else None


def took(inc, now: dt.datetime | None = None) -> str:
    end = inc.closed_at or now or dt.datetime.now(dt.timezone.utc)
    text = duration(end - inc.declared_at)
    return text if inc.closed_at else f"{text} so far"


# -- Slack links ------------------------------------------------------------------------------------

def slack_web_base(api_url: str | None) -> str:
    """The Slack web address that goes with the Web API base: https://slack.com, https://slack-gov.com."""
    parts = urlsplit(api_url or "https://slack.com/api/")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "https://slack.com"
    return f"{parts.scheme}://{parts.netloc}"


def channel_url(base: str, channel_id: str | None) -> str | None:
    if not channel_id or not SLACK_ID.match(channel_id):
        return None
    return f"{base}/app_redirect?channel={quote(channel_id)}"


def message_url(base: str, channel_id: str | None, ts: str | None) -> str | None:
    if not channel_id or not ts or not SLACK_ID.match(channel_id) or not re.match(r"^\d+\.\d+$", ts):
        return None
    return f"{base}/archives/{quote(channel_id)}/p{ts.replace('.', '')}"


# -- tags -------------------------------------------------------------------------------------------

def status_tag(inc) -> tuple[str, str]:
    """(text, css modifier) for the status tag."""
    if not inc.is_open:
        return "Resolved", "grey"
    return ("Reported", "blue") if inc.report else ("Live", "red")


def severity_tag(settings, key: str | None) -> tuple[str, str]:
    sev = settings.severity(key)
    if sev is None:
        return ("Unknown severity" if key else "No severity"), "grey"
    rank = list(settings.severities).index(sev)
    return sev.name, ("red", "orange", "green")[min(rank, 2)]


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


def kind_category(kind: str) -> str:
    """pin (from Slack), scribe (logged by people) or system (logged by the bot)."""
    if kind == "pin":
        return "pin"
    return "scribe" if kind in SCRIBE_KINDS else "system"


# -- JSON -------------------------------------------------------------------------------------------

def incident_document(inc, timeline, actions, history, settings, *, url: str, slack_base: str,
                      pending=(), names: dict | None = None) -> dict:
    """The living document as data (the run contract: number, title, status, severity, summary,
    impact, roles, timeline of {at, kind, text, author} with `at` in ISO 8601 with offset, actions). People
    are stored ids; beside them, their names: `people` {id: name}, `role_holders` {role: {"id", "name"}},
    `author_name` / `owner_name` (`names`: from record_people)."""
    names = names or {}
    zone = settings.zone
    sev = settings.severity(inc.severity)
    role_name = {r.key: r.name for r in settings.roles}
    return {
        "number": inc.number,
        "title": inc.title,
        "status": inc.status,
        "status_text": status_tag(inc)[0],
        "live": inc.is_open and not inc.report,
        "report": inc.report,
        "drill": inc.drill,
        "severity": sev.name if sev else inc.severity,
        "severity_key": inc.severity,
        "summary": inc.summary,
        "impact": inc.impact,
        "declared_at": iso(inc.declared_at, zone),
        "closed_at": iso(inc.closed_at, zone),
        "closed_by": inc.closed_by,
        "duration_seconds": int(((inc.closed_at or dt.datetime.now(dt.timezone.utc)) - inc.declared_at)
                                .total_seconds()),
        "time_zone": settings.time_zone,
        "reporter": inc.reporter,
        "roles": dict(inc.roles),
        "roles_by_name": {role_name.get(k, k): v for k, v in inc.roles.items()},
        "role_holders": {k: named(v, names) for k, v in inc.roles.items()},
        "people": dict(sorted(names.items())),
        "role_history": [
            {"role": h.role, "role_name": role_name.get(h.role, h.role), "holder": h.holder,
             "assigned_by": h.assigned_by, "from": iso(h.assigned_at, zone), "until": iso(h.released_at, zone)}
            for h in history],
        "pending_handovers": [
            {"id": h.id, "role": h.role, "role_name": role_name.get(h.role, h.role), "to": h.to_user,
             "awaiting": h.awaiting, "requested_by": h.requested_by, "expires_at": iso(h.expires_at, zone)}
            for h in pending],
        "timeline": [
            {"id": e.id, "at": iso(e.at, zone), "kind": e.kind, "text": e.text, "author": e.author,
             "author_name": user(e.author, names),
             "permalink": safe_url(e.permalink),
             "files": [{"name": f.get("name"), "url": safe_url(f.get("url"))} for f in e.files]}
            for e in timeline],
        "actions": [
            {"number": a.number, "text": a.text, "owner": a.owner, "owner_name": user(a.owner, names),
             "done": a.done,
             "created_at": iso(a.created_at, zone), "done_at": iso(a.done_at, zone), "done_by": a.done_by}
            for a in actions],
        "channel": {"id": inc.channel_id, "name": inc.channel_name,
                    "url": channel_url(slack_base, inc.channel_id)} if inc.channel_id else None,
        "headline": {"channel_id": inc.headline_channel_id, "ts": inc.headline_ts,
                     "url": message_url(slack_base, inc.headline_channel_id, inc.headline_ts)}
        if inc.headline_ts else None,
        "url": url,
        "rca_url": safe_url(inc.rca_url),  # the published analysis (Confluence), once published
    }
