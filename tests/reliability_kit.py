"""Shared by the exactly-once and security tests (issue 6, R1-R3, R5, R6): an incident with its comms
channel, notes and pins, the bot's database read directly (SQLite file or PostgreSQL), duplicates counted
on the fake Slack's state, answers lost after Slack acted, a fresh PostgreSQL database per test, and one
line of figures per test for the closing note."""
from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import re
import sqlite3
import time
from pathlib import Path

from fake_slack import events
from slack_bot import ALICE, BOB, CAROL
from opg_incident_slack import blocks

NOTE_REPLY = "Note logged on the timeline of incident"
ACK = "white_check_mark"
# A crashed process's outbox items come back after 3 s; and the bot logs as deployed (INFO): at DEBUG it writes
# every Slack payload and HTTP request, which in a storm costs more than the work itself.
LEASE = {"INCIDENT_OUTBOX_LEASE_SECONDS": "3", "BOT_LOG_LEVEL": "INFO"}


def manifest_user_scopes() -> tuple:
    """The user scopes slack-app-manifest.yml asks for (SLACK_USER_TOKEN's)."""
    import yaml

    with open(Path(__file__).resolve().parent.parent / "slack-app-manifest.yml") as f:
        return tuple(((yaml.safe_load(f) or {}).get("oauth_config") or {}).get("scopes", {}).get("user") or ())


def report(name: str, **figures) -> None:
    """One line of figures for issue 6's closing note (`pytest -s` shows it)."""
    print(f"\n[{name}] " + " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


_SEED: list = []


def seed() -> int:
    """The run's seed: RELIABILITY_SEED, or one drawn once per test session (printed by rng())."""
    if not _SEED:
        _SEED.append(int(os.environ.get("RELIABILITY_SEED") or random.SystemRandom().randrange(1, 10**6)))
    return _SEED[0]


def rng(name: str) -> random.Random:
    """A random source for one test or one thread of a test, derived from the run's seed and `name` (a
    string seed hashes the same in every process). Each thread takes its own, so that a thread's draws do
    not depend on how the threads interleave: RELIABILITY_SEED=<seed> replays the run's choices exactly."""
    print(f"\n[{name}] seed={seed()} (RELIABILITY_SEED={seed()} replays it)", flush=True)
    return random.Random(f"{seed()}/{name}")


# -- the database, read from outside the bot -----------------------------------------------------------

def query(database_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of `sql` (written with ? placeholders) on the bot's database."""
    if database_url.startswith("sqlite"):
        path = database_url.split("sqlite:///", 1)[1]
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            return conn.execute(sql, params).fetchall()
    import psycopg2

    with contextlib.closing(psycopg2.connect(database_url, connect_timeout=5)) as conn:
        with conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return cur.fetchall()


def timeline(database_url: str, kind: str) -> collections.Counter:
    """How often each text (a note) or message ts (a pin) is on the timeline of incident 1."""
    column = "source_ts" if kind == "pin" else "text"
    rows = query(database_url, f"SELECT t.{column} FROM timeline_entry t JOIN incident i ON i.id = t.incident_id "
                               "WHERE i.number = 1 AND t.kind = ? AND t.removed_at IS NULL", (kind,))
    return collections.Counter(r[0] for r in rows)


def unprocessed_inputs(database_url: str) -> int:
    return query(database_url, "SELECT COUNT(*) FROM inbox_entry WHERE processed_at IS NULL "
                               "AND payload IS NOT NULL")[0][0]


def unhandled_keys(database_url: str) -> set:
    """Keys of the inputs recorded (and maybe acked) but not handled: a process that dies now leaves them
    for a replay (kit.unprocessed_inputs counts the same rows)."""
    return {k for k, in query(database_url, "SELECT key FROM inbox_entry WHERE processed_at IS NULL "
                                            "AND payload IS NOT NULL")}


def connections_of(fake, bot) -> set:
    """Ids of the Socket Mode connections `bot`'s process opened (those opened since it started)."""
    since = time.time() - (time.monotonic() - bot.started_at)
    return {c.id for c in fake.connections if c.opened_at >= since}


def left_unhandled(fake, database_url: str, connections: set) -> set:
    """Inputs recorded and not handled whose latest delivery went over `connections`: what the process
    that owns those connections leaves for a takeover if it dies now."""
    keys = unhandled_keys(database_url)
    return {d.event_id for d in fake.deliveries(kind="events_api") if d.event_id in keys
            and any(a.target in connections for a in d.attempts[-1:])} if keys else set()


REPLAYED = re.compile(r"Replaying event (\S+) that a previous process recorded")


def replayed_keys(*logs) -> set:
    """Keys the bot logged as replayed (or taken over from a dead replica), from its log files."""
    return {key for log in logs for key in REPLAYED.findall(Path(log).read_text(errors="replace"))}


def pending_outbox(database_url: str) -> int:
    return query(database_url, "SELECT COUNT(*) FROM outbox_item WHERE status = 'pending'")[0][0]


def failed_outbox(database_url: str) -> list:
    """Outbox items given up (parked: Slack refused them for good, or after every retry)."""
    return query(database_url, "SELECT kind, last_error FROM outbox_item WHERE status IN ('failed', 'parked')")


@contextlib.contextmanager
def fresh_postgres():
    """A new PostgreSQL database (see conftest.fresh_postgres), dropped afterwards."""
    from conftest import fresh_postgres as fresh

    with fresh("opg_rel") as url:
        yield url


# -- Slack side ----------------------------------------------------------------------------------------

def text_of(message: dict) -> str:
    return message.get("text", "") + json.dumps(message.get("blocks", []), ensure_ascii=False)


def headline(fake, channels, number: int = 1) -> dict:
    def find():
        return next((m for m in fake.bot_messages(channels["opg-incidents"])
                     if m.get("thread_ts") in (None, m["ts"]) and m.get("text", "").startswith(
                         (f"Incident {number}:", f"Incident {number} ("))), None)
    return fake.wait_for(find, timeout=20, message=f"no headline for incident {number}")


def declare_by_modal(fake, channels, title: str, user: str = ALICE, timeout: float = 20.0) -> None:
    before = set(fake.views)
    assert fake.slash_command("/opg-incident", title, user, channels["general"], timeout=timeout).ok
    view_id = fake.wait_for(lambda: next((v for v, d in fake.views.items()
                                          if d.get("callback_id") == blocks.DECLARE_VIEW and v not in before), None),
                            timeout=timeout)
    ack = fake.submit_view(view_id, {"severity": "major", "lead": user}, user=user, timeout=timeout)
    assert ack.ok and not (ack.payload or {}).get("errors"), ack


def incident_with_channel(fake, bot, channels, title: str = "Payments are failing") -> str:
    """Incident 1 declared by ALICE (the lead) with its comms channel, BOB and CAROL in it."""
    declare_by_modal(fake, channels, title)
    return comms_channel(fake, bot, channels, 1)


def mention(fake, channel: str, user: str, text: str) -> dict:
    return fake.post_message(channel, user, f"<@{fake.bot_user_id}> {text}")


def quiet_message(fake, channel: str, user: str, text: str) -> str:
    """A message that is in the channel (as if posted before the bot listened): no event; returns ts."""
    ws = fake.workspace
    with ws.lock:
        return ws.add_message(ws.channel(channel), events.person_message(ws, user, text))["ts"]


def answers(fake, channel: str) -> collections.Counter:
    """How often each message of `channel` (threads included) was answered by the bot: a ✅ of its own on it,
    or named in the metadata of a bot message that answers it (`acks`, opg_incident_slack/replies.py)."""
    counts: collections.Counter = collections.Counter()
    for message in fake.messages(channel):
        if any(r.get("name") == ACK and fake.bot_user_id in r.get("users", []) for r in message.get("reactions", [])):
            counts[message["ts"]] += 1
        if message.get("user") == fake.bot_user_id or message.get("bot_id"):
            counts.update(acks_of(message))
    return counts


def acks_of(message: dict) -> list:
    return list(((message.get("metadata") or {}).get("event_payload") or {}).get("acks") or [])


def note_replies(fake, channel: str) -> int:
    """Notes (`note ...` mentions) in `channel` the bot answered."""
    said = {m["ts"] for m in fake.messages(channel) if m.get("user") != fake.bot_user_id
            and re.match(r"^<@[A-Z0-9]+> note ", m.get("text", ""))}
    return len(said & set(answers(fake, channel)))


def answered_twice(fake, channel: str) -> list:
    """Messages answered by more than one answer (a ✅ counts once)."""
    return [ts for ts, n in answers(fake, channel).items() if n > 1]


def duplicate_bot_texts(fake, channel: str, ignore: str = NOTE_REPLY) -> list:
    """Bot messages in `channel` posted more than once with the same text (answers to commands, alike by
    nature, are counted by answered_twice)."""
    counts = collections.Counter(m.get("text", "") for m in fake.bot_messages(channel)
                                 if ignore not in m.get("text", "") and not acks_of(m))
    return [(t[:80], n) for t, n in counts.items() if n > 1]


def inc_channels(fake) -> list:
    return [name for name in fake.channels.names() if name.startswith("inc-")]


def input_deliveries(fake, since: float = 0.0) -> list:
    """Envelopes the test's people caused (messages, mentions, pins), not the bot's own echoes."""
    def ours(d):
        event = d.payload.get("event") or {}
        return (d.type == "events_api" and event.get("user") != fake.bot_user_id
                and event.get("type") in ("message", "app_mention", "pin_added")
                and (d.attempts[0].time if d.attempts else time.time()) >= since)
    return fake.deliveries(where=ours)


def redeliveries(fake) -> int:
    return sum(max(0, len(d.attempts) - 1) for d in fake.deliveries())


def deliver_again(fake, envelope_id: str, attempt: int) -> None:
    """Slack delivers the same envelope again (same envelope and event id, retry_attempt = attempt)."""
    delivery = fake.delivery(envelope_id)
    delivery.retry_attempt = attempt - 1
    fake.redeliver(envelope_id)


def ack_figures(deliveries) -> str:
    """How fast the attempts were answered: p50/p99/max in ms, and how many answered after Slack's 3 s."""
    latencies = sorted(a.latency for d in deliveries for a in d.acks)
    if not latencies:
        return "none"
    late = sum(1 for d in deliveries for a in d.acks if a.late) + sum(len(d.failures) for d in deliveries)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return f"p50={pick(0.5):.0f}ms/p99={pick(0.99):.0f}ms/max={latencies[-1] * 1000:.0f}ms/late={late}"


def settle(fake, database_url: str, timeout: float = 60.0, quiet: float = 1.5) -> float:
    """Until every delivery is acked, every input handled, the outbox empty and no Web API call came for
    `quiet` s; returns how long that took."""
    start = time.monotonic()

    def calm():
        calls = fake.calls
        last = calls[-1].time if calls else 0
        return (time.time() - last > quiet and all(d.acks for d in fake.deliveries())
                and pending_outbox(database_url) == 0 and unprocessed_inputs(database_url) == 0)
    try:
        fake.wait_for(calm, timeout=timeout, interval=0.25)
    except TimeoutError:
        unacked = [d for d in fake.deliveries() if not d.acks]
        for d in unacked[:6]:
            print("never acked:", d.type, (d.payload.get("event") or {}).get("type"), d.payload.get("event_id"),
                  "attempts", [a.retry_attempt for a in d.attempts], "failures", d.failures)
        raise AssertionError(
            f"the bot never settled: {unprocessed_inputs(database_url)} inputs recorded and not handled "
            f"{query(database_url, 'SELECT key, kind, received_at FROM inbox_entry WHERE processed_at IS NULL')[:5]}, "
            f"{pending_outbox(database_url)} outbox items pending, {len(unacked)} deliveries never acked") from None
    return time.monotonic() - start


def wait_handled(fake, database_url: str, message: dict, timeout: float = 30.0) -> None:
    """Until the event of `message` (as post_message returns it) is recorded and handled by the bot."""
    def event_id():
        found = fake.deliveries(where=lambda d: (d.payload.get("event") or {}).get("ts") == message["ts"]
                                and (d.payload.get("event") or {}).get("type") == "message")
        return found and found[0].payload["event_id"]
    key = fake.wait_for(event_id, timeout=timeout)
    fake.wait_for(lambda: query(database_url, "SELECT COUNT(*) FROM inbox_entry WHERE key = ? AND processed_at "
                                              "IS NOT NULL", (key,))[0][0],
                  timeout=timeout, interval=0.05, message=f"{message.get('text')!r} never handled")


def repeated_outbox_posts(fake) -> list:
    """Outbox posts found more than once in one conversation (or thread) under one key (item.step: a step
    posts at most once per conversation, and looks there after a crash before it posts again)."""
    ws = fake.workspace
    with ws.lock:
        keys = collections.Counter(
            (channel.id, m.get("thread_ts"), ((m.get("metadata") or {}).get("event_payload") or {}).get("key"))
            for channel in ws.channels.values() for m in channel.messages.values()
            if (m.get("metadata") or {}).get("event_type") == "opg_outbox")
    return [(k, n) for k, n in keys.items() if n > 1]


def comms_channel(fake, bot, channels, number: int, by: str = ALICE) -> str:
    """Create incident `number`'s comms channel with its headline's button; BOB and CAROL join it."""
    assert fake.click_button(headline(fake, channels, number), blocks.CREATE_CHANNEL, by).ok
    channel_id = fake.wait_for(lambda: (bot.incident(number)["channel"] or {}).get("id"), timeout=20)
    fake.wait_for_message(channel_id, lambda m: "This is the comms channel" in m.get("text", ""), timeout=20)
    fake.wait_for(lambda: f"<#{channel_id}>" in text_of(headline(fake, channels, number)), timeout=20)
    for user in (BOB, CAROL):
        fake.join(channel_id, user)
    return channel_id


def lose_answers(fake, method: str, times: int = 1, **match) -> list:
    """The next `times` calls of `method` (params matching `match`) take effect in the workspace, but the
    answer is lost: Slack says internal_error, as when a response never comes back. Returns [left]."""
    return fake.lose_answers(method, times, **match)
