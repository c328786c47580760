"""The Confluence page in storage format (escaping, well-formed XHTML, the sections), the settings of
`confluence:`, and the migration that makes confluence_page."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from opg_incident_core import parse_settings
from opg_incident_core.errors import SettingsError
from opg_incident_web import rca

LEAD, SCRIBE = "U0LEAD001", "U0SCRIBE2"
EVIL = "<script>alert(1)</script> & <!channel> ]]> \x07bell"


@pytest.fixture
def record(service, clock):
    n = service.declare(EVIL, "U0REPORT3", lead=LEAD, summary="Line one\n<b>bold?</b> & more",
                        impact="Donors | cannot pay", severity="major").incident.number
    clock.advance(minutes=5)
    service.assign_role(n, "scribe", SCRIBE, LEAD)
    service.log(n, "action", "Restart <the> workers", LEAD)
    service.log(n, "note", "See <https://status.example/x?a=1&b=2|the status page>", SCRIBE)
    service.attach_channel(n, "C0X", "inc-1", LEAD)
    service.record_pin("C0X", "1709632800.000100", SCRIBE, "Pinned <evil> text", SCRIBE,
                       permalink="javascript:alert(1)")
    service.complete_action(n, 1, LEAD)
    service.log(n, "action", "Write the runbook", LEAD)
    clock.advance(minutes=30)
    service.close(n, LEAD)
    return n


def page(service, settings, number):
    from opg_incident_confluence import render

    analysis = rca.analysis(*rca.gather(service, number), settings, url=f"https://incidents.example/incidents/{number}")
    return render.storage(analysis)


def parse(body: str) -> ET.Element:
    """Storage format is XHTML with Confluence's ac: and ri: prefixes: well-formed once they are declared."""
    return ET.fromstring('<root xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource">'
                         f"{body}</root>")


def test_the_page_is_well_formed_and_user_text_stays_text(service, shipped_settings, record):
    body = page(service, shipped_settings, record)
    root = parse(body)  # raises on anything that is not well-formed
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "\x07" not in body  # XML cannot hold it; Confluence would refuse the page
    texts = "".join(root.itertext())
    assert "<script>alert(1)</script> & @channel ]]> bell" in texts  # as the person wrote it, as text
    assert "Donors | cannot pay" in texts
    assert [el.tag for el in root.iter() if el.tag in ("script", "b")] == []
    summary = root.findall("p")[0]  # the first paragraph of the page itself (the info panel holds its own)
    assert [t.strip() for t in summary.itertext()] == ["Line one", "<b>bold?</b> & more"]
    assert len(summary.findall("br")) == 1


def test_the_page_has_the_record_and_the_sections_to_fill_in(service, shipped_settings, record):
    root = parse(page(service, shipped_settings, record))
    headings = [h.text for h in root.findall("h2")]
    assert headings == ["Summary", "Impact", "Roles", "Timeline", "Actions taken during the incident", "What happened",
                        "Why it happened: five whys", "What went well", "What could be improved",
                        "Follow-up actions"]
    assert [li.text for li in root.find("ol")] == ["Why? "] * 5
    facts = {tr.find("th").findtext("strong"): "".join(tr.find("td").itertext())
             for tr in root.find("table").iter("tr")}
    assert facts["Status"] == "Resolved" and facts["Severity"] == "Major"
    assert facts["Declared"] == "5 Mar 2024, 10:00 GMT" and facts["Resolved"] == "5 Mar 2024, 10:35 GMT"
    tables = root.findall("table")
    roles = [[("".join(td.itertext())) for td in tr.findall("td")] for tr in tables[1].iter("tr")][1:]
    assert ["Incident Lead", LEAD, "5 Mar 2024, 10:00 GMT", "the end"] in roles
    timeline = [[("".join(td.itertext())) for td in tr.findall("td")] for tr in tables[2].iter("tr")][1:]
    assert any(row[1] == "Pinned message" and row[3] == "Pinned <evil> text" for row in timeline)
    links = [a.get("href") for a in root.iter("a")]
    assert not any(h.startswith("javascript:") for h in links)  # an unsafe permalink is not a link
    assert "https://incidents.example/incidents/1" in links
    actions = [[("".join(td.itertext())) for td in tr.findall("td")] for tr in tables[3].iter("tr")][1:]
    assert actions == [["1", "Restart <the> workers", LEAD, "yes, 5 Mar 2024, 10:05 GMT"],
                       ["2", "Write the runbook", LEAD, "no"]]
    follow_ups = [[("".join(td.itertext())) for td in tr.findall("td")] for tr in tables[-1].iter("tr")][1:]
    assert follow_ups == [["Write the runbook", LEAD, "", ""]]  # the open action carried over


def test_the_same_record_gives_the_same_page_and_a_change_a_different_one(service, shipped_settings, record, clock):
    first = page(service, shipped_settings, record)
    clock.advance(hours=3)
    assert page(service, shipped_settings, record) == first  # no clock in the page: nothing new to publish
    service.set_summary(record, "Root cause: an expired certificate", LEAD)
    assert "an expired certificate" in page(service, shipped_settings, record)


BASE = "roles: [{key: lead, name: L, description: d}]\nseverities: [{key: a, name: A}]\n"


def test_confluence_settings_are_checked():
    settings = parse_settings(BASE + "confluence: {space: OPG, parent: '12345', labels: [incident, post-mortem]}\n")
    assert (settings.confluence.space, settings.confluence.parent) == ("OPG", "12345")
    assert settings.confluence.title_pattern == "Incident {number}: {title} — root cause analysis"
    with pytest.raises(SettingsError, match=r"confluence.title_pattern: .*placeholders: \{number\}, \{title\}"):
        parse_settings(BASE + "confluence: {title_pattern: 'RCA {nr}'}\n")
    with pytest.raises(SettingsError, match="must contain {number}"):
        parse_settings(BASE + "confluence: {title_pattern: 'RCA {title}'}\n")
    with pytest.raises(SettingsError, match=r":3: confluence.labels\[0\]: 'Post Mortem' is not a Confluence label"):
        parse_settings(BASE + "confluence: {labels: [Post Mortem]}\n")


def test_the_title_comes_from_the_pattern(service, shipped_settings):
    from types import SimpleNamespace

    from opg_incident_confluence import Target

    inc = service.declare("Payments <!here> fail", "U0REPORT3").incident
    settings = parse_settings(BASE + "confluence: {title_pattern: '{date} RCA {number} {title}'}\n")
    target = Target.of(settings, SimpleNamespace(CONFLUENCE_URL="https://opg.atlassian.net", CONFLUENCE_SPACE="ENV"))
    assert target.title_for(inc) == "2024-03-05 RCA 1 Payments @here fail"
    assert target.url == "https://opg.atlassian.net/wiki" and target.space == "ENV"  # the environment wins
    assert "CONFLUENCE_TOKEN" in " ".join(target.missing()) and "token" not in repr(target)
    long = service.declare("x" * 290, "U0REPORT3").incident
    assert len(target.title_for(long)) == 255


def test_migration_2_makes_confluence_page_once_with_the_adapter_columns(db):
    from playhouse.migrate import SchemaMigrator

    from opg_incident_confluence.store import ConfluencePage
    from opg_incident_core import migrations, storage

    assert migrations.current_version(db) == len(migrations.MIGRATIONS) >= 2
    columns = {c.name for c in db.get_columns("confluence_page")}
    assert columns == {f.column_name for f in ConfluencePage._meta.sorted_fields}
    assert "rca_url" in {c.name for c in db.get_columns("incident")}
    migrations._v2_rca_publishing(db, SchemaMigrator.from_database(db))  # again: changes nothing, fails nothing
    assert {c.name for c in db.get_columns("confluence_page")} == columns
    assert any(i.unique and i.columns == ["incident_id"] for i in db.get_indexes("confluence_page"))
    assert storage.Incident._meta.table_name == "incident"
