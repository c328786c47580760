"""The core's subscribers (issue 11, item 2): an adapter hears what happened inside the change's transaction,
so what it queues commits with the change or not at all; the core decides nothing about what a platform is
told."""
from __future__ import annotations

import pytest

from opg_incident_core import outbox, storage

LEAD, BOB = "U0LEAD001", "U0BOB0002"


def test_a_subscriber_hears_the_kinds_it_asked_for_with_the_incident_as_it_is_now(service):
    heard, everything = [], []
    service.subscribe(heard.append, kinds={"severity"})
    service.subscribe(everything.append)
    number = service.declare("DB down", LEAD).incident.number
    service.set_summary(number, "x", LEAD)
    service.set_severity(number, "critical", LEAD)
    service.set_severity(number, "critical", LEAD)  # nothing happened: nobody hears it
    assert [[h.kind for h in r.happened] for r in heard] == [["severity"]]
    assert heard[0].incident.severity == "critical" and heard[0].incident.number == number
    assert [[h.kind for h in r.happened] for r in everything] == [["declared"], ["summary"], ["severity"]]
    assert service.hears("severity") and service.hears("anything")


def test_what_a_subscriber_queues_commits_with_the_change_or_not_at_all(service):
    def queue(recorded):
        recorded.queue("told", {"what": recorded.happened[0].kind})
        if recorded.happened[0].kind == "impact":
            raise RuntimeError("the adapter failed")
    service.subscribe(queue)
    number = service.declare("DB down", LEAD).incident.number
    assert [i.kind for i in storage.OutboxItem.select()] == ["told"]
    with pytest.raises(RuntimeError):
        service.set_impact(number, "Nobody can pay", LEAD)
    assert service.get(number).impact == ""  # the change rolled back with its item
    assert [e.kind for e in service.timeline(number)] == ["declared"]
    assert outbox.pending() == 1


def test_without_subscribers_nothing_is_queued_and_nothing_can_page(service):
    number = service.declare("DB down", LEAD).incident.number
    service.assign_role(number, "lead", BOB, LEAD)
    assert outbox.pending() == 0 and not service.hears("page")
