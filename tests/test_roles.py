"""Roles that are always filled: the handover state machine and the role rules (issue 4)."""
from __future__ import annotations

import threading

import pytest

from opg_incident_core import InvalidInput, NotAllowed, NotFound, storage
from opg_incident_core.settings import parse_settings
from conftest import ADMIN, SHIPPED_SETTINGS

ALICE, BOB, CAROL, DAVE = "U0ALICE01", "U0BOB0002", "U0CAROL03", "U0DAVE004"


@pytest.fixture
def incident(service):
    number = service.declare("Payments are failing", ALICE).incident.number
    service.assign_role(number, "lead", ALICE, ALICE)
    return number


def offer_of(outcome):
    return next(h for h in outcome.happened if h.kind == "offered").entry_id


def test_taking_an_empty_role_is_immediate(service, incident):
    out = service.assign_role(incident, "scribe", BOB, BOB)
    assert out.incident.roles["scribe"] == BOB
    assert [h.kind for h in out.happened] == ["role"]


def test_a_held_role_is_never_silently_overwritten(service, incident):
    out = service.assign_role(incident, "lead", BOB, ALICE)
    assert out.incident.roles["lead"] == ALICE  # still Alice until Bob accepts
    assert [h.kind for h in out.happened] == ["offered"]
    assert service.handovers(incident)[0].awaiting == BOB


def test_offer_accept_moves_the_role_and_records_the_note(service, incident):
    offer = offer_of(service.handover(incident, "lead", BOB, ALICE, "going off shift at 18:00"))
    out = service.answer_handover(offer, BOB, accept=True)
    assert out.incident.roles["lead"] == BOB
    assert [h.kind for h in out.happened] == ["handover_accepted", "role"]
    role_change = out.happened[1]
    assert (role_change.old, role_change.new) == (ALICE, BOB)
    texts = [e.text for e in service.timeline(incident)]
    assert any("offered Incident Lead" in t and "going off shift at 18:00" in t for t in texts)
    assert any(f"<@{BOB}> is now Incident Lead, taking over from <@{ALICE}>" in t for t in texts)
    assert service.get_handover(offer).status == "accepted"
    history = [(h.role, h.holder, h.released_at is None) for h in service.role_history(incident)]
    assert history == [("lead", ALICE, False), ("lead", BOB, True)]


def test_decline_keeps_the_old_holder(service, incident):
    offer = offer_of(service.handover(incident, "lead", BOB, ALICE))
    out = service.answer_handover(offer, BOB, accept=False)
    assert out.incident.roles["lead"] == ALICE
    assert [h.kind for h in out.happened] == ["handover_declined"]
    assert service.get_handover(offer).status == "declined"
    assert any("was declined" in e.text and f"<@{ALICE}> stays Incident Lead" in e.text
               for e in service.timeline(incident))


def test_only_the_awaited_person_answers(service, incident):
    offer = offer_of(service.handover(incident, "lead", BOB, ALICE))
    with pytest.raises(NotAllowed, match="waits for"):
        service.answer_handover(offer, CAROL, accept=True)
    with pytest.raises(NotAllowed):
        service.answer_handover(offer, ALICE, accept=True)
    assert service.get_handover(offer).status == "pending"


def test_asking_for_a_held_role_waits_for_the_holder(service, incident):
    out = service.assign_role(incident, "lead", CAROL, CAROL)  # `lead me` while Alice leads
    offer = service.get_handover(offer_of(out))
    assert offer.is_request and offer.awaiting == ALICE and offer.to_user == CAROL
    with pytest.raises(NotAllowed):
        service.answer_handover(offer.id, CAROL, accept=True)
    assert service.answer_handover(offer.id, ALICE, accept=True).incident.roles["lead"] == CAROL


def test_only_holder_lead_or_admin_may_hand_over(service, incident):
    service.assign_role(incident, "scribe", BOB, BOB)
    with pytest.raises(NotAllowed, match="Only the Incident Scribe"):
        service.handover(incident, "scribe", DAVE, CAROL)
    assert service.handovers(incident) == []
    for giver in (BOB, ALICE):  # the holder, then the lead
        offer = offer_of(service.handover(incident, "scribe", DAVE, giver))
        service.withdraw_handover(incident, "scribe", giver)
        assert service.get_handover(offer).status == "withdrawn"
    offer_of(service.handover(incident, "scribe", DAVE, ADMIN))


def test_one_pending_offer_per_role(service, incident):
    service.handover(incident, "lead", BOB, ALICE)
    with pytest.raises(InvalidInput, match="has not answered"):
        service.handover(incident, "lead", CAROL, ALICE)
    service.handover(incident, "scribe", CAROL, ALICE)  # another role is fine
    assert sorted(h.role for h in service.handovers(incident)) == ["lead", "scribe"]


def test_a_second_accept_does_nothing_more(service, incident):
    offer = offer_of(service.handover(incident, "lead", BOB, ALICE))
    service.answer_handover(offer, BOB, accept=True)
    entries = len(service.timeline(incident))
    again = service.answer_handover(offer, BOB, accept=True)
    assert not again.changed and again.warnings == ("This offer was already accepted.",)
    assert len(service.timeline(incident)) == entries
    assert len(service.role_history(incident)) == 2


def test_two_accept_clicks_at_once_move_the_role_once(service, incident, db):
    offer = offer_of(service.handover(incident, "lead", BOB, ALICE))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def click():
        barrier.wait()
        try:
            results.append(service.answer_handover(offer, BOB, accept=True))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever happened
            errors.append(exc)
        finally:
            storage.database.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(20) for t in threads]
    assert errors == []
    assert sorted(r.changed for r in results) == [False, True]
    holders = [h.holder for h in service.role_history(incident) if h.role == "lead"]
    assert holders == [ALICE, BOB]


def test_unanswered_offer_expires_and_old_holder_keeps_it(service, incident, clock, settings_box):
    minutes = settings_box[0].reminders.handover_timeout_minutes
    offer = offer_of(service.handover(incident, "lead", BOB, ALICE))
    clock.advance(minutes=minutes - 1)
    assert service.expire_handovers() == []
    clock.advance(minutes=2)
    [out] = service.expire_handovers()
    assert [h.kind for h in out.happened] == ["handover_expired"]
    assert out.incident.roles["lead"] == ALICE
    assert service.get_handover(offer).status == "expired"
    assert service.expire_handovers() == []  # once
    late = service.answer_handover(offer, BOB, accept=True)
    assert not late.changed and service.get(incident).roles["lead"] == ALICE


def test_accepting_after_the_deadline_expires_the_offer(service, incident, clock):
    offer = offer_of(service.handover(incident, "lead", BOB, ALICE))
    clock.advance(hours=5)
    out = service.answer_handover(offer, BOB, accept=True)
    assert out.warnings == ("This offer has expired.",)
    assert service.get(incident).roles["lead"] == ALICE


def test_pending_offer_survives_a_restart(service, incident, db_url, clock, settings_box):
    from opg_incident_core import IncidentService, open_database

    offer = offer_of(service.handover(incident, "lead", BOB, ALICE, "over to you"))
    storage.database.close()
    open_database(db_url)  # a new process: same database, nothing in memory
    fresh = IncidentService(lambda: settings_box[0], admins={ADMIN}, clock=clock)
    [pending] = fresh.handovers(awaiting=BOB)
    assert (pending.id, pending.note, pending.status) == (offer, "over to you", "pending")
    assert fresh.answer_handover(offer, BOB, accept=True).incident.roles["lead"] == BOB


def test_unknown_offer_and_role(service, incident):
    with pytest.raises(NotFound):
        service.answer_handover(999, BOB, accept=True)
    with pytest.raises(InvalidInput, match="not a role"):
        service.handover(incident, "chef", BOB, ALICE)
    with pytest.raises(InvalidInput, match="already the Incident Lead"):
        service.handover(incident, "lead", ALICE, ALICE)


# -- role rules ------------------------------------------------------------------------------------
def test_lead_and_scribe_same_person_warns_naming_the_rule(service, incident):
    out = service.assign_role(incident, "scribe", ALICE, ALICE)
    assert out.incident.roles["scribe"] == ALICE
    assert out.warnings and "should not be the same person" in out.warnings[0]


def test_refuse_mode_refuses_and_changes_nothing(service, incident, settings_box):
    text = SHIPPED_SETTINGS.read_text().replace("role_conflicts: warn", "role_conflicts: refuse")
    settings_box[0] = parse_settings(text)
    with pytest.raises(NotAllowed, match="should not be the same person"):
        service.assign_role(incident, "scribe", ALICE, ALICE)
    assert "scribe" not in service.get(incident).roles


def test_team_map_warns_when_the_lead_is_in_the_reporters_team(service, settings_box):
    text = SHIPPED_SETTINGS.read_text().replace("teams: []", f"teams:\n  - name: Sirius\n    members: [{ALICE}, {BOB}]")
    settings_box[0] = parse_settings(text)
    number = service.declare("Sirius is down", ALICE).incident.number
    out = service.assign_role(number, "lead", BOB, BOB)
    assert any("reporter's team (Sirius)" in w for w in out.warnings)
    assert not service.assign_role(number, "scribe", CAROL, CAROL).warnings


def test_release_only_by_holder_lead_or_admin(service, incident):
    service.assign_role(incident, "scribe", BOB, BOB)
    with pytest.raises(NotAllowed):
        service.release_role(incident, "scribe", CAROL)
    assert service.release_role(incident, "scribe", BOB).incident.roles.get("scribe") is None


def test_an_offer_from_an_old_holder_no_longer_stands(service, incident):
    offer = offer_of(service.handover(incident, "lead", BOB, ALICE))
    service.release_role(incident, "lead", ALICE)
    assert service.get_handover(offer).status == "pending"
    out = service.assign_role(incident, "lead", CAROL, CAROL)  # Carol takes the empty role
    assert out.incident.roles["lead"] == CAROL
    assert service.get_handover(offer).status == "withdrawn"  # filling the role ends the old offer
    late = service.answer_handover(offer, BOB, accept=True)
    assert not late.changed and service.get(incident).roles["lead"] == CAROL


def test_accepting_after_the_holder_changed_moves_nothing(service, incident):
    request = offer_of(service.assign_role(incident, "lead", CAROL, CAROL))  # Carol asks Alice
    other = offer_of(service.handover(incident, "scribe", DAVE, ALICE))
    assert service.get_handover(other).status == "pending"
    service.release_role(incident, "lead", ALICE)
    service.assign_role(incident, "lead", BOB, BOB)  # Bob takes it meanwhile (the request is withdrawn)
    out = service.answer_handover(request, ALICE, accept=True)
    assert not out.changed or out.warnings
    assert service.get(incident).roles["lead"] == BOB
