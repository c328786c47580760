"""End to end: paging through PagerDuty's Events API v2 (a local receiver stands in for PagerDuty), and
keyword nudges, with the real errbot process against the fake Slack."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import reliability_kit as kit
from conftest import SHIPPED_SETTINGS
from fake_slack import FakeSlack
from opg_incident_slack import blocks
from slack_bot import ALICE, ONCALL, SlackBot, seed
from test_slack_e2e import declare, headline

pytestmark = pytest.mark.e2e


class PagerDuty:
    """Answers like PagerDuty's Events API v2 (202 Accepted) and keeps what it was sent."""

    def __init__(self, fail_first: int = 0):
        self.events, self.fail_first = [], fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.events.append(body)
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"status": "success", "dedup_key": body["dedup_key"]}).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v2/enqueue"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def paged(tmp_path):
    settings = tmp_path / "settings.yml"
    settings.write_text(SHIPPED_SETTINGS.read_text().replace('pagerduty_routing_key: ""',
                                                             'pagerduty_routing_key: "R0UTINGKEY0001"'))
    pagerduty = PagerDuty(fail_first=0)
    with FakeSlack("socket") as fake:
        channels = seed(fake)
        env = {"INCIDENT_SETTINGS": str(settings), "INCIDENT_PAGERDUTY_URL": pagerduty.url}
        with SlackBot(fake, tmp_path, env=env) as bot:
            yield fake, bot, channels, pagerduty
    pagerduty.close()


def test_page_on_call_triggers_pagerduty_with_a_dedup_key_per_page_and_dms(paged):
    fake, bot, channels, pagerduty = paged
    declare(fake, channels)
    fake.click_button(headline(fake, channels), blocks.PAGE_ONCALL, ALICE)
    fake.wait_for(lambda: len(pagerduty.events) == 1)
    fake.click_button(headline(fake, channels), blocks.PAGE_ONCALL, ALICE)  # again (only role holders may)
    fake.wait_for(lambda: len(pagerduty.events) == 2)
    first, second = pagerduty.events
    assert first["routing_key"] == "R0UTINGKEY0001" and first["event_action"] == "trigger"
    assert "Payments are failing" in first["payload"]["summary"]
    assert first["payload"]["custom_details"]["document"] == f"{bot.url}/incidents/1"
    assert first["dedup_key"] != second["dedup_key"]
    fake.wait_for(lambda: len(fake.bot_messages(fake.dm_channel(ONCALL))) == 2)
    # No channel yet: the result goes on the headline's thread.
    head = headline(fake, channels)
    fake.wait_for(lambda: len([m for m in fake.bot_messages(channels["opg-incidents"], thread_ts=head["ts"])
                               if "PagerDuty triggered" in m.get("text", "")]) == 2)


def test_a_drill_without_a_drill_routing_key_triggers_no_pagerduty_event(paged):
    """PagerDuty's routing key is set, paging.drill_routing_key is not: a drill's page goes only to the person
    who asked (labelled DRILL), and PagerDuty gets nothing."""
    fake, bot, channels, pagerduty = paged
    declare(fake, channels, title="Practice: database failover", drill=["drill"])
    fake.click_button(headline(fake, channels), blocks.PAGE_ONCALL, ALICE)
    page = fake.wait_for_message(fake.dm_channel(ALICE), lambda m: "pages you for incident 1" in m["text"])
    assert page["text"].startswith("🧪 DRILL")
    head = headline(fake, channels)
    fake.wait_for_message(channels["opg-incidents"], lambda m: m.get("thread_ts") == head["ts"]
                          and "Paged the on-call lead" in m.get("text", ""))
    fake.wait_for(lambda: kit.pending_outbox(bot.database_url) == 0, message="the outbox never emptied")
    assert pagerduty.events == [] and not fake.bot_messages(fake.dm_channel(ONCALL))


def test_a_failed_page_says_so_and_how_to_page_by_hand(tmp_path):
    settings = tmp_path / "settings.yml"
    settings.write_text(SHIPPED_SETTINGS.read_text().replace('pagerduty_routing_key: ""',
                                                             'pagerduty_routing_key: "R0UTINGKEY0001"'))
    pagerduty = PagerDuty(fail_first=5)
    try:
        with FakeSlack("socket") as fake:
            channels = seed(fake)
            env = {"INCIDENT_SETTINGS": str(settings), "INCIDENT_PAGERDUTY_URL": pagerduty.url, "INCIDENT_ONCALL": ""}
            with SlackBot(fake, tmp_path, env=env):
                declare(fake, channels)
                head = headline(fake, channels)
                fake.click_button(head, blocks.PAGE_ONCALL, ALICE)
                failed = fake.wait_for_message(channels["opg-incidents"],
                                               lambda m: "Paging the on-call lead failed" in m.get("text", ""))
                assert "by hand" in failed["text"] and failed.get("thread_ts") == head["ts"]
    finally:
        pagerduty.close()


def test_keyword_nudge_once_per_incident(paged):
    fake, bot, channels, _ = paged
    declare(fake, channels)
    fake.click_button(headline(fake, channels), blocks.CREATE_CHANNEL, ALICE)
    channel = fake.wait_for(lambda: "inc-1-payments-are-failing" in fake.channels
                            and fake.channel("inc-1-payments-are-failing")).id
    fake.wait_for(lambda: ALICE in fake.members(channel))  # the invites follow the channel's creation
    fake.post_message(channel, ALICE, "Is there a Runbook for the payment workers?")
    fake.wait_for_message(channel, lambda m: "Runbooks for our services" in m.get("text", ""))
    # Said again: handled (a nudge would be queued by then) and the outbox sent: still one nudge.
    handled(fake, bot, fake.post_message(channel, ALICE, "the run book says restart"))
    nudges = [m for m in fake.bot_messages(channel) if "Runbooks for our services" in m.get("text", "")]
    assert len(nudges) == 1
    # Outside incident channels, nothing.
    handled(fake, bot, fake.post_message(channels["opg-incidents"], ALICE, "runbook?"))
    assert not [m for m in fake.bot_messages(channels["opg-incidents"]) if "Runbooks" in m.get("text", "")]


def handled(fake, bot, message):
    """Until the bot has handled `message` (its inbox entry is marked; a nudge is queued before that) and
    its outbox has sent everything it queued."""
    kit.wait_handled(fake, bot.database_url, message)
    fake.wait_for(lambda: kit.pending_outbox(bot.database_url) == 0, message="the outbox never emptied")
