"""The outbox and the inbox on SQLite and PostgreSQL: order per incident, coalescing, leases, retries,
concurrent workers, and inputs kept until handled (issue 6)."""
from __future__ import annotations

import contextlib
import json
import threading

import pytest

from opg_incident_core import outbox, storage
from opg_incident_slack.gateway import SlackError
from opg_incident_slack.outbox_worker import OutboxWorker

from conftest import logged

LEAD = "U0LEAD001"


@pytest.fixture
def announcing(service):
    service.announce_kinds = frozenset({"declared", "role", "closed"})
    service.refresh_kinds = frozenset({"declared", "summary", "role", "closed"})
    return service


def kinds(items):
    return [(i.number, i.kind) for i in items]


def test_nothing_is_queued_without_an_adapter(service):
    number = service.declare("DB down", LEAD).incident.number
    service.set_summary(number, "x", LEAD)
    assert outbox.pending() == 0


def test_items_are_written_with_the_change_and_claimed_in_order_per_incident(announcing, clock):
    one = announcing.declare("DB down", LEAD).incident.number
    two = announcing.declare("Web down", LEAD).incident.number
    announcing.assign_role(one, "lead", LEAD, LEAD)
    # Heads of each incident's queue only: incident 1's declared, incident 2's declared.
    first = outbox.claim("a", clock(), limit=10)
    assert kinds(first) == [(one, "declared"), (two, "declared")]
    assert outbox.claim("b", clock(), limit=10) == []  # the rest wait for the heads
    outbox.done(first[0].id, clock())
    nxt = outbox.claim("b", clock(), limit=10)
    assert kinds(nxt) == [(one, "refresh")]


def test_headline_refreshes_are_coalesced_and_spaced_a_second_apart(announcing, clock):
    number = announcing.declare("DB down", LEAD).incident.number
    for text in ("a", "b", "c"):
        announcing.set_summary(number, text, LEAD)
    refreshes = storage.OutboxItem.select().where(storage.OutboxItem.kind == "refresh").count()
    assert refreshes == 1
    [declared] = outbox.claim("w", clock())
    outbox.done(declared.id, clock())
    [refresh] = outbox.claim("w", clock())
    outbox.done(refresh.id, clock())
    announcing.set_summary(number, "d", LEAD)
    assert outbox.claim("w", clock()) == []  # within a second of the last edit
    clock.advance(seconds=1)
    assert kinds(outbox.claim("w", clock())) == [(number, "refresh")]


def test_a_refresh_being_sent_does_not_swallow_a_later_change(announcing, clock):
    number = announcing.declare("DB down", LEAD).incident.number
    [declared] = outbox.claim("w", clock())
    outbox.done(declared.id, clock())
    [refresh] = outbox.claim("w", clock())  # leased: being sent now
    announcing.set_summary(number, "later", LEAD)
    pending = storage.OutboxItem.select().where(storage.OutboxItem.kind == "refresh",
                                                storage.OutboxItem.status == "pending").count()
    assert pending == 2 and refresh.kind == "refresh"


def test_a_crashed_workers_items_come_back_after_the_lease(announcing, clock):
    announcing.declare("DB down", LEAD)
    [item] = outbox.claim("dead", clock(), lease_seconds=30)
    outbox.started(item.id, 0)  # it may have reached Slack
    assert outbox.claim("alive", clock()) == []
    clock.advance(seconds=31)
    [again] = outbox.claim("alive", clock())
    assert again.id == item.id and again.may_have_sent and again.attempts == 2


def test_retry_waits_then_gives_up_and_a_parked_item_no_longer_holds_its_incident_back(announcing, clock):
    announcing.declare("DB down", LEAD)
    [item] = outbox.claim("w", clock())
    assert outbox.retry(item.id, clock(), 5, "ratelimited", max_attempts=2)
    assert outbox.claim("w", clock()) == []
    clock.advance(seconds=5)
    [item] = outbox.claim("w", clock())
    assert not outbox.retry(item.id, clock(), 5, "ratelimited", max_attempts=2)
    assert storage.OutboxItem.get_by_id(item.id).status == "pending"  # the worker parks it (and tells)
    assert outbox.park(item.id, clock(), "ratelimited (tried 2 times)", owner="w")
    assert not outbox.park(item.id, clock(), "again", owner="w")  # once
    row = storage.OutboxItem.get_by_id(item.id)
    assert (row.status, row.last_error) == ("parked", "ratelimited (tried 2 times)")
    assert kinds(outbox.claim("w", clock())) == [(1, "refresh")]  # the next item of the incident goes out


def test_concurrent_workers_never_claim_the_same_item(announcing, clock, db):
    for i in range(30):
        announcing.declare(f"Incident {i}", LEAD)
    claimed: list[list[int]] = [[], [], []]
    barrier = threading.Barrier(3)

    def work(slot):
        barrier.wait()
        try:
            while True:
                items = outbox.claim(f"w{slot}", clock(), limit=3)
                if not items:
                    return
                for item in items:
                    claimed[slot].append(item.id)
                    outbox.done(item.id, clock())
        finally:
            storage.database.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    everything = [i for ids in claimed for i in ids]
    assert len(everything) == len(set(everything))
    assert storage.OutboxItem.select().where(storage.OutboxItem.status == "done").count() == len(everything)
    assert outbox.pending() == 2 * 30 - len(everything)  # the refreshes behind each declared remain


# -- the worker, with the Slack gateway as the edge ---------------------------------------------------
class Gateway:
    def __init__(self, failures=()):
        self.failures = list(failures)
        self.sent, self.verified = [], []

    @contextlib.contextmanager
    def once(self, key, verify):
        self.verified.append((key, verify))
        yield

    def fail_or_send(self, what):
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(what)


class Effects:
    def __init__(self, service, gateway):
        self.service, self.slack = service, gateway

    def plan(self, item):
        return [lambda: self.slack.fail_or_send((item.kind, "first")),
                lambda: self.slack.fail_or_send((item.kind, "second"))]


def test_worker_retries_after_retry_after_and_resumes_at_the_failed_step(announcing, clock):
    announcing.declare("DB down", LEAD)
    gateway = Gateway([SlackError("chat.update", "ratelimited", retry_after=7)])
    worker = OutboxWorker(Effects(announcing, gateway))
    # First round: step 0 is rate limited.
    assert worker.run_once()
    row = storage.OutboxItem.select().order_by(storage.OutboxItem.id).first()
    assert row.status == "pending" and row.step == 0
    assert (row.next_at - clock()).total_seconds() == pytest.approx(7)
    clock.advance(seconds=7)
    assert worker.run_once()
    assert gateway.sent[:2] == [("declared", "first"), ("declared", "second")]
    assert ("1.0", True) in gateway.verified  # the step that started before is checked before it is sent


def tells(number: int | None = None) -> list[dict]:
    return [json.loads(r.payload) for r in storage.OutboxItem.select().where(storage.OutboxItem.kind == "tell")
            .order_by(storage.OutboxItem.id)]


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "is_archived", "invalid_blocks",
                                  "msg_too_long", "restricted_action", "missing_scope"])
def test_an_item_slack_refuses_for_good_is_parked_told_to_the_lead_and_logged(announcing, clock, code):
    number = announcing.declare("DB down", LEAD).incident.number
    gateway = Gateway([SlackError("chat.postMessage", code)])
    effects = Effects(announcing, gateway)
    worker = OutboxWorker(effects)
    with logged("opg_incident_slack.outbox_worker") as lines:
        worker.run_once()
    row = storage.OutboxItem.get_by_id(1)
    assert row.status == "parked" and gateway.sent == []  # not the next step, not again
    assert code in row.last_error
    [tell] = tells()
    assert tell["user"] == LEAD and tell["about_parked"] == 1
    assert tell["text"].startswith(f"⚠️ Incident {number}: I could not post the headline, and I will not try "
                                   f"again: Slack refused chat.postMessage: ")
    assert any("parked" in line and "U0LEAD001 is told" in line for line in lines), lines
    # The incident's later items go out; a message about a parked item that is refused too is not told again.
    def refused():
        raise SlackError("chat.postMessage", "cannot_dm_bot")
    effects.plan = lambda item: [refused] if item.kind == "tell" else Effects.plan(effects, item)
    clock.advance(seconds=2)
    while worker.run_once():
        clock.advance(seconds=2)
    assert gateway.sent == [("refresh", "first"), ("refresh", "second")]
    assert [r.status for r in storage.OutboxItem.select().order_by(storage.OutboxItem.id)] == ["parked", "done", "parked"]
    assert len(tells()) == 1


def test_an_item_failing_again_and_again_is_parked_after_its_attempts_not_retried_for_ever(announcing, clock):
    announcing.declare("DB down", LEAD)
    gateway = Gateway([SlackError("chat.update", "internal_error")] * 3 + [KeyError("a bug")] * 3)
    worker = OutboxWorker(Effects(announcing, gateway), max_attempts=3)
    for _ in range(3):
        worker.run_once()
        clock.advance(seconds=400)
    assert storage.OutboxItem.get_by_id(1).status == "parked"
    assert "tried 3 times" in storage.OutboxItem.get_by_id(1).last_error
    worker.run_once()  # the next item (the refresh) hits the bug three times
    for _ in range(3):
        clock.advance(seconds=400)
        worker.run_once()
    refresh = storage.OutboxItem.get_by_id(2)
    assert (refresh.kind, refresh.status) == ("refresh", "parked") and "KeyError" in refresh.last_error
    assert len(tells()) == 2


def test_an_item_claimed_more_often_than_its_attempts_is_parked(announcing, clock):
    """A worker that dies while sending it (a crash each time) leaves it claimed again and again."""
    announcing.declare("DB down", LEAD)
    for _ in range(3):
        outbox.claim("dying", clock(), lease_seconds=1)
        clock.advance(seconds=2)
    gateway = Gateway()
    OutboxWorker(Effects(announcing, gateway), max_attempts=3).run_once()
    assert storage.OutboxItem.get_by_id(1).status == "parked" and gateway.sent == []


# -- the inbox ----------------------------------------------------------------------------------------
def test_inputs_are_recorded_once_and_kept_until_handled(service, clock):
    payload = {"event_id": "Ev1", "event": {"type": "pin_added"}}
    assert service.record_input("Ev1", "events_api", payload)
    assert not service.record_input("Ev1", "events_api", payload)
    service.record_input("Ev2", "events_api", {"event_id": "Ev2", "event": {"type": "message"}})
    clock.advance(seconds=1)
    assert [k for k, _, _ in service.unprocessed_inputs(clock())] == ["Ev1", "Ev2"]
    service.mark_processed("Ev1")
    assert [k for k, _, _ in service.unprocessed_inputs(clock())] == ["Ev2"]
    clock.advance(days=2)
    assert [k for k, _, _ in service.unprocessed_inputs(clock())] == ["Ev2"]  # however old: no silent cut-off


def test_a_command_marks_its_input_in_the_transaction_of_its_change(service):
    number = service.declare("DB down", LEAD).incident.number
    service.record_input("Ev9", "events_api", {"event": {"type": "message"}})
    with outbox.origin("C1", "Ev9"):
        service.set_summary(number, "x", LEAD)
    assert storage.InboxEntry.get(storage.InboxEntry.key == "Ev9").processed_at is not None


def test_a_worker_whose_lease_ran_out_stops_and_leaves_the_item_to_its_new_owner(announcing, clock):
    announcing.declare("DB down", LEAD)
    [item] = outbox.claim("slow", clock(), lease_seconds=30)
    assert outbox.hold(item.id, "slow", clock(), 30, 0)
    clock.advance(seconds=31)  # the slow worker is stuck in a call
    [taken] = outbox.claim("fast", clock(), lease_seconds=30)
    assert taken.id == item.id
    assert not outbox.hold(item.id, "slow", clock(), 30, 1)  # the slow one must stop
    assert not outbox.advanced(item.id, 1, owner="slow")
    outbox.done(item.id, clock(), owner="slow")
    assert storage.OutboxItem.get_by_id(item.id).status == "pending"
    assert outbox.hold(item.id, "fast", clock(), 30, 0) and outbox.advanced(item.id, 1, owner="fast")
    outbox.done(item.id, clock(), owner="fast")
    assert storage.OutboxItem.get_by_id(item.id).status == "done"


def test_housekeeping_forgets_old_handled_inputs_and_sent_items_only(announcing, clock):
    announcing.declare("DB down", LEAD)
    announcing.record_input("Ev1", "events_api", {"event": {}})
    announcing.mark_processed("Ev1")
    announcing.record_input("Ev2", "events_api", {"event": {}})  # never handled: kept for replay
    [item] = outbox.claim("w", clock())
    outbox.done(item.id, clock())
    clock.advance(days=15)
    assert announcing.prune(days=14) == 2
    assert [e.key for e in storage.InboxEntry.select()] == ["Ev2"]
    assert storage.OutboxItem.select().where(storage.OutboxItem.status == "done").count() == 0
    assert outbox.pending() == 1  # the refresh still waiting is kept
