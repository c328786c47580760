"""End to end (issue 13 parts 2-3), the real `errbot -c config.py` with the OPGSlack backend against the fake
Slack with its rate limits on: answers to commands at the channel's pace with nothing lost, a mention kept a
mention in Slack and shown by name on the page, the channel's bookmarks, and a reopened incident whose
channel is archived, with and without SLACK_USER_TOKEN (a bot cannot unarchive)."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest
from slack_sdk import WebClient

import reliability_kit as kit
from conftest import failed
from fake_slack import FakeSlack
from slack_bot import ADMIN, ALICE, BOB, CAROL, SlackBot, seed
from slack_steps import after, answered, mention

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["socket", "http"])
def either(request, tmp_path):
    with FakeSlack(request.param) as fake:
        channels = seed(fake)
        with SlackBot(fake, tmp_path, env=kit.LEASE) as bot:
            yield fake, bot, channels
            if failed(request):
                print(bot.log_tail(150))


def bot_posts(fake, channel: str) -> list:
    return [c for c in fake.calls_of("chat.postMessage", channel=channel) if c.ok]


def most_in_a_second(times: list) -> int:
    return max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)


def test_a_storm_of_commands_is_answered_at_the_channels_pace_nothing_lost(either):
    """60 commands in 3 s into one channel: notes (a ✅ says enough), `actions` and a bad `sev` (answers that
    say something). Every command is answered exactly once, each informative answer in full, at most Slack's
    burst in any second (the fake refuses more: no such error may come) and far fewer messages than commands."""
    fake, bot, channels = either
    channel = kit.incident_with_channel(fake, bot, channels)
    kit.settle(fake, bot.database_url, timeout=30, quiet=1.2)
    started = time.time()
    said = []
    for i in range(60):
        text = "actions" if i % 10 == 3 else (f"sev huge-{i}" if i % 10 == 7 else f"note storm {i} & <b>")
        who = (ALICE, BOB, CAROL)[i % 3] if text.startswith("note") else ALICE  # sev: the responders' command
        said.append((text, mention(fake, channel, who, text)))
        time.sleep(0.05)
    kit.settle(fake, bot.database_url, timeout=60, quiet=1.5)

    counts = kit.answers(fake, channel)
    assert {m["ts"] for _, m in said} <= set(counts), [t for t, m in said if m["ts"] not in counts]
    assert kit.answered_twice(fake, channel) == []
    answers = [m for m in fake.bot_messages(channel) if kit.acks_of(m)]
    for text, message in said:
        if not text.startswith("note"):
            [answer] = [a for a in answers if message["ts"] in kit.acks_of(a)]
            want = "has no actions yet" if text == "actions" else f"'{text[4:]}' is not a severity"
            assert want in answer["text"], (text, answer["text"])
    posts = [c.time for c in bot_posts(fake, channel) if c.time >= started]
    assert most_in_a_second(posts) <= 4 and len(posts) < 30, (len(posts), most_in_a_second(posts))
    assert sum(kit.timeline(bot.database_url, "note").values()) == 48
    print(f"\n[storm-{fake.mode}] commands=60 answer_posts={len(posts)} max_per_s={most_in_a_second(posts)} "
          f"reactions={len(fake.calls_of('reactions.add', channel=channel))} "
          f"answered_in_s={max(posts) - started:.1f}")


def test_a_mention_stays_a_mention_in_slack_and_is_a_name_on_the_page(either):
    """`note 4 <@BOB> …` (by number, from a DM) and the `timeline`: the mention comes back live (not errbot's
    `@U… (mailto:…)`), user text escaped once; `#opg-sirius …` at the start of a summary is not a heading;
    the page, the JSON and the RCA draft name Bob (the fake's display name) and keep his id in the JSON."""
    fake, bot, channels = either
    channel = kit.incident_with_channel(fake, bot, channels)
    dm = fake.dm_channel(ALICE)
    said = fake.post_message(dm, ALICE, f"note 1 <@{BOB}> suggested the disk might be full, a < b & c")
    answer = after(fake, dm, said, "Incident 1 — Payments are failing: note logged")  # by number: it says so
    assert kit.acks_of(answer) == [said["ts"]]
    asked = mention(fake, channel, ALICE, "timeline")
    listing = after(fake, channel, asked, "Timeline of incident 1")["text"]
    assert f"<@{BOB}> suggested the disk might be full, a &lt; b &amp; c" in listing, listing
    assert "mailto" not in listing and "&amp;lt;" not in listing
    summary = fake.post_message(dm, ALICE, f"summary 1 #opg-sirius is slow for <@{CAROL}> <!channel>")
    text = after(fake, dm, summary, "is now:")["text"]
    assert f"\n#opg-sirius is slow for <@{CAROL}> &lt;\u200b!channel&gt;" in text, text  # shown, never announced
    assert not text.lstrip().startswith("*"), text

    doc = bot.incident(1)
    assert doc["people"][BOB] == "bob" and doc["role_holders"]["lead"] == {"id": ALICE, "name": "alice"}
    note = next(e for e in doc["timeline"] if e["kind"] == "note")
    assert note["text"].startswith(f"<@{BOB}> suggested") and note["author_name"] == "alice"
    page = urllib.request.urlopen(f"{bot.url}/incidents/1", timeout=5).read().decode()
    assert "@bob suggested the disk might be full, a &lt; b &amp; c" in page
    assert BOB not in page and ALICE not in page
    rca = urllib.request.urlopen(f"{bot.url}/incidents/1/rca.md", timeout=5).read().decode()
    assert "@bob suggested" in rca and "| Incident Lead | alice |" in rca


def bookmarks(fake, channel: str) -> list:
    return [{k: b[k] for k in ("title", "link", "id")} for b in fake.channel(channel).bookmarks]


def test_the_living_document_is_bookmarked_with_the_channel_and_the_analysis_once_it_is_ready(tmp_path):
    with FakeSlack("socket") as fake:
        channels = seed(fake)
        with SlackBot(fake, tmp_path) as bot:
            channel = kit.incident_with_channel(fake, bot, channels)
            fake.wait_for(lambda: bookmarks(fake, channel), message="no bookmark")
            [doc] = bookmarks(fake, channel)
            assert (doc["title"], doc["link"]) == ("Living document", f"{bot.url}/incidents/1")
            dm = fake.dm_channel(ALICE)
            for command in ("close 1 anyway", "rca 1 ready"):
                kit.wait_handled(fake, bot.database_url, fake.post_message(dm, ALICE, command))
            fake.wait_for(lambda: len(bookmarks(fake, channel)) == 2, message="no bookmark for the analysis")
            rca = bookmarks(fake, channel)[1]
            assert (rca["title"], rca["link"]) == ("Root-cause analysis", f"{bot.url}/incidents/1/rca.md")
            kit.wait_handled(fake, bot.database_url, fake.post_message(dm, ALICE, "rca 1 ready"))  # again
            kit.settle(fake, bot.database_url, timeout=20, quiet=1.2)
            assert bookmarks(fake, channel) == [doc, rca]  # updated, never added twice


def unarchive_as(fake, user: str, channel: str) -> None:
    """A person clicks Unarchive: their Slack client calls conversations.unarchive with their token."""
    token = fake.add_user_token(user, scopes=("channels:write",))
    WebClient(token=token, base_url=fake.api_url).conversations_unarchive(channel=channel)


def closed_and_archived(fake, bot, channels) -> str:
    channel = kit.incident_with_channel(fake, bot, channels)
    dm = fake.dm_channel(ALICE)
    for command in ("close 1 anyway", "archive 1"):
        kit.wait_handled(fake, bot.database_url, fake.post_message(dm, ALICE, command))
    fake.wait_for(lambda: fake.channel(channel).is_archived, message="not archived")
    return channel


# Reopening: the same path in both transports (a DM's message event, then the outbox): Socket Mode only.
@pytest.mark.parametrize("mode", ["socket"])
def test_reopen_after_archive_without_a_user_token_tells_the_lead_and_goes_on_in_the_thread(tmp_path, mode):
    with FakeSlack(mode) as fake:
        channels = seed(fake)
        with SlackBot(fake, tmp_path) as bot:
            channel = closed_and_archived(fake, bot, channels)
            head = kit.headline(fake, channels)
            dm = fake.dm_channel(ALICE)
            said = fake.post_message(dm, ALICE, "reopen 1")
            told = fake.wait_for_message(dm, lambda m: "Unarchive channel" in m.get("text", ""), timeout=15)
            assert f"<#{channel}>" in told["text"] and f"/archives/{channel}" in told["text"], told["text"]
            assert "SLACK_USER_TOKEN" in told["text"]
            fake.wait_for(lambda: any("this thread is where it is worked on" in m.get("text", "")
                                      for m in fake.bot_messages(channels["opg-incidents"], head["ts"])))
            fake.wait_for(lambda: answered(fake, dm, said) and bot.incident(1)["status"] == "open")
            assert fake.channel(channel).is_archived and not fake.calls_of("conversations.unarchive")
            # Meanwhile the incident goes on in the headline's thread...
            kit.wait_handled(fake, bot.database_url, fake.post_message(dm, ALICE, f"scribe 1 <@{CAROL}>"))
            fake.wait_for(lambda: any(f"<@{CAROL}> is now Incident Scribe" in m.get("text", "")
                                      for m in fake.bot_messages(channels["opg-incidents"], head["ts"])))
            # ...until a person unarchives the channel: back in it.
            unarchive_as(fake, BOB, channel)
            kit.wait_handled(fake, bot.database_url, fake.post_message(dm, ALICE, f"comms 1 <@{BOB}>"))
            fake.wait_for_message(channel, lambda m: f"<@{BOB}> is now Communications Lead" in m.get("text", ""))
            kit.settle(fake, bot.database_url, timeout=20, quiet=1.2)


@pytest.mark.parametrize("mode", ["socket"])
def test_reopen_after_archive_with_a_user_token_unarchives_the_channel(tmp_path, mode):
    with FakeSlack(mode) as fake:
        channels = seed(fake)
        token = fake.add_user_token(ADMIN, scopes=kit.manifest_user_scopes())
        assert kit.manifest_user_scopes() == ("channels:write",)
        with SlackBot(fake, tmp_path, env={"SLACK_USER_TOKEN": token}) as bot:
            channel = closed_and_archived(fake, bot, channels)
            dm = fake.dm_channel(ALICE)
            kit.wait_handled(fake, bot.database_url, fake.post_message(dm, ALICE, "reopen 1"))
            fake.wait_for(lambda: not fake.channel(channel).is_archived, message="still archived")
            fake.wait_for_message(channel, lambda m: m.get("text") == "🔥 Incident 1 is open again.")
            [call] = fake.calls_of("conversations.unarchive")
            assert call.ok and call.token_kind == "user"
            assert not any("Unarchive channel" in m.get("text", "") for m in fake.bot_messages(dm))
            kit.settle(fake, bot.database_url, timeout=20, quiet=1.2)
            assert token not in bot.log_file.read_text(errors="replace")
            assert json.loads(json.dumps(bot.incident(1)))["status"] == "open"
