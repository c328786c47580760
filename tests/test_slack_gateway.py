"""The gateway's direct messages (issue 17, P4): chat.postMessage takes the person's id and names the DM
channel in its answer, so no conversations.open is needed before a direct message; an attempt that must look
for an earlier one first (once(verify=True)) still opens the channel to read its history."""
from __future__ import annotations

from slack_sdk import WebClient

from tests.fake_slack import FakeSlack
from opg_incident_slack.gateway import SlackGateway


def test_a_direct_message_goes_to_the_persons_id_without_conversations_open():
    with FakeSlack() as fake:
        fake.add_user("U02LEAD", "lead")
        gateway = SlackGateway(WebClient(token=fake.bot_token, base_url=fake.api_url))
        channel, ts = gateway.dm("U02LEAD", "You are now Incident Lead")
        again, _ = gateway.dm("U02LEAD", "Still lead")
        assert channel == again == fake.dm_channel("U02LEAD") and channel.startswith("D")
        assert [m["text"] for m in fake.bot_messages(channel)] == ["You are now Incident Lead", "Still lead"]
        assert ts == fake.bot_messages(channel)[0]["ts"]
        assert fake.calls_of("conversations.open") == []
        assert [c.params.get("channel") for c in fake.calls_of("chat.postMessage")] == ["U02LEAD", channel]
        assert gateway.dm_channel("U02LEAD") == channel  # remembered from the answer: no call either
        assert fake.calls_of("conversations.open") == []


def test_a_retried_direct_message_looks_in_the_channel_first_and_is_not_posted_twice():
    with FakeSlack() as fake:
        fake.add_user("U02LEAD", "lead")
        gateway = SlackGateway(WebClient(token=fake.bot_token, base_url=fake.api_url))
        with gateway.once("outbox:1", verify=False):
            first, ts = gateway.dm("U02LEAD", "Paged")
        fresh = SlackGateway(WebClient(token=fake.bot_token, base_url=fake.api_url))  # another process
        with fresh.once("outbox:1", verify=True):
            again, found = fresh.dm("U02LEAD", "Paged")
        assert (again, found) == (first, ts)
        assert len(fake.calls_of("conversations.open")) == 1
        assert len(fake.bot_messages(first)) == 1


def test_a_retried_post_finds_itself_under_a_busy_channels_later_messages():
    """A process killed after Slack took its post but before recording it: the retry looks through every
    message since the outbox item was made (not only the newest page), and does not post it again."""
    import time
    with FakeSlack() as fake:
        fake.add_user("U02ALICE", "alice")
        channel = fake.add_channel("inc-1-payments", members=["U02ALICE"])
        made = time.time()
        gateway = SlackGateway(WebClient(token=fake.bot_token, base_url=fake.api_url))
        with gateway.once("7.0", verify=False, since=made - 60):
            ts = gateway.post(channel, "✅ Done: 84 notes. The timeline has them all.", meta={"acks": []})
        for i in range(260):  # people go on writing: the answer is past the newest 200 messages
            fake.post_message(channel, "U02ALICE", f"note {i}")
        fresh = SlackGateway(WebClient(token=fake.bot_token, base_url=fake.api_url))  # the next process
        with fresh.once("7.0", verify=True, since=made - 60):
            again = fresh.post(channel, "✅ Done: 84 notes. The timeline has them all.", meta={"acks": []})
        assert again == ts
        assert [m["ts"] for m in fake.bot_messages(channel)] == [ts]


def test_a_call_waiting_for_slacks_pace_stops_waiting_when_the_bot_stops():
    """A stop (SIGINT, a plugin reload) must not wait behind Slack's pace: the outbox worker's call is refused
    as rate limited, so its item stays queued for the next start, and the thread ends at once."""
    import threading
    import time

    from opg_incident_slack.gateway import MAX_PACE_WAIT, SlackError

    class Paced:  # Slack's pace says: this channel's next post may go in 10 s
        def wait(self, method, channel=None):
            return MAX_PACE_WAIT - 5

    with FakeSlack() as fake:
        channel = fake.add_channel("inc-1-payments")
        gateway = SlackGateway(WebClient(token=fake.bot_token, base_url=fake.api_url), pace=Paced())
        outcome = {}

        def post():
            try:
                gateway.post(channel, "An answer")
            except SlackError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=post)
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive()  # waiting its turn
        stopped = time.monotonic()
        gateway.stop()
        thread.join(5)
        assert not thread.is_alive() and time.monotonic() - stopped < 2
        assert outcome["error"].code == "ratelimited" and outcome["error"].retry_after > 0
        assert fake.bot_messages(channel) == []  # refused before Slack was asked
