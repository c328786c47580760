"""`/opg-incident <command>` (issue 14, item 1), through the real errbot process and the fake Slack in both
transports: the same commands as mentions, answered to the person alone; `declare` and any text that is not
a command open the declare form; a bare `/opg-incident` in an incident's channel shows its state and buttons.
Before, `/opg-incident close` in an incident channel opened the declare form with "close" as its title.
"""
from __future__ import annotations

import json
import re

import pytest

from conftest import failed
from fake_slack import FakeSlack
from opg_incident_slack import blocks
from opg_incident_core.chat import REGISTRY
from slack_bot import ALICE, BOB, CAROL, PEOPLE, SlackBot, seed
from slack_steps import declare, headline
from test_e2e_process import WEBOPS, timeline, write_settings
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
    # Text that starts with a command word but names no incident, outside an incident's channel, says what
    # has happened: the form, with the whole text as its title (not `call`, `update`, `roles` run).
    for text, title in (("declare close", "close"), ("Something broke in payments", "Something broke in payments"),
                        ("Call centre phones are down", "Call centre phones are down"),
                        ("Update service failing", "Update service failing"),
                        ("Roles page broken", "Roles page broken"),
                        # Slack sends `<@U…|bob>` for `@bob`: the form shows the text as typed.
                        ("Payments down, ask @bob in #general", "Payments down, ask @bob in #general")):
        slash(fake, channels["general"], ALICE, text, answer=False)  # acked empty: the form opens instead
        fake.wait_for(lambda: len(declare_forms(fake)) > forms, timeout=10)
        form = _view(declare_forms(fake)[-1])
        values = [e.get("initial_value") for b in form["blocks"] for e in [b.get("element") or {}]
                  if b.get("block_id") == "title"]
        assert values == [title], values
        forms = len(declare_forms(fake))
    slash(fake, channels["general"], ALICE, "", answer=False)  # bare, outside an incident channel: the form
    fake.wait_for(lambda: len(declare_forms(fake)) > forms, timeout=10)
    # With the incident's number after the word, or in its channel, the command runs.
    forms = len(declare_forms(fake))
    assert slash(fake, channels["general"], CAROL, "roles 1")["text"].startswith("Roles of incident 1:")
    assert slash(fake, channel, CAROL, "roles page")["text"].startswith("Roles of incident 1:")
    # A role given to someone is the command, not a title: it asks which incident.
    assert slash(fake, channels["general"], CAROL, "lead me")["text"].startswith("Which incident?")
    assert len(declare_forms(fake)) == forms


def test_without_bot_admins_the_bot_says_so_at_start_and_in_help(tmp_path):
    with FakeSlack("socket") as fake:
        channels = seed(fake)
        with SlackBot(fake, tmp_path, env={"BOT_ADMINS": ""}) as bot:
            fake.wait_for(lambda: bot.log_has("BOT_ADMINS is empty"), timeout=10)
            answer = slash(fake, channels["general"], ALICE, "help")
            assert "No bot admins are set (BOT_ADMINS)" in answer["text"]


# -- the rest of the process through `/opg-incident` (issue 14, items 2, 3, 5, 6, 7, 11) ---------------------
SHARE = ("opg-delivery", "opg-all-team-digital", "opg-leadership")  # the shipped settings' share_channels


@pytest.fixture
def process(request, tmp_path):
    """Socket Mode (the transports are the tests above); a specialist team that can be paged, the share
    channels; incident 1 declared by ALICE (its lead) with its comms channel, nobody else in it."""
    def teams(data):
        data["specialists"] = [{"key": "webops", "name": "WebOps", "covers": "AWS", "slack_user": WEBOPS}]
    with FakeSlack("socket") as fake:
        channels = seed(fake)
        fake.add_user(WEBOPS, "webops-oncall", real_name="WebOps on call")
        for name in (*SHARE, "opg-use-an-lpa"):
            channels[name] = fake.add_channel(name, members=list(PEOPLE))
        with SlackBot(fake, tmp_path, env={"INCIDENT_SETTINGS": str(write_settings(tmp_path, teams))}) as bot:
            declare(fake, channels)
            assert fake.click_button(headline(fake, channels), blocks.CREATE_CHANNEL, ALICE).ok
            channel = fake.wait_for(lambda: (bot.incident(1)["channel"] or {}).get("id"))
            welcome = fake.wait_for_message(channel, lambda m: "This is the comms channel" in m.get("text", ""))
            yield fake, bot, channels, channel, welcome
            if failed(request):
                print(bot.log_tail(120))
        assert not fake.internal_errors, fake.internal_errors


def test_a_person_named_with_at_is_their_slack_id_invited_to_the_channel_and_told_their_role(process):
    """Slack escapes the command's mentions (should_escape: true in the manifest): `@bob` arrives as
    `<@U…|bob>`, and the role is Bob's. Before, Slack sent plain `@bob` and the bot stored the text "@bob"."""
    fake, bot, channels, channel, _ = process
    assert BOB not in fake.members(channel)
    assert slash(fake, channel, ALICE, "scribe @bob")["text"].startswith(f"<@{BOB}> is now Incident Scribe")
    assert bot.incident(1)["roles"]["scribe"] == BOB
    fake.wait_for(lambda: BOB in fake.members(channel), message="the new scribe was not invited")
    told = fake.wait_for_message(fake.dm_channel(BOB), lambda m: "You are now Incident Scribe" in m["text"])
    assert f"Comms channel: <#{channel}>" in told["text"]

    # `lead @bob` (Bob leaving the scribe's role first): offered, and Bob's once he accepts.
    assert slash(fake, channel, ALICE, "scribe none")["text"] == "Incident 1 has no Incident Scribe now."
    answer = slash(fake, channel, ALICE, "lead @bob")
    assert answer["text"].startswith(f"Offered Incident Lead of incident 1 to <@{BOB}>")
    fake.wait_for_message(fake.dm_channel(BOB), lambda m: "offers you the role of Incident Lead" in m["text"])
    answer = slash(fake, channels["general"], BOB, "accept")
    assert answer["text"].startswith(f"<@{BOB}> is now Incident Lead of incident 1, taking over from <@{ALICE}>.")
    assert bot.incident(1)["roles"]["lead"] == BOB
    told = fake.wait_for_message(fake.dm_channel(BOB), lambda m: "You are now Incident Lead" in m["text"])
    assert f"Comms channel: <#{channel}>" in told["text"] and BOB in fake.members(channel)

    # A name Slack does not know arrives as typed: refused, saying how, and nothing is stored.
    refused = slash(fake, channel, BOB, "scribe @nobody")
    assert refused["text"].startswith("I don't know who @nobody is: Slack did not turn it into a mention.")
    refused = slash(fake, channel, BOB, "invite @nobody")
    assert refused["text"].startswith("I don't know who @nobody is")
    assert bot.incident(1)["roles"].get("scribe") is None and not timeline(bot, "invite")


def test_the_process_through_slash_commands(process):
    fake, bot, channels, channel, welcome = process
    # The welcome names the key commands of each role, from the registry.
    for title in ("Anyone", "The Incident Lead", "The Incident Scribe", "The Communications Lead"):
        assert f"• {title}: " in welcome["text"], title
    for cmd in REGISTRY:
        if cmd.incident and cmd.group != "admins" and not cmd.hidden:
            assert f"`{cmd.name}`" in welcome["text"], cmd.name

    # As people type, from another channel (the number first): the process document's `sev <Critical>`
    # (Slack sends < and > escaped), the number before the role.
    assert "Critical" in slash(fake, channels["general"], ALICE, "sev 1 &lt;Critical&gt;")["text"]
    assert "is now Incident Scribe" in slash(fake, channels["general"], ALICE, "role 1 scribe @carol")["text"]
    assert (bot.incident(1)["severity"], bot.incident(1)["roles"]["scribe"]) == ("Critical", CAROL)
    fake.wait_for(lambda: CAROL in fake.members(channel), message="the scribe was not invited")

    # Stakeholder updates: a channel as typed, how often (the lead's choice while there is no comms lead).
    answer = slash(fake, channel, ALICE, "notify #Opg-Use-An-LPA")
    assert "#opg-use-an-lpa will get the stakeholder updates of incident 1" in answer["text"]
    assert slash(fake, channel, ALICE, "updates every 30m")["text"] == (
        "Stakeholder updates for incident 1 are due every 30 minutes.")
    assert slash(fake, channel, ALICE, "update Card payments work again")["text"].startswith("Update posted")
    posted = fake.wait_for_message(channels["opg-use-an-lpa"], lambda m: "Card payments work again" in m["text"])
    assert "Update on incident 1" in posted["text"] and "Next update within 30 minutes" in posted["text"]
    assert timeline(bot, "cadence") == ["Stakeholder updates every 30 minutes"]

    # Escalate: the teams that can be paged, then a page, its result on the timeline.
    assert "webops: WebOps" in slash(fake, channel, ALICE, "escalate")["text"]
    assert slash(fake, channel, ALICE, "escalate webops")["text"].startswith("Page to WebOps queued")
    fake.wait_for_message(fake.dm_channel(WEBOPS), lambda m: "pages WebOps for incident 1" in m["text"])
    fake.wait_for(lambda: timeline(bot, "page") == [f"Paged WebOps: <@{WEBOPS}> was sent a direct message"])

    # The analysis after the close: ready by the lead, shared by the scribe.
    assert "still open" in slash(fake, channel, ALICE, "rca ready")["text"]
    assert slash(fake, channel, ALICE, "close anyway")["text"].startswith("Incident 1 is closed")
    assert slash(fake, channel, CAROL, "rca ready")["text"].startswith("Not allowed: Only the Incident Lead")
    assert slash(fake, channel, ALICE, "rca ready")["text"].startswith("The analysis of incident 1 is ready")
    assert slash(fake, channel, CAROL, "rca share")["text"].startswith("Sharing the analysis of incident 1 in")
    for name in SHARE:
        fake.wait_for_message(channels[name], lambda m: "root-cause analysis of incident 1" in m["text"])

    # Help, by who uses it, every command, the real rule of who may, and a typo's suggestion.
    text = slash(fake, channel, CAROL, "help")["text"]
    for title in ("Anyone:", "The Incident Lead:", "The Incident Scribe:", "The Communications Lead:",
                  "Bot admins:"):
        assert f"\n{title}\n" in text, title
    for name in ("handover", "roles", "checkin", "update", "notify", "call", "invite", "ask", "escalate", "rca",
                 "archive"):
        assert f"• `{name}" in text, name
    assert not re.search(r"[^.]\.\.(?!\.)|\.;", text), "double punctuation"  # "all hands.;", "recording.."
    answer = slash(fake, channel, CAROL, "help close")["text"]
    assert "\nWho may: the Incident Lead or a bot admin." in answer
    assert "Did you mean `summary`?" in slash(fake, channel, CAROL, "help sumary")["text"]
