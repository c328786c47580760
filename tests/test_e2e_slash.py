"""`/opg-incident <command>` (issue 14, item 1), through the real errbot process and the fake Slack in both
transports: the same commands as mentions, answered to the person alone; `declare` and any text that is not
a command open the declare form; a bare `/opg-incident` in an incident's channel shows its state and buttons.
Before, `/opg-incident close` in an incident channel opened the declare form with "close" as its title.
"""
from __future__ import annotations

import json

import pytest

from conftest import failed
from fake_slack import FakeSlack
from opg_incident_slack import blocks
from slack_bot import ALICE, CAROL, SlackBot, seed
import reliability_kit as kit

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["socket", "http"])
def incident(request, tmp_path):
    with FakeSlack(request.param) as fake:
        channels = seed(fake)
        with SlackBot(fake, tmp_path) as bot:
            channel = kit.incident_with_channel(fake, bot, channels)  # incident 1, ALICE its lead
            yield fake, bot, channels, channel
            if failed(request):
                print(bot.log_tail(120))


def slash(fake, channel, user, text, answer: bool = True) -> dict:
    """Run /opg-incident: acked at once and empty (before any work), answered through its response_url to
    the person alone; `answer=False` when no answer is due (a form opens instead)."""
    before = len(fake.ephemeral_for(user))
    ack = fake.slash_command("/opg-incident", text, user, channel)
    assert ack.ok and not ack.payload, ack
    if not answer:
        return {}
    answers = fake.wait_for(lambda: fake.ephemeral_for(user)[before:], timeout=10)
    assert answers[0]["via"] == "response_url" and answers[0]["channel"] == channel
    return answers[0]


def declare_forms(fake) -> list:
    """Every declare form the bot opened (views.open calls), oldest first."""
    return [c.params["view"] for c in fake.calls_of("views.open")
            if _view(c.params.get("view")).get("callback_id") == blocks.DECLARE_VIEW]


def _view(view) -> dict:
    return json.loads(view) if isinstance(view, str) else (view or {})


def test_subcommands_run_as_mentions_would_and_answer_the_person_alone(incident):
    fake, bot, channels, channel = incident
    forms = len(declare_forms(fake))
    answer = slash(fake, channel, ALICE, "sev critical")
    assert answer["text"] == "Incident 1 is now ⛈️ Critical."
    answer = slash(fake, channel, ALICE, "SUMMARY the database is back")
    assert "The summary of incident 1 is now:\nthe database is back" == answer["text"]
    answer = slash(fake, channels["general"], ALICE, "impact 1 nobody could pay")  # elsewhere: the number first
    assert answer["text"] == "Incident 1 — Payments are failing: the impact is now:\nnobody could pay"
    record = bot.incident(1)
    assert (record["severity"], record["summary"], record["impact"]) == (
        "Critical", "the database is back", "nobody could pay")
    assert "Anyone" in slash(fake, channel, CAROL, "help")["text"]
    assert len(declare_forms(fake)) == forms  # no declare form for any of them


def test_close_closes_and_an_outsider_is_refused(incident):
    fake, bot, channels, channel = incident
    refused = slash(fake, channel, CAROL, "close")  # Carol is in the channel but holds no role
    assert refused["text"].startswith("Not allowed: `close` of incident 1 is for the incident's role holders")
    assert bot.incident(1)["status"] == "open"
    forms = len(declare_forms(fake))
    answer = slash(fake, channel, ALICE, "close")  # the pre-close check first: what is missing
    assert answer["text"].startswith("Before closing incident 1, this is missing") and bot.incident(1)["status"] == "open"
    answer = slash(fake, channel, ALICE, "close anyway")
    assert answer["text"].startswith("Incident 1 is closed after")
    assert bot.incident(1)["status"] == "closed"
    assert len(declare_forms(fake)) == forms


def test_bare_command_in_an_incident_channel_shows_its_state_and_buttons(incident):
    fake, bot, channels, channel = incident
    forms = len(declare_forms(fake))
    answer = slash(fake, channel, CAROL, "")
    assert "Payments are failing" in answer["text"]
    buttons = [e.get("action_id") for b in answer.get("blocks", []) for e in b.get("elements", [])
               if e.get("type") == "button"]
    assert blocks.CLOSE in buttons and blocks.EDIT in buttons
    assert len(declare_forms(fake)) == forms


def test_declare_and_other_text_open_the_declare_form(incident):
    fake, bot, channels, channel = incident
    forms = len(declare_forms(fake))
    for text, title in (("declare close", "close"), ("Something broke in payments", "Something broke in payments")):
        slash(fake, channels["general"], ALICE, text, answer=False)  # acked empty: the form opens instead
        fake.wait_for(lambda: len(declare_forms(fake)) > forms, timeout=10)
        form = _view(declare_forms(fake)[-1])
        values = [e.get("initial_value") for b in form["blocks"] for e in [b.get("element") or {}]
                  if b.get("block_id") == "title"]
        assert values == [title], values
        forms = len(declare_forms(fake))
    slash(fake, channels["general"], ALICE, "", answer=False)  # bare, outside an incident channel: the form
    fake.wait_for(lambda: len(declare_forms(fake)) > forms, timeout=10)


def test_without_bot_admins_the_bot_says_so_at_start_and_in_help(tmp_path):
    with FakeSlack("socket") as fake:
        channels = seed(fake)
        with SlackBot(fake, tmp_path, env={"BOT_ADMINS": ""}) as bot:
            fake.wait_for(lambda: bot.log_has("BOT_ADMINS is empty"), timeout=10)
            answer = slash(fake, channels["general"], ALICE, "help")
            assert "No bot admins are set (BOT_ADMINS)" in answer["text"]
