"""Reminders and check-ins, driven by a clock the test moves: no sleeping (issue 4)."""
from __future__ import annotations

import datetime as dt

import pytest

from opg_incident_core import NotAllowed
from opg_incident_core.reminders import ReminderSchedule
from opg_incident_core.settings import parse_settings
from conftest import SHIPPED_SETTINGS

LEAD, SCRIBE = "U0LEAD001", "U0SCRIBE2"
# 2024-03-05 10:00 UTC is a Tuesday, 10:00 in London: within working hours.


@pytest.fixture
def schedule(service):
    return ReminderSchedule(service, bot_name="@opg-incident")


def keys(schedule, *, updates=False):
    """The keys of due reminders (stakeholder-update reminders only when asked for)."""
    return sorted(r.key for r in schedule.due() if updates or r.key != "stakeholder_update")


def send_all(schedule):
    for reminder in schedule.due():
        schedule.sent(reminder)


def test_nothing_is_due_at_once_then_missing_roles_and_severity(service, schedule, clock):
    service.declare("DB down", LEAD)
    assert keys(schedule) == []
    clock.advance(minutes=5)
    assert keys(schedule) == ["role_missing:lead", "role_missing:scribe", "severity_missing"]
    [scribe] = [r for r in schedule.due() if r.key == "role_missing:scribe"]
    assert scribe.role == "scribe" and "`@opg-incident scribe @person`" in scribe.text and "Incident 1" in scribe.text


def test_interval_counts_only_when_sent(service, schedule, clock):
    service.declare("DB down", LEAD)
    clock.advance(minutes=5)
    assert "severity_missing" in keys(schedule)
    clock.advance(minutes=5)
    assert "severity_missing" in keys(schedule)  # not sent: still due, nothing counted
    send_all(schedule)
    assert keys(schedule) == []
    clock.advance(minutes=4)
    assert keys(schedule) == []
    clock.advance(minutes=1)
    assert "severity_missing" in keys(schedule)


def test_max_count_stops_a_reminder(service, schedule, clock, settings_box):
    service.declare("DB down", LEAD)
    limit = settings_box[0].reminders.severity_missing.max_count
    for _ in range(limit):
        clock.advance(minutes=5)
        assert "severity_missing" in keys(schedule)
        send_all(schedule)
    clock.advance(minutes=60)
    assert "severity_missing" not in keys(schedule)


def test_filled_roles_and_severity_are_not_reminded(service, schedule, clock):
    number = service.declare("DB down", LEAD).incident.number
    service.assign_role(number, "lead", LEAD, LEAD)
    service.assign_role(number, "scribe", SCRIBE, SCRIBE)
    service.set_severity(number, "major", LEAD)
    clock.advance(minutes=29)
    assert keys(schedule) == []


def test_stale_summary_nudges_the_lead_and_an_update_resets_it(service, schedule, clock):
    number = service.declare("DB down", LEAD, severity="major").incident.number
    service.assign_role(number, "lead", LEAD, LEAD)
    service.assign_role(number, "scribe", SCRIBE, SCRIBE)
    clock.advance(minutes=30)
    [stale] = [r for r in schedule.due() if r.key != "stakeholder_update"]
    assert stale.key == "update_stale" and f"<@{LEAD}>" in stale.text and "30 minutes" in stale.text
    clock.advance(minutes=1)
    service.set_summary(number, "Failover started", LEAD)
    assert keys(schedule) == []
    clock.advance(minutes=30)
    assert keys(schedule) == ["update_stale"]


def test_close_prompt_only_within_working_hours(service, schedule, clock, settings_box):
    text = (SHIPPED_SETTINGS.read_text()
            .replace("every_minutes: 1440", "every_minutes: 600")
            .replace("every_minutes: 30\n    max_count: 10", "every_minutes: 10000\n    max_count: 10"))
    settings_box[0] = parse_settings(text)
    clock.value = dt.datetime(2024, 3, 8, 8, 0)  # Friday 08:00 London
    number = service.declare("DB down", LEAD, severity="major").incident.number
    service.assign_role(number, "lead", LEAD, LEAD)
    service.assign_role(number, "scribe", SCRIBE, SCRIBE)
    clock.value = dt.datetime(2024, 3, 8, 18, 30)  # Friday 18:30: after hours
    assert keys(schedule) == []
    clock.value = dt.datetime(2024, 3, 9, 11, 0)  # Saturday
    assert keys(schedule) == []
    clock.value = dt.datetime(2024, 3, 11, 9, 0)  # Monday 09:00
    assert keys(schedule) == ["close_prompt"]


def test_silence_after_close_and_for_reports(service, schedule, clock):
    number = service.declare("DB down", LEAD).incident.number
    service.declare("It broke yesterday", LEAD, report=True)
    service.assign_role(number, "lead", LEAD, LEAD)
    clock.advance(minutes=5)
    assert {r.number for r in schedule.due()} == {number}
    service.close(number, LEAD)
    clock.advance(hours=48)
    assert schedule.due() == []


def test_checkins_on_schedule_recorded_on_the_timeline(service, schedule, clock):
    number = service.declare("DB down", LEAD, severity="major").incident.number
    service.assign_role(number, "lead", LEAD, LEAD)
    service.assign_role(number, "scribe", SCRIBE, SCRIBE)
    with pytest.raises(NotAllowed):
        service.set_checkin(number, 15, SCRIBE)
    service.set_checkin(number, 15, LEAD)
    clock.advance(minutes=14)
    assert "checkin" not in keys(schedule)
    clock.advance(minutes=1)
    [checkin] = [r for r in schedule.due() if r.key == "checkin"]
    schedule.sent(checkin)
    assert "checkin" not in keys(schedule)
    clock.advance(minutes=15)
    assert "checkin" in keys(schedule)
    kinds = [e.kind for e in service.timeline(number)]
    assert kinds.count("checkin") == 2  # schedule set + one prompt sent
    service.set_checkin(number, None, LEAD)
    clock.advance(minutes=60)
    assert "checkin" not in keys(schedule)


def test_stakeholder_update_reminder_follows_severity_and_resets_on_update(service, schedule, clock):
    number = service.declare("DB down", LEAD, severity="critical").incident.number
    service.assign_role(number, "lead", LEAD, LEAD)
    service.assign_role(number, "comms", SCRIBE, SCRIBE)
    clock.advance(minutes=29)
    assert "stakeholder_update" not in keys(schedule, updates=True)
    clock.advance(minutes=1)  # critical: every 30 minutes
    [due] = [r for r in schedule.due() if r.key == "stakeholder_update"]
    assert f"<@{SCRIBE}>" in due.text and "update <text>" in due.text
    service.post_update(number, "Failover in progress", SCRIBE)
    assert "stakeholder_update" not in keys(schedule, updates=True)
    clock.advance(minutes=30)
    assert "stakeholder_update" in keys(schedule, updates=True)


def test_stakeholder_update_reminder_follows_the_comms_leads_cadence(service, schedule, clock):
    number = service.declare("DB down", LEAD, severity="critical").incident.number
    service.assign_role(number, "lead", LEAD, LEAD)
    service.assign_role(number, "comms", SCRIBE, SCRIBE)
    service.set_update_cadence(number, 10, SCRIBE)  # `updates every 10m`
    clock.advance(minutes=9)
    assert "stakeholder_update" not in keys(schedule, updates=True)
    clock.advance(minutes=1)
    assert "stakeholder_update" in keys(schedule, updates=True)
    service.set_update_cadence(number, None, SCRIBE)  # `updates off`: never imposed
    clock.advance(hours=5)
    assert "stakeholder_update" not in keys(schedule, updates=True)
