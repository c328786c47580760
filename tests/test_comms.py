"""Keeping everyone informed (issue 8): who may post updates, the timeline, bad input, sharing the RCA."""
from __future__ import annotations

import pytest

from opg_incident_core import InvalidInput, NotAllowed
from opg_incident_core.chat import Caller, ChatCommands
from opg_incident_core.settings import parse_settings
from conftest import ADMIN, SHIPPED_SETTINGS

LEAD, COMMS, OTHER = "U0LEAD001", "U0COMMS02", "U0OTHER03"


@pytest.fixture
def incident(service):
    number = service.declare("Payments are failing", OTHER, severity="critical").incident.number
    service.assign_role(number, "lead", LEAD, LEAD)
    return number


def test_updates_come_from_the_lead_when_there_is_no_comms_lead(service, incident):
    with pytest.raises(NotAllowed, match="Incident Lead"):
        service.post_update(incident, "We are on it", OTHER)
    out = service.post_update(incident, "We are on it", LEAD)
    assert [h.kind for h in out.happened] == ["update"]
    [update] = service.updates(incident)
    assert (update.text, update.author, update.status, update.severity) == ("We are on it", LEAD, "Live", "critical")


def test_with_a_comms_lead_they_and_the_lead_post_and_the_cadence_is_the_comms_leads_choice(service, incident,
                                                                                              clock):
    service.assign_role(incident, "comms", COMMS, COMMS)
    with pytest.raises(NotAllowed, match=r"^Only the Communications Lead \(.*\), the Incident Lead \(.*\) or a bot "
                                         r"admin may post the stakeholder updates of incident 1\.$"):
        service.post_update(incident, "from someone else", OTHER)
    service.post_update(incident, "from comms", COMMS)
    service.post_update(incident, "from the lead", LEAD)  # recorded as the lead's
    service.post_update(incident, "from an admin", ADMIN)
    assert [(u.text, u.author) for u in service.updates(incident)] == [
        ("from comms", COMMS), ("from the lead", LEAD), ("from an admin", ADMIN)]
    assert [(e.text, e.author) for e in service.timeline(incident) if e.kind == "update"] == [
        ("Stakeholder update: from comms", COMMS), ("Stakeholder update: from the lead", LEAD),
        ("Stakeholder update: from an admin", ADMIN)]

    assert service.update_cadence(incident) == 30  # the settings' default for a critical incident
    with pytest.raises(NotAllowed, match=r"^Only the Communications Lead \(.*\) or a bot admin may choose how often"):
        service.set_update_cadence(incident, 15, LEAD)
    service.set_update_cadence(incident, 15, COMMS)
    assert service.update_cadence(incident) == 15
    assert not service.set_update_cadence(incident, 15, COMMS).changed
    service.set_update_cadence(incident, None, COMMS)
    assert service.update_cadence(incident) is None
    assert [e.text for e in service.timeline(incident) if e.kind == "cadence"] == [
        "Stakeholder updates every 15 minutes", "No more stakeholder update reminders"]
    with pytest.raises(InvalidInput, match="every 5 minutes to every 24 hours"):
        service.set_update_cadence(incident, 2, COMMS)


def test_updates_command_sets_and_shows_the_cadence(service, incident):
    chat = ChatCommands(service)
    assert chat.updates(f"{incident}", Caller(LEAD)).text.endswith("Updates are due every 30 minutes.")
    reply = chat.updates(f"{incident} every 1h", Caller(LEAD))  # no comms lead: the lead chooses
    assert reply.text.endswith("stakeholder updates are due every 60 minutes.")
    assert chat.updates(f"{incident} off", Caller(LEAD)).text.endswith("no more stakeholder update reminders.")
    assert chat.updates(f"{incident}", Caller(LEAD)).text.endswith("Update reminders are off.")
    with pytest.raises(InvalidInput, match="updates every 30m"):
        chat.updates(f"{incident} sometimes", Caller(LEAD))


def test_empty_update_changes_nothing(service, incident, db_snapshot):
    before = db_snapshot()
    with pytest.raises(InvalidInput, match="update <text>"):
        service.post_update(incident, "   ", LEAD)
    assert db_snapshot() == before


def test_stakeholder_channels_from_settings_and_notify(service, settings_box, incident):
    text = SHIPPED_SETTINGS.read_text().replace("    critical: []", "    critical: [opg-announcements]")
    settings_box[0] = parse_settings(text)
    assert service.stakeholder_channels(incident) == ["opg-announcements"]
    service.notify(incident, "#opg-sirius", LEAD)
    service.notify(incident, "<#C0ABCDEF1|secret>", LEAD)
    assert not service.notify(incident, "opg-sirius", LEAD).changed
    assert service.stakeholder_channels(incident) == ["opg-announcements", "opg-sirius", "C0ABCDEF1"]
    for bad in ("", "#Not Valid", "<!channel>", "#" + "x" * 81):
        with pytest.raises(InvalidInput, match="notify #channel"):
            service.notify(incident, bad, LEAD)


def test_call_link_validated_and_recorded(service, incident):
    out = service.set_call(incident, "https://meet.example.org/abc", LEAD)
    assert out.incident.call_url == "https://meet.example.org/abc"
    assert any(e.kind == "call" for e in service.timeline(incident))
    for bad in ("", "meet.example.org", "javascript:alert(1)", "https://x|<!channel>"):
        with pytest.raises(InvalidInput):
            service.set_call(incident, bad, LEAD)


def test_escalate_with_nothing_set_up_says_so_and_names_the_setting(service, incident, db_snapshot):
    """The shipped settings name WebOps and Security but set up no way to reach them: nothing says
    "Paging", nothing lands on the timeline, and the reply names the setting."""
    chat = ChatCommands(service)
    service.subscribe(lambda recorded: None, kinds={"page"})  # an adapter that sends pages (Slack)
    before = db_snapshot()
    listing = chat.escalate(f"{incident}", Caller(LEAD))
    assert listing.text.startswith("No specialist team can be paged") and "specialists:" in listing.text
    assert listing.menu is None
    with pytest.raises(InvalidInput) as caught:
        chat.escalate(f"{incident} webops", Caller(LEAD))
    assert str(caught.value).startswith("WebOps cannot be paged: nothing is set up to reach them")
    assert "slack_user, slack_group or pagerduty_routing_key of `webops`" in str(caught.value)
    assert db_snapshot() == before


def test_escalate_lists_only_teams_that_can_be_reached(service, incident, settings_box):
    text = SHIPPED_SETTINGS.read_text().replace('covers: AWS, networking, deployments\n    slack_group: ""',
                                                'covers: AWS, networking, deployments\n    slack_user: U0WEBOPS1')
    settings_box[0] = parse_settings(text)
    chat = ChatCommands(service)
    listing = chat.escalate(f"{incident}", Caller(LEAD))
    assert "webops: WebOps" in listing.text and "security: Security" not in listing.text.split("\n")[1]
    assert "Not set up to be paged: Security" in listing.text and listing.menu == incident
    with pytest.raises(InvalidInput, match="not a specialist team; teams: webops"):
        chat.escalate(f"{incident} plumbers", Caller(LEAD))
    # The Text console sends no page: it says so rather than "Paging".
    with pytest.raises(InvalidInput, match="Nothing here can send a page"):
        chat.escalate(f"{incident} webops", Caller(LEAD))
    heard = []
    service.subscribe(heard.append, kinds={"page"})  # an adapter that sends pages (Slack)
    reply = chat.escalate(f"{incident} WebOps", Caller(LEAD))
    assert [(h.kind, h.new) for h in reply.outcome.happened] == [("page", "webops")]
    assert [[(h.kind, h.new) for h in r.happened] for r in heard] == [[("page", "webops")]]  # in its transaction
    assert "Paging" not in reply.text and "Page to WebOps queued" in reply.text
    assert [e for e in service.timeline(incident) if e.kind.startswith("page")] == []  # the adapter records it
    service.record_page(incident, LEAD, "Paged WebOps: <@U0WEBOPS1> was sent a direct message")
    service.record_page(incident, LEAD, "Paging WebOps failed (user_not_found)", failed=True)
    assert [(e.kind, e.text) for e in service.timeline(incident) if e.kind.startswith("page")] == [
        ("page", "Paged WebOps: <@U0WEBOPS1> was sent a direct message"),
        ("page_failed", "Paging WebOps failed (user_not_found)")]


def test_rca_ready_and_share_only_after_the_close(service, incident, db_snapshot, clock):
    before = db_snapshot()
    with pytest.raises(InvalidInput, match="still open: the root-cause analysis follows the close"):
        service.mark_rca_ready(incident, LEAD)
    with pytest.raises(InvalidInput, match="still open: the analysis is shared after the close"):
        service.share_rca(incident, LEAD)
    assert db_snapshot() == before
    service.close(incident, LEAD)
    with pytest.raises(InvalidInput, match="rca ready"):
        service.share_rca(incident, LEAD)
    with pytest.raises(NotAllowed):
        service.mark_rca_ready(incident, OTHER)
    service.mark_rca_ready(incident, LEAD)
    assert [h.kind for h in service.share_rca(incident, OTHER).happened] == ["rca_shared"]


def test_invite_parses_people_and_groups_but_never_here(service, incident):
    chat = ChatCommands(service)
    out = chat.invite(f"{incident} <@U0NEW0001> <!subteam^S0TEAM001|@webops> @here <@U0NEW0001>",
                      Caller(LEAD)).outcome
    assert out.happened[0].new == "U0NEW0001,S0TEAM001"
    with pytest.raises(InvalidInput, match="Who?"):
        chat.invite(f"{incident} @channel", Caller(LEAD))


def test_ask_needs_text(service, incident):
    with pytest.raises(InvalidInput):
        service.ask_for_help(incident, "", LEAD)
    out = service.ask_for_help(incident, "Anyone seen this before?", LEAD)
    assert "#opg-developers" in service.timeline(incident)[-1].text and out.changed


def test_only_the_leads_choose_stakeholder_channels(service, incident):
    with pytest.raises(NotAllowed, match=r"^Only the Incident Lead \(.*\), the Communications Lead or a bot admin "
                                         "may choose who gets the stakeholder updates of incident 1"):
        service.notify(incident, "#general", OTHER)
    assert service.stakeholder_channels(incident) == []
    service.notify(incident, "#Opg-Use-An-LPA", LEAD)  # as typed: Slack's channel names are lower case
    assert service.stakeholder_channels(incident) == ["opg-use-an-lpa"]


def test_the_rca_is_shared_again_only_once_it_changed(service, incident, clock):
    service.close(incident, LEAD)
    service.mark_rca_ready(incident, LEAD)
    first = service.share_rca(incident, OTHER)
    assert first.happened[0].old is None
    clock.advance(minutes=5)
    with pytest.raises(InvalidInput, match="shared already, at 2024-03-05 10:00 GMT, and has not changed since"):
        service.share_rca(incident, LEAD)
    service.set_impact(incident, "Nobody could pay for 40 minutes", LEAD)
    clock.advance(minutes=5)
    again = service.share_rca(incident, LEAD)
    assert again.happened[0].old == "2024-03-05 10:00 GMT"
    shares = [e.text for e in service.timeline(incident) if e.kind == "rca" and "shared" in e.text]
    assert shares == ["Root-cause analysis shared in #opg-delivery, #opg-all-team-digital, #opg-leadership",
                      "Root-cause analysis shared again, changed since it was shared at 2024-03-05 10:00 GMT, in "
                      "#opg-delivery, #opg-all-team-digital, #opg-leadership"]


def test_the_cloud_providers_channel_is_a_share_target(settings_box):
    text = SHIPPED_SETTINGS.read_text().replace('cloud_provider_channel: ""', 'cloud_provider_channel: aws-opg-tam')
    assert parse_settings(text).stakeholders.share_targets == (
        "opg-delivery", "opg-all-team-digital", "opg-leadership", "aws-opg-tam")
    assert "opg-all-staff" not in settings_box[0].stakeholders.share_targets
