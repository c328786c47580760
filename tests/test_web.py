"""The living document over Flask's test client, against incidents built through the core: JSON (the run
contract), the RCA markdown, escaping, the access guard, the index's filters and pages, /stats."""
from __future__ import annotations

import datetime as dt
import re
import types
from pathlib import Path

import pytest
from flask import Flask

from opg_incident_core import IncidentService, load_settings, open_database
from opg_incident_web import register_routes
from opg_incident_web.present import segments, slack_text

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "plugins" / "opg_incident" / "opg_incident_web"
SCRIPT = "<script>document.title='pwned'</script>"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


class Web:
    """A fresh Flask app with the living document, a service on a temporary SQLite and a hand clock."""

    def __init__(self, tmp_path, names=None, **config):
        self.db = open_database(f"sqlite:///{tmp_path / 'web.sqlite'}")
        self.settings = load_settings(ROOT / "plugins" / "opg_incident" / "settings.yml")
        self.now = dt.datetime(2025, 6, 3, 13, 0)  # naive UTC: 14:00 BST
        self.service = IncidentService(lambda: self.settings, admins={"@admin"}, clock=lambda: self.now)
        self.app = Flask("test_web")
        self.config = types.SimpleNamespace(INCIDENT_PUBLIC_URL="https://incidents.example", **config)
        register_routes(self.app, lambda: self.service, lambda: self.settings, self.config, names=names)
        self.client = self.app.test_client()

    def tick(self, **delta):
        self.now += dt.timedelta(**delta)

    def full_incident(self) -> int:
        """Declared, lead, scribe, severity, comms channel, headline, a pin, an action, a note."""
        svc = self.service
        n = svc.declare("Sirius is down", "U01REPORT", summary=SCRIPT + " and <@U02LEAD> is on it",
                        impact="Case workers & donors | cannot log in", severity="critical",
                        lead="U02LEAD").incident.number
        self.tick(minutes=5)
        svc.assign_role(n, "scribe", "U03SCRIBE", "U02LEAD")
        svc.attach_channel(n, "C0INC1", "inc-1-sirius-is-down", "U02LEAD")
        svc.set_headline(n, "C0HEAD", "1748955600.000100")
        pin_at = dt.datetime(2025, 6, 3, 13, 7, 30, tzinfo=dt.timezone.utc)
        svc.record_pin("C0INC1", f"{pin_at.timestamp():.6f}", "U03SCRIBE", "Restarted the <db> &amp; cache",
                       "U03SCRIBE", permalink="https://opg.slack.com/archives/C0INC1/p1748956050000000")
        self.tick(minutes=10)
        svc.log(n, "action", "Write the runbook", "U02LEAD")
        svc.log(n, "note", "See <https://status.example/x|the status page>", "U03SCRIBE")
        return n

    def get(self, url, **kw):
        return self.client.get(url, **kw)


@pytest.fixture
def web(tmp_path):
    w = Web(tmp_path)
    yield w
    w.db.close()


# -- JSON -------------------------------------------------------------------------------------------

NAMES = {"U01REPORT": "Rita <Reporter>", "U02LEAD": "Lee & co", "U03SCRIBE": "Sam"}


def test_people_by_name_on_the_page_in_the_json_and_the_rca_with_their_ids_kept(tmp_path):
    """With the Slack adapter's look-up (cached users.info), people show by display name wherever the record
    names them (roles, authors, owners, mentions in texts), escaped; the JSON keeps the ids beside them."""
    asked = []
    w = Web(tmp_path, names=lambda user: asked.append(user) or NAMES.get(user))
    try:
        n = w.full_incident()
        page = w.get(f"/incidents/{n}").get_data(as_text=True)
        assert "Lee &amp; co" in page and "Rita &lt;Reporter&gt;" in page and ">Sam<" in page
        assert "@Lee &amp; co is on it" in page  # the mention in the summary
        assert "U02LEAD" not in page and "<Reporter>" not in page
        doc = w.get(f"/incidents/{n}.json").get_json()
        assert doc["roles"]["lead"] == "U02LEAD"  # the run contract: ids
        assert doc["role_holders"]["lead"] == {"id": "U02LEAD", "name": "Lee & co"}
        assert doc["people"] == NAMES
        pin = next(e for e in doc["timeline"] if e["kind"] == "pin")
        assert (pin["author"], pin["author_name"]) == ("U03SCRIBE", "Sam")
        assert doc["actions"][0]["owner_name"] == "Lee & co"
        rca = w.get(f"/incidents/{n}/rca.md").get_data(as_text=True)
        assert "| Incident Lead | Lee \\& co |" in rca and "@Lee \\& co is on it" in rca
        assert "Rita \\<Reporter\\>" in rca and "U02LEAD" not in rca
        index = w.get("/incidents").get_data(as_text=True)
        assert "Lee &amp; co" in index
        assert set(asked) == set(NAMES)
    finally:
        w.db.close()


def test_json_carries_the_run_contract(web):
    n = web.full_incident()
    web.tick(hours=1)
    web.service.close(n, "U02LEAD")
    doc = web.get(f"/incidents/{n}.json").get_json()
    contract = {"number", "title", "status", "severity", "summary", "impact", "roles", "timeline", "actions"}
    assert contract <= set(doc)
    assert (doc["number"], doc["title"], doc["status"], doc["severity"]) == (n, "Sirius is down", "closed",
                                                                             "Critical")
    assert doc["summary"].startswith(SCRIPT) and doc["impact"].startswith("Case workers")
    assert doc["roles"] == {"reporter": "U01REPORT", "lead": "U02LEAD", "scribe": "U03SCRIBE"}
    assert doc["roles_by_name"]["Incident Lead"] == "U02LEAD"
    for entry in doc["timeline"]:
        assert {"at", "kind", "text", "author"} <= set(entry)
        assert ISO_WITH_OFFSET.match(entry["at"]), entry["at"]
    kinds = [e["kind"] for e in doc["timeline"]]
    assert kinds[0] == "declared" and kinds[-1] == "closed" and "pin" in kinds
    pin = next(e for e in doc["timeline"] if e["kind"] == "pin")
    assert pin["at"] == "2025-06-03T14:07:30+01:00"  # the message's own time, in Europe/London (BST)
    assert pin["author"] == "U03SCRIBE" and pin["permalink"].startswith("https://opg.slack.com/")
    assert doc["actions"] == [{"number": 1, "text": "Write the runbook", "owner": "U02LEAD", "owner_name": "U02LEAD",
                               "done": False,
                               "created_at": "2025-06-03T14:15:00+01:00", "done_at": None, "done_by": None}]
    assert doc["closed_at"] == "2025-06-03T15:15:00+01:00" and doc["duration_seconds"] == 75 * 60
    assert doc["channel"]["url"] == "https://slack.com/app_redirect?channel=C0INC1"
    assert doc["headline"]["url"] == "https://slack.com/archives/C0HEAD/p1748955600000100"
    assert doc["url"] == f"https://incidents.example/incidents/{n}"


def test_json_times_follow_the_settings_zone(web):
    n = web.full_incident()
    assert web.get(f"/incidents/{n}.json").get_json()["declared_at"] == "2025-06-03T14:00:00+01:00"
    web.settings = web.settings.model_copy(update={"time_zone": "America/New_York"})
    assert web.get(f"/incidents/{n}.json").get_json()["declared_at"] == "2025-06-03T09:00:00-04:00"


def test_unknown_incident_is_404_in_every_form(web):
    assert web.get("/incidents/99").status_code == 404
    assert "no incident 99" in web.get("/incidents/99").get_data(as_text=True)
    response = web.get("/incidents/99.json")
    assert response.status_code == 404 and "no incident 99" in response.get_json()["error"]
    assert web.get("/incidents/99/rca.md").status_code == 404


# -- the RCA draft ----------------------------------------------------------------------------------

def test_rca_draft_has_the_record_and_the_sections_to_fill_in(web):
    n = web.full_incident()
    response = web.get(f"/incidents/{n}/rca.md")
    assert response.status_code == 200 and response.mimetype == "text/markdown"
    md = response.get_data(as_text=True)
    for heading in ("# Incident 1: Sirius is down", "## Summary", "## Impact", "## Roles", "## Timeline",
                    "## Actions taken during the incident", "## What happened", "## Why it happened: five whys",
                    "## What went well", "## What could be improved", "## Follow-up actions"):
        assert f"\n{heading}\n" in "\n" + md, heading
    assert md.count("Why? ") == 5
    assert "\\<script\\>" in md and "<script>" not in md  # escaped for markdown renderers
    assert "and @U02LEAD is on it" in md  # Slack mention as text
    assert "Case workers \\& donors \\| cannot log in" in md  # a pipe cannot break a table
    assert "| Incident Lead | U02LEAD | 3 Jun 2025, 14:00 BST | the end |" in md
    assert "- **3 Jun 2025, 14:07 BST** · Pinned message · U03SCRIBE: Restarted the \\<db\\> \\& cache" in md
    assert "([message in Slack](https://opg.slack.com/archives/C0INC1/p1748956050000000))" in md
    assert "| 1 | Write the runbook | U02LEAD | no |" in md
    assert "| Write the runbook | U02LEAD | | |" in md  # open actions carried into the follow-ups


# -- the incident page ------------------------------------------------------------------------------

def test_incident_page_escapes_user_text(web):
    n = web.full_incident()
    web.service.set_impact(n, "<img src=x onerror=alert(1)>", "U02LEAD")
    html = web.get(f"/incidents/{n}").get_data(as_text=True)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; and @U02LEAD is on it" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Restarted the &lt;db&gt; &amp; cache" in html  # Slack's entities decoded once, then escaped


def test_incident_page_shows_header_roles_timeline_actions_and_links(web):
    n = web.full_incident()
    html = web.get(f"/incidents/{n}").get_data(as_text=True)
    assert '<h1 class="heading-l" id="title">Sirius is down</h1>' in html
    assert 'tag--red">Live<' in html and 'tag--red">Critical<' in html
    assert '<meta http-equiv="refresh" content="30">' in html
    for role, holder in (("Incident Lead", "U02LEAD"), ("Incident Scribe", "U03SCRIBE"),
                         ("Reporter", "U01REPORT")):
        assert re.search(rf"<th scope=\"row\">{role}</th>\s*<td><span class=\"user\">{holder}</span>", html), role
    assert "U03SCRIBE</span> is Incident Scribe from 3 Jun 2025, 14:05 BST" in html  # role history
    assert '<time datetime="2025-06-03T14:07:30+01:00">3 Jun 2025, 14:07 BST</time>' in html  # the pin
    assert '<a href="https://opg.slack.com/archives/C0INC1/p1748956050000000">View message in Slack</a>' in html
    assert 'the status page (<a href="https://status.example/x">https://status.example/x</a>)' in html
    assert "timeline__entry--system" in html and "timeline__entry--pin" in html
    assert '<a href="https://slack.com/app_redirect?channel=C0INC1">#inc-1-sirius-is-down</a>' in html
    assert 'href="https://slack.com/archives/C0HEAD/p1748955600000100"' in html
    assert "Write the runbook" in html and 'tag--grey">To do<' in html
    web.service.complete_action(n, 1, "U02LEAD")
    web.service.close(n, "U02LEAD")
    html = web.get(f"/incidents/{n}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in html and 'tag--grey">Resolved<' in html and 'tag--green">Done<' in html
    assert "(Confluence)" not in html  # not published yet: the draft only
    page = "https://opg.atlassian.net/wiki/spaces/OPG/pages/10001/Incident+1"
    web.service.record_rca_published(n, page, "U02LEAD", 1)
    html = web.get(f"/incidents/{n}").get_data(as_text=True)
    assert f'<a href="{page}">Root-cause analysis (Confluence)</a>' in html
    assert 'Root-cause analysis draft (markdown)</a>' in html


def test_drills_and_unsafe_links_are_marked_not_linked(web):
    n = web.service.declare("Practice run", "U01", drill=True).incident.number
    web.service.attach_channel(n, "C0DRILL", "inc-2-practice", "U01")
    web.service.record_pin("C0DRILL", "1748956050.000100", "U01", "pinned", "U01", permalink="javascript:alert(1)")
    html = web.get(f"/incidents/{n}").get_data(as_text=True)
    assert 'tag--yellow">Drill<' in html and "This is a drill" in html
    assert "javascript:" not in html
    assert web.get(f"/incidents/{n}.json").get_json()["timeline"][-1]["permalink"] is None


def test_pages_send_security_headers_and_templates_never_mark_text_safe(web):
    n = web.full_incident()
    for url in ("/incidents", f"/incidents/{n}", f"/incidents/{n}.json", f"/incidents/{n}/rca.md", "/stats"):
        headers = web.get(url).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"] and "script-src" not in headers[
            "Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"
    for template in (WEB / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"\|\s*safe\b", text) and "Markup" not in text and "autoescape false" not in text
    css = web.get("/incidents/style.css")
    assert css.status_code == 200 and css.mimetype == "text/css" and "http" not in css.get_data(as_text=True)


# -- the index --------------------------------------------------------------------------------------

def _rows(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<td data-label="No.">(\d+)</td>', html)]


def test_index_lists_newest_first_in_pages_with_filters(web):
    for i in range(1, 31):
        out = web.service.declare(f"Incident number {i}", "U01", drill=(i % 10 == 0),
                                  lead="U02" if i == 30 else None)
        if i % 3 == 0:
            web.service.close(out.incident.number, "@admin")
        web.tick(hours=1)
    html = web.get("/incidents").get_data(as_text=True)
    assert _rows(html) == list(range(30, 5, -1)) and "30 incidents, page 1 of 2" in html
    assert 'rel="next" href="/incidents?status=all&amp;drills=with&amp;page=2"' in html
    assert '<td data-label="Lead"><span class="user">U02</span>' in html
    assert "3 Jun 2025, 14:00 BST" not in html and "4 Jun 2025, 19:00 BST" in html  # started, no 1 on page 2
    assert _rows(web.get("/incidents?page=2").get_data(as_text=True)) == [5, 4, 3, 2, 1]
    assert _rows(web.get("/incidents?page=3").get_data(as_text=True)) == []
    assert _rows(web.get("/incidents?status=closed").get_data(as_text=True)) == list(range(30, 0, -3))
    open_ = _rows(web.get("/incidents?status=open&drills=without").get_data(as_text=True))
    assert open_ == [i for i in range(30, 0, -1) if i % 3 and i % 10]
    only = web.get("/incidents?drills=only").get_data(as_text=True)
    assert _rows(only) == [30, 20, 10] and "3 incidents" in only and only.count('tag--yellow">Drill<') == 3
    for bad in ("status=maybe", "drills=some", "page=0", "page=x"):
        response = web.get(f"/incidents?{bad}")
        assert response.status_code == 400 and "not valid" in response.get_data(as_text=True), bad


def test_index_past_the_count_cap_says_more_than_and_pages_by_next_and_previous(web, monkeypatch):
    """Counting stops at the cap, so the index costs the same however long the history is."""
    from opg_incident_web import routes
    monkeypatch.setattr(routes, "COUNT_CAP", 10)
    monkeypatch.setattr(routes, "PER_PAGE", 5)
    for i in range(1, 13):
        web.service.declare(f"Incident number {i}", "U01")
    first = web.get("/incidents").get_data(as_text=True)
    assert _rows(first) == [12, 11, 10, 9, 8] and "More than 10 incidents, page 1" in first
    assert 'rel="next" href="/incidents?status=all&amp;drills=with&amp;page=2"' in first and 'rel="prev"' not in first
    last = web.get("/incidents?page=3").get_data(as_text=True)
    assert _rows(last) == [2, 1] and 'rel="prev"' in last and 'rel="next"' not in last
    assert "<span>Page 3</span>" in last
    exact = web.get("/incidents?page=2&status=all&drills=only").get_data(as_text=True)
    assert "0 incidents" in exact  # under the cap the count is exact


def test_index_queries_use_indexes(web):
    """The default page walks the unique index on number (no sort); status filters search the status
    index; counts too. No page reads the whole table."""
    web.service.declare("One", "U01")
    from opg_incident_core.queries import _filtered
    from opg_incident_core.storage import Incident

    def plan(query) -> str:
        sql, params = query.sql()
        return " ".join(str(r) for r in web.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()).upper()

    newest = plan(_filtered("all", "with").order_by(Incident.number.desc()).limit(25))
    assert "USING INDEX INCIDENT_NUMBER" in newest and "TEMP B-TREE" not in newest, newest
    assert "USING INDEX INCIDENT_STATUS" in plan(_filtered("closed", "without").order_by(Incident.number.desc()))
    assert "USING COVERING INDEX INCIDENT_STATUS" in plan(_filtered("open").select(Incident.id))


# -- /stats -----------------------------------------------------------------------------------------

def test_stats_count_per_severity_and_time_to_resolve_without_drills(web):
    web.now = dt.datetime(2025, 4, 10, 9, 0)
    for sev, hours, drill in (("critical", 2, False), ("major", 4, False), ("critical", 6, True)):
        n = web.service.declare(f"{sev} thing", "U01", severity=sev, drill=drill).incident.number
        web.tick(hours=hours)
        web.service.close(n, "@admin")
    web.now = dt.datetime(2025, 6, 1, 9, 0)
    web.service.declare("Still open", "U01")
    html = web.get("/stats?months=3&end=2025-06").get_data(as_text=True)
    assert "To 2025-06, the last 3 months: 3 incidents declared, 2 resolved. Drills are left out." in html
    assert html.count("<svg") == 2 and "<script" not in html
    assert "<tr><td>April 2025</td><td>1</td><td>1</td><td>0</td><td>0</td><td>2</td></tr>" in html
    assert "<tr><td>June 2025</td><td>0</td><td>0</td><td>0</td><td>1</td><td>1</td></tr>" in html
    assert "<tr><td>April 2025</td><td>2</td><td>3.0 h</td><td>4.0 h</td></tr>" in html  # median 3 h, drill out
    assert "<title>April 2025: 1 Critical</title>" in html
    assert web.get("/stats?months=0").status_code == 400 and web.get("/stats?end=June").status_code == 400


# -- access -----------------------------------------------------------------------------------------

def test_token_guard_bearer_or_token_once_then_cookie(tmp_path):
    web = Web(tmp_path, INCIDENT_WEB_TOKEN="s3cret-token")
    n = web.full_incident()
    refused = web.get(f"/incidents/{n}")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Sirius" not in refused.get_data(as_text=True)
    refused_json = web.get(f"/incidents/{n}.json")
    assert refused_json.status_code == 401 and "need access" in refused_json.get_json()["error"]
    assert web.get("/incidents?token=wrong").status_code == 401
    ok = web.get(f"/incidents/{n}.json", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and ok.get_json()["number"] == n

    fresh = web.app.test_client()
    once = fresh.get("/incidents?status=open&token=s3cret-token")
    assert once.status_code == 303 and once.headers["Location"] == "/incidents?status=open"
    cookie = once.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie and "s3cret" not in cookie
    assert fresh.get("/incidents?status=open").status_code == 200  # the cookie now
    assert fresh.get(f"/incidents/{n}/rca.md").status_code == 200
    assert web.get("/incidents/style.css").status_code == 200  # the look of the refusal page is public
    web.db.close()


def test_trusted_header_from_the_proxy(tmp_path):
    web = Web(tmp_path, INCIDENT_WEB_TRUSTED_HEADER="X-Forwarded-Email")
    n = web.full_incident()
    assert web.get(f"/incidents/{n}").status_code == 401
    assert web.get(f"/incidents/{n}", headers={"X-Forwarded-Email": "  "}).status_code == 401
    page = web.get(f"/incidents/{n}", headers={"X-Forwarded-Email": "<b>ann@example.gov.uk</b>"})
    assert page.status_code == 200
    assert "Signed in as &lt;b&gt;ann@example.gov.uk&lt;/b&gt;." in page.get_data(as_text=True)
    web.db.close()


# -- registration -----------------------------------------------------------------------------------

def test_registering_again_adds_no_rule_and_serves_the_new_service(web):
    n = web.full_incident()
    assert web.get(f"/incidents/{n}").status_code == 200  # Flask has now served a request
    rules = sorted(r.rule for r in web.app.url_map.iter_rules())
    calls = []

    def new_service():
        calls.append(1)
        return web.service

    register_routes(web.app, new_service, lambda: web.settings, web.config)
    assert sorted(r.rule for r in web.app.url_map.iter_rules()) == rules
    assert web.get(f"/incidents/{n}.json").status_code == 200 and calls

    late = Flask("late")
    late.add_url_rule("/health", "health", lambda: "ok")
    assert late.test_client().get("/health").status_code == 200  # served first, then registered
    register_routes(late, lambda: web.service, lambda: web.settings, web.config)
    assert late.test_client().get(f"/incidents/{n}.json").get_json()["number"] == n


# -- Slack markup as text ---------------------------------------------------------------------------

def test_slack_markup_becomes_plain_text():
    assert slack_text("<@U123> and <@W9|ann>") == "@U123 and @W9"
    assert slack_text("in <#C42|inc-1> <!here> <!channel>") == "in #inc-1 @here @channel"
    assert slack_text("<https://x.example/a|docs> <mailto:a@b.c>") == "docs (https://x.example/a) mailto:a@b.c"
    assert slack_text("&lt;script&gt; &amp;lt;") == "<script> &lt;"
    assert slack_text("<script>x</script>") == "<script>x</script>"  # left for the template to escape
    assert segments("go to https://a.example/x. <javascript:alert(1)|y>") == [
        ("text", "go to ", ""), ("link", "https://a.example/x", "https://a.example/x"),
        ("text", ". <javascript:alert(1)|y>", "")]


def test_markdown_escaping_keeps_user_text_as_text():
    from opg_incident_web.rca import md

    assert md("- not a list\n1. nor this\n# nor a heading") == "\\- not a list\n1\\. nor this\n\\# nor a heading"
    assert md("[x](javascript:alert(1)) <b> *a* _b_ `c` a|b &lt;") == \
        "\\[x\\](javascript:alert(1)) \\<b\\> \\*a\\* \\_b\\_ \\`c\\` a\\|b \\<"
