"""End to end, issue 4 (roles that are always filled): the real `errbot -c config.py` process with the
OPGSlack backend against the fake Slack. Handover offer -> Accept / Decline / no answer, asking for a held
role, the `accept` / `decline` text fallback by DM, and role reminders (max count, silence after close).

Assertions look at the fake workspace (messages, DMs, the headline) and at the record (the living
document's JSON, and the `handover` table for the offer's deadline).

The handover timeout is whole minutes in the YAML (at least 1) and INCIDENT_MINUTE_SECONDS does not
shorten it (roles.py: expires_at = now + handover_timeout_minutes real minutes). So the expiry test
sets the YAML to 1 minute, checks the offer's deadline in the database is created_at + 1 minute, then
moves that deadline into the past in the database (the bot's clock is the wall clock) and lets the
real poller expire it.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import sqlite3

import pytest
import yaml

from fake_slack import FakeSlack
from slack_bot import ALICE, BOB, CAROL, ROOT, SlackBot, seed
from opg_incident_slack import blocks
from slack_steps import text_of, mention, after, headline, declare

pytestmark = pytest.mark.e2e
SHIPPED_SETTINGS = ROOT / "plugins" / "opg_incident" / "settings.yml"
LEAD_DESCRIPTION = "You coordinate the response"  # start of the lead's description in settings.yml
LEAD_GUIDANCE = "Ideally from outside your immediate team."


# -- set-up -----------------------------------------------------------------------------------------

def write_settings(tmp_path, change=None):
    """A temp copy of the shipped settings.yml with `change(data)` applied; returns its path."""
    data = yaml.safe_load(SHIPPED_SETTINGS.read_text(encoding="utf-8"))
    data["reminders"]["handover_timeout_minutes"] = 1
    if change:
        change(data)
    path = tmp_path / "settings.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(params=["socket", "http"])
def slack(request, tmp_path):
    with FakeSlack(request.param) as fake:
        channels = seed(fake)
        env = {"INCIDENT_SETTINGS": str(write_settings(tmp_path))}
        with SlackBot(fake, tmp_path, env=env) as bot:
            yield fake, bot, channels
        assert not fake.internal_errors, fake.internal_errors


def comms_channel(fake, bot, channels, number=1, members=(BOB, CAROL)) -> str:
    """Create the comms channel with the headline's button; people in `members` join it."""
    assert fake.click_button(headline(fake, channels, number), blocks.CREATE_CHANNEL, ALICE).ok
    channel_id = fake.wait_for(lambda: (bot.incident(number)["channel"] or {}).get("id"))
    fake.wait_for_message(channel_id, lambda m: "This is the comms channel" in m.get("text", ""))
    for user in members:
        fake.join(channel_id, user)
    return channel_id


def incident_with_channel(fake, bot, channels) -> str:
    declare(fake, channels)
    fake.wait_for(lambda: bot.incident(1)["roles"].get("lead") == ALICE)
    return comms_channel(fake, bot, channels)


def offer_in_dm(fake, user, needle="Accept", since_ts="0") -> dict:
    """The newest bot message in `user`'s DM with an Accept button (and `needle`), after `since_ts`."""
    return fake.wait_for_message(fake.dm_channel(user), lambda m: float(m["ts"]) > float(since_ts)
                                 and blocks.HANDOVER_ACCEPT in json.dumps(m.get("blocks", []))
                                 and needle in text_of(m))


def click_again(fake, envelope_id: str, user: str):
    """A genuine second click on the same button (a new trigger_id, so not a redelivery), as from a
    client still showing the old message after the app replaced it."""
    payload = copy.deepcopy(fake.delivery(envelope_id).payload)
    payload["trigger_id"] = fake.workspace.issue_trigger(user)
    return fake.wait_ack(fake.send_envelope("interactive", payload, False))


def told(fake, user, needle) -> bool:
    """An ephemeral note or a DM to `user` containing `needle`."""
    return any(needle in m.get("text", "") for m in fake.ephemeral_for(user)) or \
        any(needle in text_of(m) for m in fake.bot_messages(fake.dm_channel(user)))


def lead_holders(bot, number=1) -> list:
    return [h["holder"] for h in bot.incident(number)["role_history"] if h["role"] == "lead"]


# -- handover: offer, Accept --------------------------------------------------------------------------

def test_offer_accept_moves_the_role_announces_it_and_records_the_note(slack):
    fake, bot, channels = slack
    channel_id = incident_with_channel(fake, bot, channels)

    command = mention(fake, channel_id, ALICE, f"handover lead <@{BOB}> going off shift at 6")
    after(fake, channel_id, command, f"Offered Incident Lead of incident 1 to <@{BOB}>; it moves when they accept")
    offer = offer_in_dm(fake, BOB)
    offered = text_of(offer)
    for part in (f"<@{ALICE}> offers you the role of Incident Lead for incident 1", "Payments are failing",
                 LEAD_DESCRIPTION, LEAD_GUIDANCE, "going off shift at 6", blocks.HANDOVER_DECLINE):
        assert part in offered, part
    assert bot.incident(1)["roles"]["lead"] == ALICE  # nothing moves before Accept

    accepted = fake.click_button(offer, blocks.HANDOVER_ACCEPT, BOB)
    assert accepted.ok
    announcement = f"<@{BOB}> is now Incident Lead, taking over from <@{ALICE}>"
    after(fake, channel_id, command, announcement)
    fake.wait_for(lambda: f"Incident Lead: <@{BOB}>" in text_of(headline(fake, channels)),
                  message="the headline does not show the new lead")
    record = bot.incident(1)
    assert record["roles"]["lead"] == BOB
    assert lead_holders(bot) == [ALICE, BOB]
    entry = next(e for e in record["timeline"] if e["kind"] == "role" and announcement in e["text"])
    assert "going off shift at 6" in entry["text"] and entry["author"] == BOB
    # The new holder is told what the role is; the offer message no longer has buttons.
    instructions = fake.wait_for_message(fake.dm_channel(BOB), lambda m: "You are now Incident Lead of incident 1"
                                         in m.get("text", ""))
    assert LEAD_DESCRIPTION in instructions["text"]
    fake.wait_for(lambda: "*accepted*" in text_of(fake.message(offer["channel"], offer["ts"])))
    assert blocks.HANDOVER_ACCEPT not in text_of(fake.message(offer["channel"], offer["ts"]))

    # A second click on Accept (a stale client) does nothing more than say so.
    announcements = len([m for m in fake.bot_messages(channel_id) if announcement in m.get("text", "")])
    assert click_again(fake, accepted.envelope_id, BOB).ok
    fake.wait_for(lambda: told(fake, BOB, "already accepted"), message="the second click was not answered")
    assert lead_holders(bot) == [ALICE, BOB]
    assert len([m for m in fake.bot_messages(channel_id) if announcement in m.get("text", "")]) == announcements


# -- handover: Decline ----------------------------------------------------------------------------------

def test_decline_keeps_the_old_holder_who_is_told(slack):
    fake, bot, channels = slack
    channel_id = incident_with_channel(fake, bot, channels)
    # The headline shows the comms channel: the last step of creating it, so the headline is settled.
    fake.wait_for(lambda: f"<#{channel_id}>" in text_of(headline(fake, channels)))
    before = text_of(headline(fake, channels))
    assert f"Incident Lead: <@{ALICE}>" in before

    command = mention(fake, channel_id, ALICE, f"handover lead <@{BOB}>")
    offer = offer_in_dm(fake, BOB)
    assert fake.click_button(offer, blocks.HANDOVER_DECLINE, BOB).ok
    declined = f"The offer of Incident Lead to <@{BOB}> was declined. <@{ALICE}> stays Incident Lead."
    after(fake, channel_id, command, declined)
    fake.wait_for_message(fake.dm_channel(ALICE), lambda m: declined in m.get("text", ""))
    fake.wait_for(lambda: "*declined*" in text_of(fake.message(offer["channel"], offer["ts"])))

    record = bot.incident(1)
    assert record["roles"]["lead"] == ALICE and lead_holders(bot) == [ALICE]
    assert any(e["kind"] == "handover" and "was declined" in e["text"] and e["author"] == BOB
               for e in record["timeline"])
    assert text_of(headline(fake, channels)) == before
    assert not any("is now Incident Lead" in m.get("text", "") for m in fake.bot_messages(channel_id))


# -- handover: nobody answers -----------------------------------------------------------------------------

@pytest.mark.parametrize("slack", ["socket"], indirect=True)
def test_unanswered_offer_expires_by_the_poller_and_the_holder_keeps_the_role(slack):
    fake, bot, channels = slack
    channel_id = incident_with_channel(fake, bot, channels)
    command = mention(fake, channel_id, ALICE, f"handover lead <@{BOB}>")
    offer = offer_in_dm(fake, BOB)

    database = bot.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database, timeout=10) as db:
        created, expires = db.execute("SELECT created_at, expires_at FROM handover WHERE status = 'pending'").fetchone()
        # The YAML's handover_timeout_minutes (1 in the temp settings) sets the deadline.
        assert dt.datetime.fromisoformat(expires) - dt.datetime.fromisoformat(created) == dt.timedelta(minutes=1)
        db.execute("UPDATE handover SET expires_at = ? WHERE status = 'pending'",
                   ((dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=1)).isoformat(sep=" "),))

    expired = f"The offer of Incident Lead to <@{BOB}> was expired. <@{ALICE}> stays Incident Lead."
    after(fake, channel_id, command, expired)
    fake.wait_for_message(fake.dm_channel(ALICE), lambda m: expired in m.get("text", ""))
    fake.wait_for(lambda: "*expired*" in text_of(fake.message(offer["channel"], offer["ts"])))
    record = bot.incident(1)
    assert record["roles"]["lead"] == ALICE
    assert any(e["kind"] == "handover" and "was expired" in e["text"] and e["author"] == "system"
               for e in record["timeline"])
    assert f"Incident Lead: <@{ALICE}>" in text_of(headline(fake, channels))

    # Too late: Accept from the old message, or by text, changes nothing.
    payload = {"type": "block_actions", "user": {"id": BOB, "username": "bob", "name": "bob",
                                                 "team_id": fake.workspace.team["id"]},
               "api_app_id": fake.workspace.app_id, "token": fake.verification_token,
               "trigger_id": fake.workspace.issue_trigger(BOB), "team": {"id": fake.workspace.team["id"]},
               "container": {"type": "message", "message_ts": offer["ts"], "channel_id": offer["channel"]},
               "channel": {"id": offer["channel"]}, "message": offer, "state": {"values": {}},
               "actions": [next(dict(e, block_id=b["block_id"], action_ts="1") for b in offer["blocks"]
                                if b["type"] == "actions" for e in b["elements"]
                                if e["action_id"] == blocks.HANDOVER_ACCEPT)]}
    assert fake.wait_ack(fake.send_envelope("interactive", payload, False)).ok
    fake.wait_for(lambda: told(fake, BOB, "already expired"), message="the late Accept was not answered")
    late = fake.post_message(fake.dm_channel(BOB), BOB, "accept")
    after(fake, fake.dm_channel(BOB), late, "Nothing is waiting for your answer")
    assert bot.incident(1)["roles"]["lead"] == ALICE and lead_holders(bot) == [ALICE]


# -- asking for a held role -------------------------------------------------------------------------------

@pytest.mark.parametrize("slack", ["socket"], indirect=True)
def test_lead_me_on_a_held_role_waits_for_the_holders_accept(slack):
    fake, bot, channels = slack
    channel_id = incident_with_channel(fake, bot, channels)

    # Someone in the channel with no role may not take or ask for one (issue 12): its role holders may.
    refused = mention(fake, channel_id, CAROL, "lead me")
    after(fake, channel_id, refused, "`lead` of incident 1 is for the incident's role holders, its reporter and bot admins")
    after(fake, channel_id, mention(fake, channel_id, ALICE, f"comms <@{CAROL}>"), f"<@{CAROL}> is now Communications Lead")

    command = mention(fake, channel_id, CAROL, "lead me")
    after(fake, channel_id, command, f"Asked <@{ALICE}> to hand over Incident Lead of incident 1 to you")
    request = offer_in_dm(fake, ALICE, needle=f"<@{CAROL}> asks to take over as Incident Lead of incident 1")
    assert "Do you hand it over?" in request["text"]
    assert bot.incident(1)["roles"]["lead"] == ALICE  # never a silent overwrite
    assert f"Incident Lead: <@{ALICE}>" in text_of(headline(fake, channels))
    assert not any(blocks.HANDOVER_ACCEPT in json.dumps(m.get("blocks", []))  # the holder answers, not the asker
                   for m in fake.bot_messages(fake.dm_channel(CAROL)))

    assert fake.click_button(request, blocks.HANDOVER_ACCEPT, ALICE).ok
    after(fake, channel_id, command, f"<@{CAROL}> is now Incident Lead, taking over from <@{ALICE}>")
    fake.wait_for(lambda: f"Incident Lead: <@{CAROL}>" in text_of(headline(fake, channels)))
    assert lead_holders(bot) == [ALICE, CAROL]
    fake.wait_for_message(fake.dm_channel(CAROL), lambda m: "You are now Incident Lead of incident 1" in m["text"])
    # the command's answer said it (above): the channel was not told the same again by the handover's notice
    assert not [m for m in fake.messages(channel_id) if "offered to" in m.get("text", "")]


# -- the text fallback ------------------------------------------------------------------------------------

@pytest.mark.parametrize("slack", ["socket"], indirect=True)
def test_accept_and_decline_by_direct_message(slack):
    fake, bot, channels = slack
    channel_id = incident_with_channel(fake, bot, channels)
    dm = fake.dm_channel(BOB)

    nothing = fake.post_message(dm, BOB, "decline")
    after(fake, dm, nothing, "Nothing is waiting for your answer")

    command = mention(fake, channel_id, ALICE, f"handover lead <@{BOB}> first try")
    first = offer_in_dm(fake, BOB, needle="first try")
    answer = fake.post_message(dm, BOB, "decline")
    after(fake, dm, answer, f"The offer of Incident Lead of incident 1 was declined. <@{ALICE}> stays Incident Lead.")
    after(fake, channel_id, command, f"The offer of Incident Lead to <@{BOB}> was declined.")
    fake.wait_for(lambda: "*declined*" in text_of(fake.message(dm, first["ts"])))
    assert bot.incident(1)["roles"]["lead"] == ALICE

    command = mention(fake, channel_id, ALICE, f"handover lead <@{BOB}> second try")
    second = offer_in_dm(fake, BOB, needle="second try", since_ts=first["ts"])
    answer = fake.post_message(dm, BOB, "accept")
    reply = after(fake, dm, answer, f"<@{BOB}> is now Incident Lead of incident 1, taking over from <@{ALICE}>")
    assert LEAD_DESCRIPTION in reply["text"]
    after(fake, channel_id, command, f"<@{BOB}> is now Incident Lead, taking over from <@{ALICE}>")
    fake.wait_for(lambda: f"Incident Lead: <@{BOB}>" in text_of(headline(fake, channels)))
    fake.wait_for(lambda: "*accepted*" in text_of(fake.message(dm, second["ts"])))
    record = bot.incident(1)
    assert lead_holders(bot) == [ALICE, BOB]
    assert any(e["kind"] == "role" and "(second try)" in e["text"] for e in record["timeline"])


# -- reminders: max count and silence after close -----------------------------------------------------------

def test_role_reminder_stops_at_max_count_and_is_quiet_after_close(tmp_path):
    """A reminder minute is 0.5 s here; the update_stale reminder (every minute, many times) is the clock
    that says enough polls went by, so nothing sleeps."""
    def change(data):
        data["reminders"]["role_missing"].update(every_minutes=1, max_count=2)
        data["reminders"]["update_stale"].update(every_minutes=1, max_count=50)

    env = {"INCIDENT_SETTINGS": str(write_settings(tmp_path, change)), "INCIDENT_MINUTE_SECONDS": "0.5"}
    with FakeSlack("socket") as fake:
        channels = seed(fake)
        with SlackBot(fake, tmp_path, env=env) as bot:
            declare(fake, channels)
            channel_id = comms_channel(fake, bot, channels, members=())

            def count(channel, needle, thread_ts=None):
                return len([m for m in fake.bot_messages(channel, thread_ts) if needle in m.get("text", "")])

            scribe, stale = "Incident 1 has no Incident Scribe", "incident 1 have not changed"
            fake.wait_for(lambda: count(channel_id, stale) >= 3, timeout=20,
                          message="the update_stale reminder did not come 3 times")
            assert count(channel_id, scribe) == 2  # max_count, though due at every poll

            # A second incident keeps being reminded (on its headline's thread): the clock after the close.
            declare(fake, channels, title="Emails are late")
            thread = headline(fake, channels, 2)["ts"]
            mention(fake, channel_id, ALICE, "close anyway")  # the scribe is missing (that is what is reminded)
            fake.wait_for_message(channel_id, lambda m: "Incident 1 is closed" in m.get("text", ""))
            other = "incident 2 have not changed"
            start = count(channels["opg-incidents"], other, thread)
            fake.wait_for(lambda: count(channels["opg-incidents"], other, thread) >= start + 1, timeout=10)
            quiet = len(fake.bot_messages(channel_id))  # a reminder already on its way at close may land
            fake.wait_for(lambda: count(channels["opg-incidents"], other, thread) >= start + 2, timeout=15,
                          message="incident 2 stopped being reminded")
            assert len(fake.bot_messages(channel_id)) == quiet, [m["text"] for m in fake.bot_messages(channel_id)][-3:]
            assert bot.incident(1)["status"] == "closed"
