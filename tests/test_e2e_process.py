"""End to end, issue 14 (the process as people live it): the real `errbot -c config.py` process with the
OPGSlack backend against the fake Slack. Everyone with a role in the comms channel, paging that tells the
truth, drills that page nobody, the post-incident order, commands as people type them, replies that name
the incident, the criteria in the form, the pre-close check, who posts updates and how often.

Assertions look at the fake workspace (channel members, messages, who received which DM) and at the
record (the living document's JSON: the timeline rows).
"""
from __future__ import annotations

import pytest
import yaml

from fake_slack import FakeSlack
from opg_incident_slack import blocks
from slack_bot import ADMIN, ALICE, BOB, CAROL, ONCALL, PEOPLE, ROOT, SlackBot, seed
from slack_steps import after, declare, headline, mention, reacted, text_of, with_text

pytestmark = pytest.mark.e2e
SHIPPED_SETTINGS = ROOT / "plugins" / "opg_incident" / "settings.yml"
WEBOPS = "U0WEBOPS5"


def write_settings(tmp_path, change=None):
    data = yaml.safe_load(SHIPPED_SETTINGS.read_text(encoding="utf-8"))
    if change:
        change(data)
    path = tmp_path / "settings.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def start(tmp_path, change=None, env=None, channels_named=()):
    """A fake Slack (socket mode), its people and channels, and the bot with the shipped settings changed
    by `change`; a context manager yielding (fake, bot, channels)."""
    class Run:
        def __enter__(self):
            self.fake = FakeSlack("socket").__enter__()
            channels = seed(self.fake)
            self.fake.add_user(WEBOPS, "webops-oncall", real_name="WebOps on call")
            for name in channels_named:
                channels[name] = self.fake.add_channel(name, members=list(PEOPLE))
            self.bot = SlackBot(self.fake, tmp_path, env={"INCIDENT_SETTINGS": str(write_settings(tmp_path, change)),
                                                          **(env or {})}).__enter__()
            return self.fake, self.bot, channels

        def __exit__(self, *exc):
            self.bot.__exit__(*exc)
            errors = self.fake.internal_errors
            self.fake.__exit__(*exc)
            assert not errors, errors
    return Run()


def dm(fake, user, text):
    return fake.post_message(fake.dm_channel(user), user, text)


def answer(fake, user, sent, needle, timeout=10.0):
    """The bot's answer to `sent` in `user`'s DM that contains `needle`."""
    return after(fake, fake.dm_channel(user), sent, needle, timeout)


def create_channel(fake, bot, channels, number=1, user=ALICE) -> str:
    assert fake.click_button(headline(fake, channels, number), blocks.CREATE_CHANNEL, user).ok
    channel_id = fake.wait_for(lambda: (bot.incident(number)["channel"] or {}).get("id"))
    fake.wait_for_message(channel_id, lambda m: "This is the comms channel" in m.get("text", ""))
    return channel_id


def timeline(bot, kind, number=1) -> list:
    return [e["text"] for e in bot.incident(number)["timeline"] if e["kind"] == kind]


# -- 2. everyone with a role is in the comms channel --------------------------------------------------------

def test_everyone_with_a_role_is_invited_to_the_comms_channel_and_their_role_message_links_it(tmp_path):
    with start(tmp_path) as (fake, bot, channels):
        declare(fake, channels)  # ALICE reports and leads
        answer(fake, ALICE, dm(fake, ALICE, f"scribe 1 <@{BOB}>"), "is now Incident Scribe")
        answer(fake, ALICE, dm(fake, ALICE, f"comms 1 <@{CAROL}>"), "is now Communications Lead")
        # Before the channel exists, the role message says so.
        before = fake.wait_for_message(fake.dm_channel(BOB), lambda m: "You are now Incident Scribe" in m["text"])
        assert "No comms channel yet" in before["text"]

        channel_id = create_channel(fake, bot, channels)
        fake.wait_for(lambda: {ALICE, BOB, CAROL} <= fake.members(channel_id),
                      message="the scribe and the comms lead were not invited at creation")
        assert ONCALL not in fake.members(channel_id) and ADMIN not in fake.members(channel_id)

        # A role given later (directly): invited, and the role message links the channel.
        command = mention(fake, channel_id, ALICE, "comms none")
        after(fake, channel_id, command, "has no Communications Lead now")
        command = mention(fake, channel_id, ALICE, f"comms <@{ADMIN}>")
        after(fake, channel_id, command, "is now Communications Lead")
        fake.wait_for(lambda: ADMIN in fake.members(channel_id), message="a new comms lead was not invited")
        role_dm = fake.wait_for_message(fake.dm_channel(ADMIN), lambda m: "You are now Communications Lead" in m["text"])
        assert f"Comms channel: <#{channel_id}>" in role_dm["text"]

        # A role moved by an accepted handover: the new holder is invited when they accept.
        command = mention(fake, channel_id, ALICE, f"handover lead <@{ONCALL}> over to you")
        after(fake, channel_id, command, "it moves when they accept")
        offer = fake.wait_for_message(fake.dm_channel(ONCALL), lambda m: "offers you the role of Incident Lead" in m["text"])
        assert f"Comms channel: <#{channel_id}>" in offer["text"]
        assert ONCALL not in fake.members(channel_id)  # not before accepting
        answer(fake, ONCALL, dm(fake, ONCALL, "accept"), "is now Incident Lead")
        fake.wait_for(lambda: ONCALL in fake.members(channel_id), message="the new lead was not invited")
        fake.wait_for(lambda: bot.incident(1)["roles"].get("lead") == ONCALL)
