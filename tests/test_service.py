"""The incident core (IncidentService) on SQLite and on PostgreSQL: declare, the lead's updates, roles,
the scribe's log, actions, pins, close and reopen; every change on the timeline with time and author."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from opg_incident_core import InvalidInput, NotAllowed, NotFound, storage
from opg_incident_core.storage import Action, Incident, RoleAssignment, TimelineEntry

T0 = dt.datetime(2024, 3, 5, 10, 0, 0)  # the clock fixture's start, naive UTC
UTC = dt.timezone.utc
MULTILINE = "Line one\n  indented line two\n\n- a bullet with <!channel> and @here"


def aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC)


def entries(service, number):
    return [(e.kind, e.at, e.author, e.text) for e in service.timeline(number)]


def last_entry(service, number):
    return service.timeline(number)[-1]


def count(model) -> int:
    return model.select().count()


@pytest.fixture
def inc(service):
    """Incident 1, declared by @ann."""
    return service.declare("Payments are failing", "@ann").incident.number


# -- declare -----------------------------------------------------------------------------------------

def test_declare_numbers_incidents_and_logs_the_declaration(service, clock):
    first = service.declare("  Payments   are failing ", "@ann")
    clock.advance(minutes=5)
    second = service.declare("Login slow", "@bob", report=True)
    third = service.declare("Practice", "@cat", drill=True)

    assert [first.incident.number, second.incident.number, third.incident.number] == [1, 2, 3]
    assert first.incident.title == "Payments are failing"
    assert first.incident.status == "open" and first.incident.status_text == "Live"
    assert second.incident.report and second.incident.status_text == "Reported"
    assert third.incident.drill
    assert first.incident.declared_at == aware(T0)
    assert first.incident.roles == {"reporter": "@ann"}
    assert [(h.kind, h.by, h.new) for h in first.happened] == [("declared", "@ann", "Payments are failing")]
    assert entries(service, 1) == [("declared", aware(T0), "@ann", "@ann declared an incident: Payments are failing")]
    assert entries(service, 2)[0][1:] == (aware(T0 + dt.timedelta(minutes=5)), "@bob",
                                          "@bob declared a report: Login slow")
    assert entries(service, 3)[0][3] == "@cat declared a drill: Practice"


def test_declare_with_severity_and_lead(service):
    out = service.declare("DB down", "@ann", severity="sev1", lead="@bob", summary=" primary lost ",
                          impact="all users")
    inc = service.get(out.incident.number)
    assert (inc.severity, inc.roles["lead"], inc.summary, inc.impact) == ("critical", "@bob", "primary lost",
                                                                          "all users")
    assert [e[0] for e in entries(service, inc.number)] == ["declared", "severity", "role"]
    assert [e[3] for e in entries(service, inc.number)][1:] == ["Severity set to Critical",
                                                                "@bob is now Incident Lead"]


@pytest.mark.parametrize("title, message", [
    ("", "needs a title"), ("   \n ", "needs a title"), ("x" * 301, "keep it under 300"),
])
def test_declare_refuses_a_missing_or_long_title(service, db_snapshot, title, message):
    before = db_snapshot()
    with pytest.raises(InvalidInput, match=message):
        service.declare(title, "@ann")
    assert db_snapshot() == before


def test_refused_declare_leaves_no_gap_in_the_numbers(service, db_snapshot):
    assert service.declare("one", "@ann").incident.number == 1
    before = db_snapshot()
    with pytest.raises(InvalidInput, match="not a severity"):
        service.declare("two", "@ann", severity="huge")
    assert db_snapshot() == before
    assert service.declare("two", "@ann").incident.number == 2


def _in_threads(count, work):
    errors = []

    def run(i):
        try:
            work(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            storage.database.close()  # this thread's connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def test_concurrent_declares_get_gap_free_unique_numbers(service):
    def declare_five(i):
        for j in range(5):
            service.declare(f"incident {i}.{j}", f"@user{i}")

    errors = _in_threads(10, declare_five)

    assert errors == []
    assert sorted(i.number for i in Incident.select()) == list(range(1, 51))
    assert TimelineEntry.select().where(TimelineEntry.kind == "declared").count() == 50


def test_concurrent_actions_on_one_incident_are_numbered_gap_free(service, inc):
    errors = _in_threads(8, lambda i: [service.log(inc, "action", f"action {i}.{j}", f"@u{i}")
                                       for j in range(3)])
    assert errors == []
    assert [a.number for a in service.actions(inc)] == list(range(1, 25))


# -- the lead's updates --------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["summary", "impact"])
def test_summary_and_impact_are_set_logged_and_kept_whole(service, clock, inc, field):
    setter = getattr(service, f"set_{field}")
    clock.advance(minutes=3)
    out = setter(inc, "  first version  ", "@bob")
    assert getattr(out.incident, field) == "first version"
    assert [(h.kind, h.by, h.old, h.new) for h in out.happened] == [(field, "@bob", "", "first version")]

    clock.advance(minutes=4)
    out = setter(inc, MULTILINE, "@cat")
    assert getattr(service.get(inc), field) == MULTILINE
    assert out.happened[0].old == "first version"
    assert entries(service, inc)[-2:] == [
        (field, aware(T0 + dt.timedelta(minutes=3)), "@bob", f"{field.capitalize()} updated: first version"),
        (field, aware(T0 + dt.timedelta(minutes=7)), "@cat", f"{field.capitalize()} updated: {MULTILINE}"),
    ]
    assert Incident.get(number=inc).lead_updated_at == T0 + dt.timedelta(minutes=7)


@pytest.mark.parametrize("field", ["summary", "impact"])
def test_setting_the_same_text_again_changes_nothing(service, inc, field, db_snapshot):
    getattr(service, f"set_{field}")(inc, "same", "@bob")
    before = db_snapshot()
    out = getattr(service, f"set_{field}")(inc, "  same ", "@cat")
    assert not out.changed
    assert db_snapshot() == before


@pytest.mark.parametrize("field", ["summary", "impact"])
def test_empty_summary_or_impact_is_refused(service, inc, field, db_snapshot):
    before = db_snapshot()
    with pytest.raises(InvalidInput, match=f"`{field} <text>`"):
        getattr(service, f"set_{field}")(inc, " \n ", "@bob")
    assert db_snapshot() == before


@pytest.mark.parametrize("text, key, name", [
    ("critical", "critical", "Critical"), ("CRITICAL", "critical", "Critical"), ("Major", "major", "Major"),
    ("sev1", "critical", "Critical"), ("2", "major", "Major"), ("MINOR", "trivial", "Trivial"),
])
def test_severity_by_name_alias_in_any_case(service, inc, text, key, name):
    out = service.set_severity(inc, text, "@bob")
    assert service.get(inc).severity == key
    assert out.happened[0].new == key
    assert last_entry(service, inc).text == f"Severity set to {name}"
    assert last_entry(service, inc).author == "@bob"


def test_severity_change_names_old_and_new(service, inc):
    service.set_severity(inc, "trivial", "@bob")
    out = service.set_severity(inc, "sev1", "@cat")
    assert (out.happened[0].old, out.happened[0].new) == ("trivial", "critical")
    assert last_entry(service, inc).text == "Severity changed from Trivial to Critical"
    assert not service.set_severity(inc, "Critical", "@cat").changed
    assert [e[0] for e in entries(service, inc)].count("severity") == 2


@pytest.mark.parametrize("text", ["major issue since 10:31", "", "sev 1", "blocker", "critical issue!"])
def test_severity_refuses_anything_but_a_severity(service, inc, db_snapshot, text):
    service.set_severity(inc, "trivial", "@bob")
    before = db_snapshot()
    with pytest.raises(InvalidInput, match="Choose one of: Critical, Major, Trivial"):
        service.set_severity(inc, text, "@bob")
    assert db_snapshot() == before
    assert service.get(inc).severity == "trivial"


def test_updates_on_an_unknown_incident_are_not_found(service):
    with pytest.raises(NotFound, match="no incident 42"):
        service.set_summary(42, "x", "@bob")
    with pytest.raises(NotFound):
        service.get(42)
    assert count(TimelineEntry) == 0


# -- roles -------------------------------------------------------------------------------------------

def test_assign_hand_over_and_release_roles_with_history(service, clock, inc):
    clock.advance(minutes=1)
    out = service.assign_role(inc, "lead", "@bob", "@ann")  # an empty role is simply taken
    assert out.incident.roles["lead"] == "@bob"
    assert [(h.kind, h.role, h.old, h.new) for h in out.happened] == [("role", "lead", None, "@bob")]

    clock.advance(minutes=1)
    out = service.assign_role(inc, "lead", "@cat", "@bob")  # a held role is offered, never overwritten
    assert [(h.kind, h.old, h.new) for h in out.happened] == [("offered", "@bob", "@cat")]
    assert service.get(inc).roles["lead"] == "@bob"
    offer = out.happened[0].entry_id

    with pytest.raises(NotAllowed):
        service.answer_handover(offer, "@bob", True)  # only @cat may accept
    clock.advance(minutes=1)
    out = service.answer_handover(offer, "@cat", True)
    assert out.incident.roles["lead"] == "@cat"
    assert service.get_handover(offer).status == "accepted"

    clock.advance(minutes=1)
    out = service.release_role(inc, "lead", "@cat")
    assert "lead" not in out.incident.roles

    history = service.role_history(inc)
    assert [(h.role, h.holder, h.assigned_by, h.assigned_at, h.released_at) for h in history] == [
        ("lead", "@bob", "@ann", T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=3)),
        ("lead", "@cat", "@cat", T0 + dt.timedelta(minutes=3), T0 + dt.timedelta(minutes=4)),
    ]
    assert RoleAssignment.get(holder="@cat").released_by == "@cat"
    timeline = entries(service, inc)[1:]
    assert [(kind, at, by) for kind, at, by, _ in timeline] == [
        ("role", aware(T0 + dt.timedelta(minutes=1)), "@ann"),
        ("handover", aware(T0 + dt.timedelta(minutes=2)), "@bob"),
        ("role", aware(T0 + dt.timedelta(minutes=3)), "@cat"),
        ("role", aware(T0 + dt.timedelta(minutes=4)), "@cat"),
    ]
    assert timeline[0][3] == "@bob is now Incident Lead"
    assert "@cat" in timeline[1][3] and "Incident Lead" in timeline[1][3]
    assert timeline[2][3].startswith("@cat is now Incident Lead") and "@bob" in timeline[2][3]
    assert timeline[3][3] == "@cat is no longer Incident Lead"


def test_declined_handover_keeps_the_holder(service, inc):
    service.assign_role(inc, "scribe", "@sam", "@ann")
    offer = service.assign_role(inc, "scribe", "@tom", "@sam").happened[0].entry_id
    service.answer_handover(offer, "@tom", False)
    assert service.get(inc).roles["scribe"] == "@sam"
    assert service.get_handover(offer).status == "declined"
    assert [h.holder for h in service.role_history(inc)] == ["@sam"]


def test_slack_ids_are_mentioned_on_the_timeline(service, inc):
    service.assign_role(inc, "scribe", "U0123ABC", "U0999XYZ")
    assert last_entry(service, inc).text == "<@U0123ABC> is now Incident Scribe"
    assert last_entry(service, inc).author == "U0999XYZ"


def test_role_refusals_change_nothing(service, inc, db_snapshot):
    service.assign_role(inc, "lead", "@bob", "@ann")
    before = db_snapshot()
    with pytest.raises(InvalidInput, match="already the Incident Lead of incident 1"):
        service.assign_role(inc, "lead", "@bob", "@ann")
    with pytest.raises(InvalidInput, match="'boss' is not a role you can assign. Roles: lead, scribe, comms"):
        service.assign_role(inc, "boss", "@bob", "@ann")
    with pytest.raises(InvalidInput, match="'reporter' is not a role you can assign"):
        service.assign_role(inc, "reporter", "@bob", "@ann")
    with pytest.raises(InvalidInput, match="Nobody holds the Incident Scribe role on incident 1"):
        service.release_role(inc, "scribe", "@ann")
    assert db_snapshot() == before


def test_conflicting_roles_are_assigned_with_a_warning(service, inc):
    service.assign_role(inc, "lead", "@bob", "@ann")
    out = service.assign_role(inc, "scribe", "@bob", "@ann")
    assert out.incident.roles == {"reporter": "@ann", "lead": "@bob", "scribe": "@bob"}
    assert out.warnings == ("Note: @bob is also the Incident Lead; the Incident Scribe and the Incident Lead "
                            "should not be the same person.",)
    assert not service.assign_role(inc, "comms", "@bob", "@ann").warnings  # comms has no rule


def test_conflicting_roles_are_refused_in_refuse_mode(service, inc, settings_box, db_snapshot):
    settings_box[0] = settings_box[0].model_copy(update={"role_conflicts": "refuse"})
    service.assign_role(inc, "scribe", "@bob", "@ann")
    before = db_snapshot()
    with pytest.raises(NotAllowed, match="@bob is already the Incident Scribe, and the Incident Lead and the "
                                         "Incident Scribe should not be the same person"):
        service.assign_role(inc, "lead", "@bob", "@ann")
    assert db_snapshot() == before
    assert "lead" not in service.get(inc).roles


# -- the scribe's log and actions ---------------------------------------------------------------------

def test_log_action_note_decision_on_the_timeline(service, clock, inc):
    other = service.declare("Other", "@zed").incident.number
    service.log(other, "action", "elsewhere", "@zed")

    clock.advance(minutes=2)
    out = service.log(inc, "action", "Restart the\npayment workers", "@sam")
    assert out.happened[0].kind == "action" and out.happened[0].role is None  # the log kind, not a role
    service.log(inc, "note", MULTILINE, "@sam")
    clock.advance(minutes=1)
    service.log(inc, "decision", "Fail over to the secondary", "@bob")
    service.log(inc, "action", "Tell the users", "@bob")

    assert entries(service, inc)[1:] == [
        ("action", aware(T0 + dt.timedelta(minutes=2)), "@sam", "Action 1: Restart the\npayment workers"),
        ("note", aware(T0 + dt.timedelta(minutes=2)), "@sam", MULTILINE),
        ("decision", aware(T0 + dt.timedelta(minutes=3)), "@bob", "Fail over to the secondary"),
        ("action", aware(T0 + dt.timedelta(minutes=3)), "@bob", "Action 2: Tell the users"),
    ]
    assert [(a.number, a.text, a.owner, a.done) for a in service.actions(inc)] == [
        (1, "Restart the\npayment workers", "@sam", False), (2, "Tell the users", "@bob", False)]
    assert [a.number for a in service.actions(other)] == [1]  # numbered per incident


def test_log_refuses_unknown_kinds_and_empty_text(service, inc, db_snapshot):
    before = db_snapshot()
    with pytest.raises(InvalidInput, match="'pin' cannot be logged; choose one of action, note, decision"):
        service.log(inc, "pin", "x", "@sam")
    with pytest.raises(InvalidInput, match="`note <text>`"):
        service.log(inc, "note", "  ", "@sam")
    with pytest.raises(NotFound):
        service.log(99, "note", "x", "@sam")
    assert db_snapshot() == before


def test_action_done_once_then_refused(service, clock, inc, db_snapshot):
    service.log(inc, "action", "Restart workers", "@sam")
    clock.advance(minutes=10)
    out = service.complete_action(inc, 1, "@bob")
    assert out.happened[0].kind == "action_done"
    action = service.actions(inc)[0]
    assert (action.done, action.done_by, action.done_at) == (True, "@bob", aware(T0 + dt.timedelta(minutes=10)))
    assert entries(service, inc)[-1] == ("action_done", aware(T0 + dt.timedelta(minutes=10)), "@bob",
                                         "Action 1 done: Restart workers")

    before = db_snapshot()
    with pytest.raises(InvalidInput, match="Action 1 was already done"):
        service.complete_action(inc, 1, "@cat")
    with pytest.raises(NotFound, match="Incident 1 has no action 7"):
        service.complete_action(inc, 7, "@cat")
    assert db_snapshot() == before


# -- pins ----------------------------------------------------------------------------------------------

CHANNEL = "C0INC1"
MSG_TS = "1709632680.000100"  # 2024-03-05 09:58:00.0001 UTC, before the declaration
MSG_TIME = dt.datetime(2024, 3, 5, 9, 58, 0, 100)


@pytest.fixture
def channel_inc(service, clock, inc):
    service.attach_channel(inc, CHANNEL, "inc-1-payments", "@ann")
    clock.advance(hours=1)  # pins arrive long after the message was written
    return inc


def pins(number):
    return list(TimelineEntry.select().where(TimelineEntry.kind == "pin",
                                             TimelineEntry.incident == Incident.get(number=number).id))


def test_attach_channel_is_logged_once(service, inc):
    out = service.attach_channel(inc, CHANNEL, "inc-1-payments", "@ann")
    assert (out.incident.channel_id, out.incident.channel_name) == (CHANNEL, "inc-1-payments")
    assert last_entry(service, inc).text == "Comms channel created: #inc-1-payments"
    assert not service.attach_channel(inc, CHANNEL, "inc-1-payments", "@ann").changed
    assert service.for_channel(CHANNEL).number == inc
    assert service.for_channel("C0OTHER") is None and service.for_channel(None) is None


def test_pin_is_recorded_at_the_message_time_with_its_author(service, clock, channel_inc):
    service.log(channel_inc, "note", "later note", "@sam")  # at T0 + 1 h
    out = service.record_pin(CHANNEL, MSG_TS, "U0AUTHOR", "Errors\nstarted at 09:58", "U0PINNER",
                             permalink="https://x.slack.com/archives/C0INC1/p1709632680000100",
                             files=[{"name": "graph.png", "url": "https://files/graph.png"}])
    assert out.happened[0].kind == "pin" and out.happened[0].by == "U0PINNER"

    timeline = service.timeline(channel_inc)
    pin = next(e for e in timeline if e.kind == "pin")
    assert (pin.at, pin.author, pin.text) == (aware(MSG_TIME), "U0AUTHOR", "Errors\nstarted at 09:58")
    assert pin.permalink.endswith("p1709632680000100")
    assert pin.files == ({"name": "graph.png", "url": "https://files/graph.png"},)
    assert (pin.source_channel, pin.source_ts) == (CHANNEL, MSG_TS)
    # ordered by when things happened, not when they were recorded
    assert [e.kind for e in timeline] == ["pin", "declared", "channel", "note"]
    assert pins(channel_inc)[0].recorded_at == clock()


def test_pin_with_an_explicit_aware_time(service, channel_inc):
    at = dt.datetime(2024, 3, 5, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    service.record_pin(CHANNEL, "not-a-ts", "U0A", "text", "U0B", at=at)
    assert pins(channel_inc)[0].at == dt.datetime(2024, 3, 5, 10, 30)


def test_repin_is_idempotent_unpin_hides_and_repin_revives(service, channel_inc, db_snapshot):
    service.record_pin(CHANNEL, MSG_TS, "U0AUTHOR", "the message", "U0PINNER")
    before = db_snapshot()
    assert not service.record_pin(CHANNEL, MSG_TS, "U0AUTHOR", "the message", "U0OTHER").changed
    assert db_snapshot() == before

    out = service.remove_pin(CHANNEL, MSG_TS, "U0PINNER")
    assert [h.kind for h in out.happened] == ["unpin"]
    assert "pin" not in [e.kind for e in service.timeline(channel_inc)]
    kept = pins(channel_inc)
    assert len(kept) == 1 and kept[0].removed_at is not None and kept[0].text == "the message"
    assert not service.remove_pin(CHANNEL, MSG_TS, "U0PINNER").changed  # unpinning twice

    out = service.record_pin(CHANNEL, MSG_TS, "U0AUTHOR", "the message, edited", "U0PINNER")
    assert out.changed
    revived = pins(channel_inc)
    assert len(revived) == 1 and revived[0].id == kept[0].id and revived[0].removed_at is None
    assert [e.text for e in service.timeline(channel_inc) if e.kind == "pin"] == ["the message, edited"]


def test_editing_a_pinned_message_updates_the_timeline(service, channel_inc):
    service.record_pin(CHANNEL, MSG_TS, "U0AUTHOR", "typo", "U0PINNER")
    out = service.edit_pinned_message(CHANNEL, MSG_TS, "fixed\ntext", "U0AUTHOR")
    assert [h.kind for h in out.happened] == ["pin_edited"]
    assert [e.text for e in service.timeline(channel_inc) if e.kind == "pin"] == ["fixed\ntext"]
    assert not service.edit_pinned_message(CHANNEL, MSG_TS, "fixed\ntext", "U0AUTHOR").changed
    assert not service.edit_pinned_message(CHANNEL, "1.2", "unknown message", "U0AUTHOR").changed

    service.remove_pin(CHANNEL, MSG_TS, "U0PINNER")
    assert not service.edit_pinned_message(CHANNEL, MSG_TS, "after unpin", "U0AUTHOR").changed
    assert pins(channel_inc)[0].text == "fixed\ntext"


def test_pins_outside_an_incident_channel_are_not_found(service, channel_inc, db_snapshot):
    before = db_snapshot()
    with pytest.raises(NotFound, match="does not belong to an incident"):
        service.record_pin("C0RANDOM", MSG_TS, "U0A", "x", "U0B")
    with pytest.raises(NotFound):
        service.remove_pin("C0RANDOM", MSG_TS, "U0B")
    assert db_snapshot() == before


# -- close and reopen ---------------------------------------------------------------------------------

def test_only_the_lead_or_an_admin_may_close(service, clock, inc, db_snapshot):
    before = db_snapshot()
    with pytest.raises(NotAllowed, match="has no lead yet: take the role with `lead me` first"):
        service.close(inc, "@ann")
    service.assign_role(inc, "lead", "@bob", "@ann")
    before = db_snapshot()
    with pytest.raises(NotAllowed, match=r"Only the Incident Lead \(@bob\) or a bot admin may close incident 1"):
        service.close(inc, "@ann")
    assert db_snapshot() == before

    clock.advance(minutes=90)
    out = service.close(inc, "@bob")
    assert [h.kind for h in out.happened] == ["closed"]
    inc_view = service.get(inc)
    assert (inc_view.status, inc_view.closed_by, inc_view.closed_at) == ("closed", "@bob",
                                                                         aware(T0 + dt.timedelta(minutes=90)))
    assert inc_view.status_text == "Resolved" and inc_view.duration == dt.timedelta(minutes=90)
    assert entries(service, inc)[-1] == ("closed", aware(T0 + dt.timedelta(minutes=90)), "@bob",
                                         "@bob closed the incident: resolved")
    assert inc_view.close_reason == "resolved"


def test_an_admin_may_close_without_being_lead(service, inc):
    service.assign_role(inc, "lead", "@bob", "@ann")
    assert service.close(inc, "@admin").incident.closed_by == "@admin"


def test_closing_twice_says_when_it_was_closed(service, inc, db_snapshot):
    service.close(inc, "@admin")
    before = db_snapshot()
    with pytest.raises(InvalidInput, match="Incident 1 was already closed at 2024-03-05 10:00 GMT"):
        service.close(inc, "@admin")
    assert db_snapshot() == before


def test_reopen_rules(service, clock, inc, db_snapshot):
    with pytest.raises(InvalidInput, match="Incident 1 is still open"):
        service.reopen(inc, "@admin")
    service.assign_role(inc, "lead", "@bob", "@ann")
    service.close(inc, "@bob")
    before = db_snapshot()
    with pytest.raises(NotAllowed, match="may reopen incident 1"):
        service.reopen(inc, "@ann")
    assert db_snapshot() == before

    clock.advance(minutes=5)
    out = service.reopen(inc, "@bob")
    assert (out.incident.status, out.incident.closed_at, out.incident.closed_by) == ("open", None, None)
    assert entries(service, inc)[-1] == ("reopened", aware(T0 + dt.timedelta(minutes=5)), "@bob",
                                         "@bob reopened the incident")
    assert service.close(inc, "@bob").incident.status == "closed"


# -- reading ------------------------------------------------------------------------------------------

def test_list_open_closed_all(service):
    for title in ("one", "two", "three"):
        service.declare(title, "@ann")
    service.assign_role(2, "lead", "@bob", "@ann")
    service.close(2, "@bob")
    assert [i.number for i in service.list()] == [3, 1]
    assert [(i.number, i.roles.get("lead")) for i in service.list("closed")] == [(2, "@bob")]
    assert [i.number for i in service.list("all")] == [3, 2, 1]
    with pytest.raises(InvalidInput, match="choose open, closed or all"):
        service.list("some")


def test_times_are_shown_in_the_settings_time_zone(service):
    assert service.format_time(dt.datetime(2024, 3, 5, 10, 0)) == "2024-03-05 10:00 GMT"
    assert service.format_time(dt.datetime(2024, 7, 5, 10, 0)) == "2024-07-05 11:00 BST"
    assert service.format_time(None) == "-"


def test_a_whole_incident_leaves_a_complete_timeline(service, clock):
    steps = [
        lambda: service.declare("Payments failing", "@ann"),
        lambda: service.assign_role(1, "lead", "@bob", "@ann"),
        lambda: service.assign_role(1, "scribe", "@cat", "@bob"),
        lambda: service.set_summary(1, "Card payments fail", "@bob"),
        lambda: service.set_impact(1, "Nobody can pay", "@bob"),
        lambda: service.set_severity(1, "major", "@bob"),
        lambda: service.log(1, "action", "Restart", "@cat"),
        lambda: service.complete_action(1, 1, "@cat"),
        lambda: service.log(1, "decision", "Roll back", "@bob"),
        lambda: service.release_role(1, "scribe", "@bob"),
        lambda: service.close(1, "@bob"),
    ]
    for minute, step in enumerate(steps):
        clock.value = T0 + dt.timedelta(minutes=minute)
        assert step().changed
    timeline = service.timeline(1)
    assert [(e.kind, e.at, e.author) for e in timeline] == [
        (kind, aware(T0 + dt.timedelta(minutes=i)), who) for i, (kind, who) in enumerate([
            ("declared", "@ann"), ("role", "@ann"), ("role", "@bob"), ("summary", "@bob"),
            ("impact", "@bob"), ("severity", "@bob"), ("action", "@cat"), ("action_done", "@cat"),
            ("decision", "@bob"), ("role", "@bob"), ("closed", "@bob")])]
