"""Steps of the end-to-end tests against the fake Slack: say things, wait for what the bot says."""
from __future__ import annotations

import json

from opg_incident_slack import blocks
from slack_bot import ALICE


def text_of(message: dict) -> str:
    return message.get("text", "") + json.dumps(message.get("blocks", []), ensure_ascii=False)

def mention(fake, channel, user, text):
    return fake.post_message(channel, user, f"<@{fake.bot_user_id}> {text}")

def after(fake, channel, since: dict, needle: str, timeout: float = 10.0) -> dict:
    """The first bot message in `channel` posted after the message `since` that contains `needle`."""
    return fake.wait_for_message(channel, lambda m: float(m["ts"]) > float(since["ts"]) and needle in text_of(m),
                                 timeout=timeout)

def with_text(fake, channel, needle, thread_ts=None) -> list:
    return [m for m in fake.bot_messages(channel, thread_ts) if needle in text_of(m)]

def answered(fake, channel, message) -> bool:
    """A ✅ of the bot's on `message`, or a bot message answering it (its metadata names it: `acks`)."""
    if "white_check_mark" in {r["name"] for r in fake.message(channel, message["ts"]).get("reactions", [])}:
        return True
    return any(message["ts"] in ((m.get("metadata") or {}).get("event_payload") or {}).get("acks", [])
               for m in fake.messages(channel) if m.get("user") == fake.bot_user_id)


def reacted(fake, channel, message):
    """The command was answered: a ✅ where that says enough, else its answer (opg_incident_slack/replies.py)."""
    fake.wait_for(lambda: answered(fake, channel, message), message=f"no answer to {message['text']!r}")

def headline(fake, channels, number=1) -> dict:
    def find():
        return next((m for m in fake.bot_messages(channels["opg-incidents"])
                     if m.get("thread_ts") in (None, m["ts"]) and
                     (m.get("text", "").startswith(f"Incident {number}:") or
                      m.get("text", "").startswith(f"Incident {number} ("))), None)
    return fake.wait_for(find, message=f"no headline for incident {number}")

def declare(fake, channels, title="Payments are failing", user=ALICE, **values) -> None:
    """/opg-incident, then submit the modal with a Major severity and `user` as the lead."""
    before = set(fake.views)
    assert fake.slash_command("/opg-incident", title, user, channels["general"]).ok
    view_id = fake.wait_for(lambda: next((v for v, d in fake.views.items()
                                          if d.get("callback_id") == blocks.DECLARE_VIEW and v not in before), None))
    ack = fake.submit_view(view_id, {"severity": "major", "lead": user, **values}, user=user)
    assert ack.ok and not (ack.payload or {}).get("errors"), ack
