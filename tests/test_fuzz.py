"""Fuzzed input: every chat command, the settings parser and every Slack payload handler.

Never a crash or a stack trace, always a clear message; user text never pings anyone in a reply.
The number of examples is FUZZ_EXAMPLES (default 200 per test; the closing note reports a larger run).
"""
from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opg_incident_core import IncidentError, SettingsError, parse_settings
from opg_incident_core.chat import Caller, ChatCommands
from opg_incident_slack import Effects, SlackInteractions, blocks

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
PING = re.compile(r"<!|(?<!\w)@(channel|here|everyone)\b", re.IGNORECASE)
COMMANDS = ["declare", "list", "show", "summary", "impact", "sev", "action", "action_done", "actions", "note",
            "decision", "timeline", "close", "reopen", "archive", "handover", "accept", "decline", "roles",
            "checkin", "update", "updates", "notify", "call", "invite", "ask", "escalate", "rca"]
TRICKY = st.sampled_from(["", " ", "\n", "1", "#1", "12", "999999999", "-1", "done", "done 1", "me", "none",
                          "<!channel>", "<!here>", "@here", "@channel", "<@U0ABCDEF1>", "<#C123|x>", "lead",
                          "critical", "CRITICAL", "sev1", "every 30m", "off", "withdraw", "--report", "--drill",
                          "--nope", "\u200b", "🔥", "a" * 5000, "\x00", "' OR 1=1 --", "%s", "{number}"])
TEXT = st.one_of(TRICKY, st.text(max_size=200),
                 st.lists(TRICKY, min_size=1, max_size=5).map(" ".join))


@pytest.fixture
def chat(service):
    commands = ChatCommands(service)
    commands.declare("Seed incident", Caller("U0SEED001"))
    return commands


@FUZZ
@given(command=st.sampled_from(COMMANDS), args=TEXT, user=st.sampled_from(["U0FUZZ001", "@admin", "@x"]),
       channel=st.sampled_from([None, "C0NOTINC1"]))
def test_chat_commands_answer_or_refuse_clearly(chat, command, args, user, channel):
    handler = getattr(chat, command)
    try:
        reply = handler(args, Caller(user, channel))
    except IncidentError as exc:
        message = str(exc)
        assert message and "Traceback" not in message
        assert not PING.search(message), message
        return
    assert reply.text and "Traceback" not in reply.text
    assert not PING.search(reply.text), reply.text


@FUZZ
@given(role=st.sampled_from(["lead", "scribe", "comms", "reporter", "chef", ""]), args=TEXT)
def test_role_commands(chat, role, args):
    try:
        reply = chat.role(role, args, Caller("U0FUZZ002"))
        assert not PING.search(reply.text)
    except IncidentError as exc:
        assert not PING.search(str(exc))


YAML_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30))
YAML_VALUES = st.recursive(YAML_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


@FUZZ
@given(data=st.one_of(st.text(max_size=300), YAML_VALUES.map(repr),
                      st.dictionaries(st.sampled_from(["roles", "severities", "channels", "time_zone", "reminders",
                                                       "teams", "nudges", "paging", "archive", "x"]),
                                      YAML_VALUES, max_size=5).map(repr)))
def test_settings_parser_accepts_or_names_the_problem(data):
    try:
        parse_settings(data, "fuzz.yml")
    except SettingsError as exc:
        assert str(exc).startswith("fuzz.yml"), str(exc)


class RecordingGateway:
    """The edge: answers like Slack would, records what would have been sent."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return {"dm": ("D0FUZZ001", "1.000001"), "post": "1.000002", "create_channel": "C0NEW0001",
                    "open_view": "V0001", "channel_id": "C0INCIDNT"}.get(name)
        return call


class Config:
    INCIDENT_PUBLIC_URL = "http://localhost:3141"
    INCIDENT_ONCALL = ""


@pytest.fixture
def slack(service, settings_box):
    gateway = RecordingGateway()
    effects = Effects(gateway, service, lambda: settings_box[0], Config())
    yield SlackInteractions(service, effects, gateway, lambda: settings_box[0], ChatCommands(service))
    effects.shutdown()


JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                       lambda inner: st.one_of(st.lists(inner, max_size=3),
                                               st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                       max_leaves=15)
ACTION_IDS = st.sampled_from([blocks.CREATE_CHANNEL, blocks.PAGE_ONCALL, blocks.EDIT, blocks.CLOSE,
                              blocks.HANDOVER_ACCEPT, blocks.HANDOVER_DECLINE, blocks.TAKE_ROLE, "other"])
PAYLOADS = st.one_of(
    st.fixed_dictionaries({"type": st.just("block_actions"), "trigger_id": st.text(max_size=8),
                           "user": st.fixed_dictionaries({"id": st.text(max_size=10)}),
                           "actions": st.lists(st.fixed_dictionaries({"action_id": ACTION_IDS,
                                                                      "value": st.one_of(TEXT, st.none())}),
                                               max_size=2)}),
    st.fixed_dictionaries({"type": st.just("view_submission"), "user": st.fixed_dictionaries({"id": TEXT}),
                           "view": st.fixed_dictionaries({
                               "callback_id": st.sampled_from([blocks.DECLARE_VIEW, blocks.EDIT_VIEW, "x"]),
                               "private_metadata": st.one_of(TEXT, st.just('{"number": 1}')),
                               "state": st.fixed_dictionaries({"values": st.dictionaries(
                                   st.sampled_from(list(blocks.FIELDS)), st.dictionaries(
                                       st.just("value"), st.dictionaries(
                                           st.sampled_from(["value", "selected_option", "selected_user"]),
                                           JSONISH, max_size=2), max_size=1), max_size=6)})})}),
    st.dictionaries(st.text(max_size=10), JSONISH, max_size=5),
)


@FUZZ
@given(kind=st.sampled_from(["interactive", "slash_commands"]), payload=PAYLOADS)
def test_interactions_never_crash(slack, kind, payload):
    ack = slack.on_interaction(kind, payload)
    assert ack is None or isinstance(ack, dict)


@FUZZ
@given(event=st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["pin_added", "pin_removed", "channel_rename", "message"]),
                           "subtype": st.sampled_from([None, "message_changed", "message_deleted"]),
                           "channel_id": st.one_of(TEXT, st.none()), "channel": JSONISH, "user": JSONISH,
                           "item": JSONISH, "message": JSONISH, "deleted_ts": JSONISH}),
    st.dictionaries(st.text(max_size=10), JSONISH, max_size=5)))
def test_events_never_crash(slack, event):
    slack.follow_channel_event(event)
