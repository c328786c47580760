"""The outbox and the inbox on SQLite and PostgreSQL: order per incident, coalescing, leases, retries,
concurrent workers, and inputs kept until handled (issue 6). Items are queued by the Slack adapter's
subscriber (Effects.heard), in the transaction of the change; the headline's pace is its sync step's own."""
from __future__ import annotations

import contextlib
import json
import threading

import pytest

from opg_incident_core import outbox, storage
from opg_incident_slack import Effects as SlackEffects
from opg_incident_slack.gateway import SlackError
from opg_incident_slack.kinds import KINDS
from opg_incident_slack.outbox_worker import OutboxWorker

from conftest import logged

LEAD = "U0LEAD001"


class Config:
    INCIDENT_PUBLIC_URL = "https://incidents.example"


class Headlines:
    """The gateway as the headline's sync step uses it: posts and edits, counted."""

    def __init__(self):
        self.posts, self.updates = [], []

    @contextlib.contextmanager
    def once(self, key, verify, since=None):
        yield

    def channel_id(self, name):
        return "C0INCIDENTS"

    def post(self, channel, text, blocks=None, thread_ts=None, meta=None):
        self.posts.append((channel, text, thread_ts))
        return f"1700000000.{len(self.posts):06d}"

    def update(self, channel, ts, text, blocks=None):
        self.updates.append((channel, ts, json.dumps(blocks, ensure_ascii=False)))


@pytest.fixture
def slack_effects(service, settings_box):
    """The Slack adapter's effects: its subscriber queues what Slack is told of each change."""
    return SlackEffects(Headlines(), service, lambda: settings_box[0], Config())


@pytest.fixture
def announcing(service, slack_effects):
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
    assert kinds(first) == [(one, "headline"), (two, "headline")]  # a new incident's headline goes first
    assert outbox.claim("b", clock(), limit=10) == []  # the rest wait for the heads
    outbox.done(first[0].id, clock())
    nxt = outbox.claim("b", clock(), limit=10)
    assert kinds(nxt) == [(one, "role")]  # the role's headline change joined the headline still waiting


def test_a_declaration_queues_one_headline_sync_and_nothing_else_for_the_headline(announcing):
    announcing.declare("DB down", LEAD)
    assert [i.kind for i in storage.OutboxItem.select()] == ["headline"]


def test_headline_edits_are_coalesced_settled_and_a_second_apart_in_one_place(announcing, slack_effects, clock):
    slack = slack_effects.slack
    worker = OutboxWorker(slack_effects)
    number = announcing.declare("DB down", LEAD).incident.number
    worker.run_once()
    assert len(slack.posts) == 1 and slack.updates == []  # posted at once, and not edited after
    for text in ("a", "b", "c"):
        announcing.set_summary(number, text, LEAD)
    assert storage.OutboxItem.select().where(storage.OutboxItem.status == "pending").count() == 1
    worker.run_once()
    assert slack.updates == []  # settling: the changes that follow at once go in the same edit
    clock.advance(seconds=1.5)
    worker.run_once()
    assert len(slack.updates) == 1 and "Summary: c" in slack.updates[0][2]
    # A change made while an edit is on its way: its own edit comes a second after that one ended.
    announcing.set_summary(number, "d", LEAD)
    clock.advance(seconds=1.5)
    [sending] = outbox.claim("other", clock())
    announcing.set_summary(number, "e", LEAD)  # not joined to the item being sent
    clock.advance(seconds=1.4)
    outbox.done(sending.id, clock(), owner="other")
    clock.advance(seconds=0.2)  # settled (1.6 s after "e"), but 0.2 s after the last edit
    worker.run_once()
    assert len(slack.updates) == 1
    clock.advance(seconds=0.8)
    worker.run_once()
    assert len(slack.updates) == 2


def test_a_headline_sync_being_sent_does_not_swallow_a_later_change(announcing, clock):
    number = announcing.declare("DB down", LEAD).incident.number
    [sync] = outbox.claim("w", clock())  # leased: being sent now
    announcing.set_summary(number, "later", LEAD)
    pending = storage.OutboxItem.select().where(storage.OutboxItem.kind == "headline",
                                                storage.OutboxItem.status == "pending").count()
    assert pending == 2 and sync.kind == "headline"


def test_a_crashed_workers_items_come_back_after_the_lease(announcing, clock):
    announcing.declare("DB down", LEAD)
    [item] = outbox.claim("dead", clock(), lease_seconds=30)
    outbox.started(item.id, 0)  # it may have reached Slack
    assert outbox.claim("alive", clock()) == []
    clock.advance(seconds=31)
    [again] = outbox.claim("alive", clock())
    assert again.id == item.id and again.may_have_sent and again.attempts == 2


def test_retry_waits_then_gives_up_and_a_parked_item_no_longer_holds_its_incident_back(announcing, clock):
    announcing.declare("DB down", LEAD, lead=LEAD)
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
    assert kinds(outbox.claim("w", clock())) == [(1, "role")]  # the next item of the incident goes out


def test_concurrent_workers_never_claim_the_same_item(announcing, clock, db):
    for i in range(30):
        announcing.declare(f"Incident {i}", LEAD, lead=LEAD)
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
    assert outbox.pending() == 2 * 30 - len(everything)  # any role announcement left behind its headline


# -- the worker, with the Slack gateway as the edge ---------------------------------------------------
class Gateway:
    def __init__(self, failures=()):
        self.failures = list(failures)
        self.sent, self.verified = [], []

    @contextlib.contextmanager
    def once(self, key, verify, since=None):
        self.verified.append((key, verify))
        yield

    def fail_or_send(self, what):
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(what)


class Effects:
    def __init__(self, service, gateway):
        self.service, self.slack = service, gateway

    def what(self, kind):
        return KINDS.what(kind)

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
    assert gateway.sent[:2] == [("headline", "first"), ("headline", "second")]
    assert ("1.0", True) in gateway.verified  # the step that started before is checked before it is sent


def tells(number: int | None = None) -> list[dict]:
    return [json.loads(r.payload) for r in storage.OutboxItem.select().where(storage.OutboxItem.kind == "tell")
            .order_by(storage.OutboxItem.id)]


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "is_archived", "invalid_blocks",
                                  "msg_too_long", "restricted_action", "missing_scope"])
def test_an_item_slack_refuses_for_good_is_parked_told_to_the_lead_and_logged(announcing, clock, code):
    number = announcing.declare("DB down", LEAD, lead=LEAD).incident.number
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
    assert tell["text"].startswith(f"⚠️ Incident {number}: I could not post or update the headline, and I will not "
                                   f"try again: Slack refused chat.postMessage: ")
    assert any("parked" in line and "U0LEAD001 is told" in line for line in lines), lines
    # The incident's later items go out; a message about a parked item that is refused too is not told again.
    def refused():
        raise SlackError("chat.postMessage", "cannot_dm_bot")
    effects.plan = lambda item: [refused] if item.kind == "tell" else Effects.plan(effects, item)
    clock.advance(seconds=2)
    while worker.run_once():
        clock.advance(seconds=2)
    assert gateway.sent == [("role", "first"), ("role", "second")]
    assert [r.status for r in storage.OutboxItem.select().order_by(storage.OutboxItem.id)] == ["parked", "done", "parked"]
    assert len(tells()) == 1


def test_an_item_failing_again_and_again_is_parked_after_its_attempts_not_retried_for_ever(announcing, clock):
    announcing.declare("DB down", LEAD, lead=LEAD)
    gateway = Gateway([SlackError("chat.update", "internal_error")] * 3 + [KeyError("a bug")] * 3)
    worker = OutboxWorker(Effects(announcing, gateway), max_attempts=3)
    for _ in range(3):
        worker.run_once()
        clock.advance(seconds=400)
    assert storage.OutboxItem.get_by_id(1).status == "parked"
    assert "tried 3 times" in storage.OutboxItem.get_by_id(1).last_error
    worker.run_once()  # the next item (the role's announcement) hits the bug three times
    for _ in range(3):
        clock.advance(seconds=400)
        worker.run_once()
    role = storage.OutboxItem.get_by_id(2)
    assert (role.kind, role.status) == ("role", "parked") and "KeyError" in role.last_error
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
    announcing.declare("DB down", LEAD, lead=LEAD)
    announcing.record_input("Ev1", "events_api", {"event": {}})
    announcing.mark_processed("Ev1")
    announcing.record_input("Ev2", "events_api", {"event": {}})  # never handled: kept for replay
    [item] = outbox.claim("w", clock())
    outbox.done(item.id, clock())
    clock.advance(days=15)
    assert announcing.prune(days=14) == 2
    assert [e.key for e in storage.InboxEntry.select()] == ["Ev2"]
    assert storage.OutboxItem.select().where(storage.OutboxItem.status == "done").count() == 0
    assert outbox.pending() == 1  # the announcement still waiting is kept


# -- the kinds' registry ------------------------------------------------------------------------------
def test_each_outbox_kind_is_declared_once_with_its_sender_and_what_it_does():
    from opg_incident_slack.kinds import OutboxKinds

    assert KINDS.announced() == {"role", "closed", "reopened", "offered", "handover_accepted", "handover_declined",
                                 "handover_expired", "handover_withdrawn", "archived", "rca_ready", "rca_published",
                                 "update", "call", "invite", "ask", "page", "rca_shared"}
    for kind in ("headline", "create_channel", "ack", "page_oncall", "tell", "post", "react", "remind", "archive",
                 "escalation_menu", "role", "closed"):
        assert KINDS.what(kind), kind  # said in people's words when it is given up
    kinds = OutboxKinds()

    @kinds.job("told", what="tell")
    def told(effects, item):
        effects.append(item)

    with pytest.raises(ValueError, match="declared twice"):
        @kinds.job("told", what="tell again")
        def told_again(effects, item):
            pass
    done = []
    [step] = kinds.plan(done, outbox.Item(1, "told", None, {}, 0, None, 1))
    step()
    assert [i.kind for i in done] == ["told"]
    assert kinds.plan(done, outbox.Item(2, "unknown", None, {}, 0, None, 1)) == []
