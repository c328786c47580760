"""The Slack adapter's registries: every button the Block Kit builders emit, every modal they open and every
event the OPGSlack backend passes on has a handler, and each input reaches the one declared for it."""
from __future__ import annotations

import ast
import datetime as dt
import inspect
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from opg_incident_core import NotAllowed, SettingsStore
from opg_incident_core.chat import REGISTRY
from conftest import incident_view as incident
from opg_incident_slack import blocks, buttons, channel_events, modals
from opg_incident_slack.buttons import BUTTONS, action_handler
from opg_incident_slack.channel_events import CHANNEL_EVENTS
from opg_incident_slack.modals import MODALS
from opg_incident_slack.registry import Registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "opg_slack"))
import opg_slack  # noqa: E402

USER, CHANNEL = "U0CLICKER", "C0INCIDT1"


@pytest.fixture(scope="module")
def settings():
    return SettingsStore().current


# -- every button, modal and event has its handler --------------------------------------------------
def buttons_in_the_source() -> set[str]:
    """The action_id of every ButtonElement written in blocks.py (a builder added later counts too)."""
    found = set()
    for node in ast.walk(ast.parse(inspect.getsource(blocks))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "ButtonElement":
            [action_id] = [k.value for k in node.keywords if k.arg == "action_id"]
            found.add(getattr(blocks, action_id.id) if isinstance(action_id, ast.Name) else action_id.value)
    return found


def action_ids(message_blocks: list) -> set[str]:
    return {e["action_id"] for b in message_blocks if b["type"] == "actions" for e in b["elements"]}


def test_every_button_the_builders_emit_has_a_handler_and_every_handler_a_button(settings):
    teams = [SimpleNamespace(key="dba", name="Databases", covers="", reachable=True)]
    emitted = (action_ids(blocks.headline(incident(), settings, "http://x")[1])
               | action_ids(blocks.handover("Take it?", 3))
               | action_ids(blocks.reminder("No scribe yet", 7, "scribe", "Incident Scribe"))
               | action_ids(blocks.escalation_menu(7, teams)[1]))
    in_source = buttons_in_the_source()
    assert emitted <= in_source and len(in_source) == 8
    assert [a for a in sorted(in_source) if a not in BUTTONS] == []
    assert [a for a in sorted(BUTTONS) if a not in in_source] == []  # no handler for a button nobody shows


def test_every_modal_the_builders_open_has_a_handler(settings):
    opened = {blocks.incident_modal(settings)["callback_id"],
              blocks.incident_modal(settings, incident=incident())["callback_id"],
              blocks.close_modal(7, "Payments", [], "{}")["callback_id"]}
    assert opened == set(MODALS) == {blocks.DECLARE_VIEW, blocks.EDIT_VIEW, blocks.CLOSE_VIEW}


def test_every_event_the_backend_passes_on_has_a_handler():
    routed = {(kind, None) for kind in opg_slack.ROUTED_EVENTS} | {("message", s) for s in opg_slack.ROUTED_SUBTYPES}
    assert [key for key in sorted(routed, key=str) if key not in CHANNEL_EVENTS] == []
    assert set(CHANNEL_EVENTS) == routed


def test_a_second_handler_for_the_same_input_is_refused():
    with pytest.raises(ValueError, match="button 'opg_edit_incident' is registered twice"):
        action_handler(blocks.EDIT, command="summary")(lambda interactions, click: None)
    with pytest.raises(TypeError, match="command"):  # a button cannot be declared without the command it stands for
        action_handler("opg_new_button")(lambda interactions, click: None)
    assert "opg_new_button" not in BUTTONS
    registry = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(ValueError):
        registry.add("a", 2)
    assert registry.get("a") == 1 and registry.get("b") is None


# -- each input reaches its own handler -------------------------------------------------------------
class Recorder:
    """Stands in for the service, the effects or the gateway: keeps every call, answers from `returns`."""

    def __init__(self, name: str, calls: list, returns: dict | None = None):
        self._name, self._calls, self._returns = name, calls, returns or {}

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self._calls.append((f"{self._name}.{method}", *args))
            return self._returns.get(method)
        return call


def interactions(settings, calls: list, asked: list | None = None, refuse: bool = False):
    """`asked` gets each permission check (commands, user, number, channel); `refuse`: the policy says no."""
    outcome = SimpleNamespace(warnings=(), incident=SimpleNamespace(number=7))
    service = Recorder("service", calls, {"get": incident(), "close_check": [], "answer_handover": outcome,
                                          "declare": outcome, "has_channel": True, "for_channel": incident(channel_id=CHANNEL)})

    def allow(commands, user, number, channel):
        (asked if asked is not None else []).append((tuple(commands), user, number, channel))
        if refuse:
            raise NotAllowed("`x` is for bot admins.")
    return SimpleNamespace(service=service, effects=Recorder("effects", calls), slack=Recorder("slack", calls),
                           settings=settings, tell=lambda *args: calls.append(("tell", *args)), allow=allow)


CLICKS = {  # action_id -> (the button's value, the first call its handler makes)
    blocks.CREATE_CHANNEL: ("7", ("effects.job", "create_channel", 7, {"by": USER})),
    blocks.PAGE_ONCALL: ("7", ("effects.job", "page_oncall", 7, {"by": USER})),
    blocks.EDIT: ("7", ("service.get", 7)),
    blocks.CLOSE: ("7", ("service.close_check", 7, USER)),
    blocks.HANDOVER_ACCEPT: ("3", ("service.answer_handover", 3, USER, True)),
    blocks.HANDOVER_DECLINE: ("3", ("service.answer_handover", 3, USER, False)),
    blocks.TAKE_ROLE: ("7:scribe", ("service.assign_role", 7, "scribe", USER, USER)),
    blocks.PAGE_TEAM: ("7:dba", ("service.page_specialist", 7, "dba", USER)),
}


def test_the_click_table_covers_every_registered_button():
    assert sorted(CLICKS) == sorted(BUTTONS)


@pytest.mark.parametrize("action_id", sorted(CLICKS))
def test_a_click_reaches_the_handler_of_its_button(settings, action_id):
    value, first = CLICKS[action_id]
    calls = []
    buttons.handle_click(interactions(settings, calls), {"action_id": action_id, "value": value},
                         {"user": {"id": USER}, "channel": {"id": CHANNEL}, "trigger_id": "t1"})
    assert calls and calls[0] == first
    if action_id in (blocks.EDIT, blocks.CLOSE):  # a modal opened within the 3 seconds, with the trigger
        assert calls[-1][:2] == ("slack.open_view", "t1")


EVENTS = {  # (type, subtype) -> (the event, the call its handler makes to the service last)
    ("pin_added", None): ({"type": "pin_added", "user": USER, "channel_id": CHANNEL, "event_ts": "9.1",
                           "item": {"message": {"ts": "1.1", "text": "Rolled back", "user": USER,
                                                "permalink": "https://p"}}}, "service.record_pin"),
    ("pin_removed", None): ({"type": "pin_removed", "user": USER, "channel_id": CHANNEL,
                             "item": {"message": {"ts": "1.1"}}}, "service.remove_pin"),
    ("message", "message_changed"): ({"type": "message", "subtype": "message_changed", "channel": CHANNEL,
                                      "message": {"ts": "1.1", "text": "edited", "user": USER}},
                                     "service.edit_pinned_message"),
    ("message", "message_deleted"): ({"type": "message", "subtype": "message_deleted", "channel": CHANNEL,
                                      "deleted_ts": "1.1"}, "service.remove_pin"),
    ("channel_rename", None): ({"type": "channel_rename", "channel": {"id": CHANNEL, "name": "inc-7-x"}},
                               "service.rename_channel"),
    ("channel_archive", None): ({"type": "channel_archive", "channel": CHANNEL}, "service.mark_channel_archived"),
    ("channel_unarchive", None): ({"type": "channel_unarchive", "channel": CHANNEL}, "service.for_channel"),
}


def test_the_event_table_covers_every_registered_event():
    assert sorted(EVENTS, key=str) == sorted(CHANNEL_EVENTS, key=str)


@pytest.mark.parametrize("key", sorted(EVENTS, key=str), ids=str)
def test_an_event_reaches_the_handler_of_its_type(settings, key):
    event, last = EVENTS[key]
    calls = []
    channel_events.handle_event(interactions(settings, calls), event)
    assert calls and calls[-1][0] == last


def test_a_submission_reaches_the_handler_of_its_modal(settings):
    calls = []
    view = {"callback_id": blocks.CLOSE_VIEW, "private_metadata": '{"number": 7}',
            "state": {"values": {"reason": {"value": {"selected_option": {"value": "resolved"}}}}}}
    assert modals.handle_submission(interactions(settings, calls), {"user": {"id": USER}, "view": view}) is None
    assert calls[0] == ("service.close", 7, USER, "resolved")


# -- every button and form is checked against the permission policy of the command it stands for --------
STANDS_FOR = {  # action_id / callback_id -> the chat command(s) whose permission it needs
    blocks.CREATE_CHANNEL: ("invite",), blocks.PAGE_ONCALL: ("escalate",), blocks.PAGE_TEAM: ("escalate",),
    blocks.EDIT: ("summary", "impact", "sev", "lead"), blocks.CLOSE: ("close",),
    blocks.HANDOVER_ACCEPT: ("accept",), blocks.HANDOVER_DECLINE: ("decline",), blocks.TAKE_ROLE: ("scribe",),
    blocks.DECLARE_VIEW: ("incident declare",), blocks.EDIT_VIEW: ("summary", "impact", "sev", "lead"),
    blocks.CLOSE_VIEW: ("close",),
}


def test_every_button_and_form_stands_for_registered_commands():
    assert sorted(STANDS_FOR) == sorted([*BUTTONS, *MODALS])
    for form in MODALS:
        assert all(REGISTRY.get(name) is not None for name in MODALS.get(form).commands), form
    assert buttons.role_command("lead") == "lead" and buttons.role_command("chef") == "role"


@pytest.mark.parametrize("action_id", sorted(CLICKS))
def test_a_click_asks_the_policy_first_and_a_refusal_runs_nothing(settings, action_id):
    value, _ = CLICKS[action_id]
    click = ({"action_id": action_id, "value": value}, {"user": {"id": USER}, "channel": {"id": CHANNEL},
                                                        "trigger_id": "t1"})
    asked, calls = [], []
    buttons.handle_click(interactions(settings, calls, asked), *click)
    assert asked == [(STANDS_FOR[action_id], USER, int(value.split(":")[0]), CHANNEL)]
    calls = []
    buttons.handle_click(interactions(settings, calls, refuse=True), *click)
    assert calls == [("tell", USER, CHANNEL, "Sorry: `x` is for bot admins.")]  # told, and nothing else ran


@pytest.mark.parametrize("callback_id", [blocks.DECLARE_VIEW, blocks.EDIT_VIEW, blocks.CLOSE_VIEW])
def test_a_submission_asks_the_policy_first_and_a_refusal_runs_nothing(settings, callback_id):
    view = {"callback_id": callback_id, "private_metadata": f'{{"number": 7, "channel": "{CHANNEL}"}}',
            "blocks": [{"type": "section", "block_id": "question"}, {"type": "input", "block_id": "reason"}],
            "state": {"values": {"title": {"value": {"value": "x"}}}}}
    asked, calls = [], []
    modals.handle_submission(interactions(settings, calls, asked), {"user": {"id": USER}, "view": view})
    assert asked == [(STANDS_FOR[callback_id], USER, 7, CHANNEL)]
    calls = []
    ack = modals.handle_submission(interactions(settings, calls, refuse=True), {"user": {"id": USER}, "view": view})
    assert ack == {"response_action": "errors", "errors": {"reason": "`x` is for bot admins."}} and calls == []
