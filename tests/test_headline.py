"""The headline against the fake Slack (issue 11, item 2): one idempotent sync step posts it when the incident
has none, otherwise updates it, at its own pace. The Web API calls are counted by the fake; the core, the
database, the Slack adapter and the outbox worker are real (each `process` is one bot process, or replica), and
last the whole errbot process."""
from __future__ import annotations

import pytest
from slack_sdk import WebClient

import reliability_kit as kit
from fake_slack import FakeSlack
from opg_incident_core import IncidentService, outbox
from opg_incident_slack import Effects
from opg_incident_slack.gateway import SlackGateway
from opg_incident_slack.outbox_worker import OutboxWorker
from slack_bot import ALICE, BOB, SlackBot, seed


class Config:
    INCIDENT_PUBLIC_URL = "https://incidents.example"


@pytest.fixture
def fake():
    with FakeSlack() as fake:
        fake.add_user(ALICE, "alice", real_name="Alice")
        fake.add_user(BOB, "bob", real_name="Bob")
        fake.incidents = fake.add_channel("opg-incidents", members=[ALICE, BOB])
        yield fake
        assert not fake.internal_errors


def process(fake, settings_box, clock):
    """One bot process on the test's database: its service, and the Slack side: gateway, effects (subscribed
    to the service) and outbox worker."""
    service = IncidentService(lambda: settings_box[0], clock=clock)
    gateway = SlackGateway(WebClient(token=fake.bot_token, base_url=fake.api_url))
    effects = Effects(gateway, service, lambda: settings_box[0], Config())
    return service, OutboxWorker(effects)


def drain(worker, clock, seconds=10):
    """Run the worker as time goes by (a quarter of a second a round) until `seconds` have passed."""
    for _ in range(int(seconds * 4)):
        worker.run_once()
        clock.advance(seconds=0.25)


def headline_calls(fake):
    channel = fake.incidents
    posts = [c for c in fake.calls_of("chat.postMessage", channel=channel) if not c.params.get("thread_ts")]
    edits = [c for c in fake.calls_of("chat.update", channel=channel)]
    return posts, edits


def test_a_declaration_posts_its_headline_once_and_never_edits_it_whoever_sends_its_outbox(
        fake, db, settings_box, clock):
    """Before the sync step, a declaration queued a post and a refresh: the process that posted skipped the
    refresh it could tell was a no-op, and any other process (a replica, the bot after a restart) edited
    the headline it had just posted."""
    service, first_worker = process(fake, settings_box, clock)
    _, second_worker = process(fake, settings_box, clock)
    service.declare("Payments are failing", ALICE, severity="major", lead=ALICE)
    first_worker.run_once()  # this process posts the headline, then stops (restarted, or the other replica)
    posts, edits = headline_calls(fake)
    assert len(posts) == 1 and edits == []
    drain(second_worker, clock)
    drain(first_worker, clock)
    posts, edits = headline_calls(fake)
    assert len(posts) == 1 and edits == [], [c.method for c in fake.calls]
    assert outbox.pending() == 0
    assert service.get(1).headline_ts == posts[0].response["ts"]
    assert [c.method for c in fake.calls] == ["conversations.list", "chat.postMessage",  # the headline
                                              "chat.postMessage"]  # the lead is told (to their id: no DM look-up)


def test_changes_that_come_together_make_one_edit_of_the_headline(fake, db, settings_box, clock):
    service, worker = process(fake, settings_box, clock)
    number = service.declare("Payments are failing", ALICE).incident.number
    drain(worker, clock, seconds=3)
    for severity in ("critical", "trivial", "major", "critical"):  # a change every half second
        service.set_severity(number, severity, ALICE)
        for _ in range(2):
            worker.run_once()
            clock.advance(seconds=0.25)
    drain(worker, clock, seconds=5)
    posts, edits = headline_calls(fake)
    assert len(posts) == 1 and len(edits) == 1  # settled: the edit waited for the changes that followed
    assert "Severity: *Critical*" in str(edits[0].params.get("blocks"))


@pytest.mark.e2e
def test_a_declaration_in_the_real_process_makes_one_post_of_its_headline_and_no_edit(tmp_path):
    """The real `errbot -c config.py` process: the modal's declaration, then quiet for 3 s (past the settle)."""
    with FakeSlack("socket") as fake:
        channels = seed(fake)
        with SlackBot(fake, tmp_path) as bot:
            fake.reset_calls()
            kit.declare_by_modal(fake, channels, "Payments are failing")
            head = kit.headline(fake, channels)
            kit.settle(fake, bot.database_url, timeout=30, quiet=3)
            posts = [c for c in fake.calls_of("chat.postMessage", channel=channels["opg-incidents"])
                     if not c.params.get("thread_ts")]
            assert len(posts) == 1 and fake.calls_of("chat.update", ts=head["ts"]) == []
            assert [c.method for c in fake.calls] == ["views.open", "conversations.list", "chat.postMessage",
                                                      "chat.postMessage"]  # the headline; the lead told
        assert not fake.internal_errors
