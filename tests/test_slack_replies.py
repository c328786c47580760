"""Answers to commands in Slack (opg_incident_slack/replies.py), the gateway's own pace (pace.py) and what
people see: Slack's escaping with mentions kept, answers merged into one item while they wait (the outbox's
`gather`), ✅ within a budget, every answer accounted for; names in plain-text fields; the bot's mention
outside the backticks of a reminder."""
from __future__ import annotations

import contextlib
import json

import pytest

from opg_incident_core import outbox, storage
from opg_incident_core.text import defuse
from opg_incident_slack import Effects, blocks
from opg_incident_slack.effects import BOT_IN_BACKTICKS
from opg_incident_slack.outbox_worker import OutboxWorker
from opg_incident_slack.pace import Pace
from opg_incident_slack.replies import MAX_TEXT, REACT_BUDGET, chunks, for_slack

ALICE, BOB = "U0ALICE01", "U0BOB0002"
CHANNEL = "C0INCIDT1"


# -- what people see ----------------------------------------------------------------------------------
def test_for_slack_escapes_user_text_and_keeps_mentions_links_and_channels_live():
    said = defuse("note <@U04BOB> says a < b & c > d, see <#C0SIRIUS|sirius> <!channel> @here")
    text = for_slack(f"Logged by <@{ALICE}>: {said} <https://status.example/x|status> `sev <critical>`")
    assert text == (f"Logged by <@{ALICE}>: note <@U04BOB> says a &lt; b &amp; c &gt; d, see <#C0SIRIUS|sirius> "
                    "&lt;\u200b!channel&gt; @\u200bhere <https://status.example/x|status> `sev &lt;critical&gt;`")
    assert for_slack("a &amp; b &lt;c&gt;") == "a &amp; b &lt;c&gt;"  # Slack's own escaping: not twice
    assert for_slack("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"


def test_long_answers_are_cut_at_lines_and_each_part_keeps_the_messages_it_answers():
    parts = [("short one", ["1.1"]), ("x" * 100 + "\n" + "y" * (MAX_TEXT - 50), ["1.2"]), ("last", ["1.3"])]
    out = chunks(parts)
    assert all(len(text) <= MAX_TEXT for text, _ in out)
    assert [acks for _, acks in out] == [["1.1", "1.2"], ["1.3"]]
    assert "".join(t for t, _ in out).replace("\n", "").count("y") == MAX_TEXT - 50


def test_plain_text_fields_name_people_and_show_slack_escapes_as_characters():
    names = {BOB: "Bob <B>"}.get
    assert blocks.as_plain(f"<@{BOB}> & <@U0NOBODY1|nob> in <#C0X123|ops>: a &lt; b <https://x.example|x>",
                           names) == "@Bob <B> & @nob in #ops: a < b x (https://x.example)"


def test_the_bots_mention_comes_out_of_the_backticks_of_a_reminder():
    text = "👩‍🚒 Incident 3 has no Incident Scribe. Take it with `<@U0FAKEBOT1> scribe me`."
    assert BOT_IN_BACKTICKS.sub(r"\1 `\2`", text) == ("👩‍🚒 Incident 3 has no Incident Scribe. Take it with "
                                                       "<@U0FAKEBOT1> `scribe me`.")


# -- the pace -----------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_pace_allows_a_short_burst_per_channel_then_one_a_second_and_tiers_per_minute():
    clock = Clock()
    pace = Pace(clock=clock)
    assert [pace.wait("chat.postMessage", "C1") for _ in range(4)] == [0.0] * 4
    assert pace.wait("chat.postMessage", "C1") == pytest.approx(1.0)
    assert pace.wait("chat.postMessage", "C2") == 0.0  # another channel: its own bucket
    clock.now += 1.0
    assert pace.post_wait("C1") == 0.0 and pace.wait("chat.postMessage", "C1") == 0.0
    assert pace.wait("chat.postMessage", "C1") > 0
    for _ in range(45):  # reactions.add: Tier 3, 50 a minute; we stay at 45
        assert pace.wait("reactions.add") == 0.0
    assert 59 < pace.wait("reactions.add") <= 60 and pace.used("reactions.add") == 45
    clock.now += 60
    assert pace.wait("reactions.add") == 0.0 and pace.wait("auth.test") == 0.0  # "special": not limited


# -- answers through the outbox ------------------------------------------------------------------------
class Gateway:
    """Slack as the answers see it: posts, reactions, names; the pace of the real gateway."""

    def __init__(self):
        self.pace = Pace()
        self.posts, self.reactions = [], []

    @contextlib.contextmanager
    def once(self, key, verify, since=None):
        yield

    def post(self, channel, text, blocks=None, thread_ts=None, meta=None):
        self.posts.append({"channel": channel, "text": text, "thread_ts": thread_ts, "acks": (meta or {})["acks"]})
        return f"9.{len(self.posts)}"

    def react(self, channel, ts, name):
        self.pace.wait("reactions.add")
        self.reactions.append((channel, ts, name))

    def user_name(self, user):
        return {ALICE: "alice", BOB: "bob"}.get(user, user)


class Config:
    INCIDENT_PUBLIC_URL = "https://incidents.example"


@pytest.fixture
def answers(service, settings_box):
    gateway = Gateway()
    effects = Effects(gateway, service, lambda: settings_box[0], Config())
    number = service.declare("Payments are failing", ALICE, lead=ALICE).incident.number
    service.attach_channel(number, CHANNEL, "inc-1-payments", ALICE)
    return effects, gateway, OutboxWorker(effects)


def ack_items():
    return list(storage.OutboxItem.select().where(storage.OutboxItem.kind == "ack"))


def test_answers_waiting_for_their_turn_gather_in_one_item_and_go_as_one_message(answers, clock):
    effects, gateway, worker = answers
    for i in range(6):
        effects.reply(CHANNEL, (ALICE, BOB)[i % 2], "note", "Note logged.", ts=f"1.{i}", react=True)
    effects.reply(CHANNEL, ALICE, "actions", "Incident 1 has no actions yet. Log one with `action <text>`.", ts="1.9")
    effects.reply(CHANNEL, BOB, "note", "Note logged.", ts="2.0", thread_ts="0.5", react=True)
    [item] = ack_items()
    assert len(json.loads(item.payload)["entries"]) == 8
    worker.run_once()
    by_thread = {p["thread_ts"]: p for p in gateway.posts}
    main = by_thread[None]
    assert main["text"] == ("Incident 1 has no actions yet. Log one with `action &lt;text&gt;`.\n\n"
                            "✅ Done: 6 notes, from alice and bob. The timeline has them all.")
    assert sorted(main["acks"]) == ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.9"]
    assert gateway.reactions == [(CHANNEL, "2.0", "white_check_mark")]  # alone in its thread: a ✅ says it
    assert [i.status for i in ack_items()] == ["done"]


def test_answers_keep_a_channels_pace_across_items_and_a_few_get_a_check_mark(answers, clock):
    effects, gateway, worker = answers
    effects.reply(CHANNEL, ALICE, "note", "Note logged.", ts="1.1", react=True)
    worker.run_once()
    assert gateway.reactions == [(CHANNEL, "1.1", "white_check_mark")]
    effects.reply(CHANNEL, BOB, "decision", "Decision logged.", ts="1.2", react=True)
    worker.run_once()  # within a second of the last answer in this channel: it waits (and gathers)
    [_, waiting] = ack_items()
    assert waiting.status == "pending" and waiting.next_at > clock()
    effects.reply(CHANNEL, ALICE, "close", "Incident 1 is closed.", ts="1.3", react=True)
    clock.advance(seconds=1.1)
    worker.run_once()
    assert gateway.reactions[1:] == [(CHANNEL, "1.2", "white_check_mark"), (CHANNEL, "1.3", "white_check_mark")]
    assert gateway.posts == []


def test_past_the_reaction_budget_check_marks_become_one_message(answers, clock):
    effects, gateway, worker = answers
    for _ in range(REACT_BUDGET):
        gateway.pace.wait("reactions.add")
    effects.reply(CHANNEL, ALICE, "note", "Note logged.", ts="1.1", react=True)
    worker.run_once()
    assert gateway.reactions == [] and [p["acks"] for p in gateway.posts] == [["1.1"]]
    assert gateway.posts[0]["text"] == "✅ Done: 1 note, from alice. The timeline has them all."


def test_gather_joins_only_an_item_nobody_is_sending(service, clock):
    now = clock()
    first = outbox.enqueue("ack", None, {"channel": "C1", "entries": [1]}, now=now, coalesce_key="ack:C1",
                           gather="entries")
    assert outbox.enqueue("ack", None, {"channel": "C1", "entries": [2]}, now=now, coalesce_key="ack:C1",
                          gather="entries") == first
    [claimed] = outbox.claim("w", now)
    assert claimed.payload["entries"] == [1, 2]
    later = outbox.enqueue("ack", None, {"channel": "C1", "entries": [3]}, now=now, coalesce_key="ack:C1",
                           gather="entries")
    assert later != first  # the first is being sent: what it sends is fixed
    assert outbox.enqueue("ack", None, {"channel": "C2", "entries": [4]}, now=now, coalesce_key="ack:C2",
                          gather="entries") not in (first, later)
