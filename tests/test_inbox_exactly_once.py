"""The inbox's exactly-once rules in the core, on SQLite and PostgreSQL (issue 6): a change marks its input
handled in its own transaction, once, so a second process handling the same input rolls its change back;
inputs a dead process left are taken over by one process at a time."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from opg_incident_core import outbox, storage
from opg_incident_core.errors import AlreadyHandled

from conftest import logged

LEAD = "U0LEAD001"


def payload(key: str, event_time: float | None = None) -> dict:
    return {"event_id": key, "event_time": int(event_time or time.time()), "event": {"type": "message"}}


def test_a_change_for_an_input_handled_elsewhere_rolls_back(service):
    number = service.declare("DB down", LEAD).incident.number
    service.record_input("Ev1", "events_api", payload("Ev1"))
    with outbox.origin(None, "Ev1"):
        service.log(number, "note", "first", LEAD)
        service.log(number, "note", "same command, second change", LEAD)  # its own input: fine
    with outbox.origin(None, "Ev1"), pytest.raises(AlreadyHandled):
        service.log(number, "note", "a replay of Ev1 elsewhere", LEAD)
    assert [e.text for e in service.timeline(number) if e.kind == "note"] == [
        "first", "same command, second change"]


def test_inputs_left_by_a_dead_process_are_taken_over_once(service, clock):
    for key in ("Ev1", "Ev2"):
        service.record_input(key, "events_api", payload(key, clock().replace(tzinfo=dt.timezone.utc).timestamp()))
    service.mark_processed("Ev2")
    clock.advance(seconds=31)
    stale = clock() - dt.timedelta(seconds=30)
    assert [k for k, _, _ in service.take_over_inputs(stale)] == ["Ev1"]
    assert service.take_over_inputs(stale) == []  # claimed: nobody else takes it while it is fresh
    clock.advance(seconds=31)  # its taker died too
    assert [k for k, _, _ in service.take_over_inputs(clock() - dt.timedelta(seconds=30))] == ["Ev1"]


def test_inputs_a_live_process_holds_are_not_taken_over(service, clock):
    """A storm's backlog: inputs recorded here and queued behind others for longer than a lease are this
    process's (it is alive), not a dead one's; taking them over would handle them twice over and slow it more."""
    from opg_incident_slack.inputs import NEW, SlackInputs

    inputs = SlackInputs(service, interactions=None)
    for key in ("Ev1", "Ev2", "Ev3"):
        assert inputs.record(key, "events_api", payload(key)) == NEW
    inputs.processed("Ev3")
    assert sorted(inputs.in_hand()) == ["Ev1", "Ev2"]
    with inputs.handling(None, "Ev2"):
        pass  # handled: no longer in hand
    assert inputs.in_hand() == ["Ev1"]
    clock.advance(seconds=31)
    assert service.hold_inputs(inputs.in_hand()) == 1
    assert service.take_over_inputs(clock() - dt.timedelta(seconds=30)) == []  # Ev1 is held, Ev2, Ev3 handled
    clock.advance(seconds=31)  # the process holding it died: its lease ran out
    assert [k for k, _, _ in service.take_over_inputs(clock() - dt.timedelta(seconds=30))] == ["Ev1"]


def test_inputs_arriving_together_are_written_together_once_each(service, monkeypatch):
    """Group commit: while one write waits (on SQLite: behind a long transaction), the inputs that arrive join
    the next write, all in one transaction; each key is new once, however many deliveries of it race."""
    import threading

    from opg_incident_core import inbox

    groups = []
    real = inbox._write_inputs
    monkeypatch.setattr(inbox, "_write_inputs", lambda group: (groups.append(len(group)), real(group))[1])
    results: dict = {}
    keys = [f"Ev{n % 10}" for n in range(30)]  # ten inputs, each delivered three times at once

    def deliver(i, key):
        results[i] = service.record_input(key, "events_api", payload(key))

    threads = [threading.Thread(target=deliver, args=(i, key)) for i, key in enumerate(keys)]
    with storage.write():  # a long transaction: the first write waits, the others gather behind it
        for thread in threads:
            thread.start()
        recorder = service.inbox._group_commit
        deadline = time.monotonic() + 10
        while len(recorder._waiting) < len(keys) - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    assert sorted(k for i, k in enumerate(keys) if results[i]) == sorted(set(keys))  # each new exactly once
    if storage.is_sqlite(storage.database.obj):  # (PostgreSQL's writers do not queue behind one transaction)
        assert sum(groups) == len(keys) and len(groups) <= 3, groups  # not one transaction each
    assert storage.InboxEntry.select().count() == 10


def test_inputs_left_however_long_ago_are_taken_over_and_said(service, clock):
    """No silent age cut-off: an input a crash left two days ago is handled, with a warning naming it."""
    old = clock().replace(tzinfo=dt.timezone.utc).timestamp() - 16 * 60
    service.record_input("Ev1", "events_api", payload("Ev1", old))
    clock.advance(days=2)
    with logged("opg_incident_core.inbox") as lines:
        assert [k for k, _, _ in service.take_over_inputs(clock())] == ["Ev1"]
    assert "Input Ev1 (events_api) was recorded 2880 minutes ago and never handled: handling it now" in lines


