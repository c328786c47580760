"""Slack inputs without a network: the gateway is the edge, the core and the database are real."""
from __future__ import annotations

import pytest
from conftest import logged

from opg_incident_core.chat import ChatCommands
from opg_incident_slack import Effects, SlackInteractions, blocks
from opg_incident_slack.gateway import SlackError

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"
CHANNEL = "C0INCIDT1"


class Gateway:
    """Answers like Slack; can be told to refuse a method."""

    def __init__(self):
        self.calls, self.refuse, self.history = [], {}, {}

    def _record(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        if name in self.refuse:
            raise SlackError(name, self.refuse[name])

    def open_view(self, trigger_id, view):
        self._record("open_view", trigger_id, view)
        return "V1"

    def message(self, channel, ts):
        self._record("message", channel, ts)
        return self.history.get((channel, ts))

    def permalink(self, channel, ts):
        self._record("permalink", channel, ts)
        return f"https://slack.example/archives/{channel}/p{ts.replace('.', '')}"


class Config:
    INCIDENT_PUBLIC_URL = "http://localhost:3141"


@pytest.fixture
def slack(service, settings_box):
    gateway = Gateway()
    effects = Effects(gateway, service, lambda: settings_box[0], Config())
    number = service.declare("Payments are failing", ALICE, lead=ALICE).incident.number
    service.attach_channel(number, CHANNEL, "inc-1-payments", ALICE)
    return SlackInteractions(service, effects, gateway, lambda: settings_box[0], ChatCommands(service)), gateway, number


def test_pin_without_the_message_fetches_it_and_records_author_time_and_link(slack, service):
    interactions, gateway, number = slack
    gateway.history[(CHANNEL, "1700000000.000100")] = {"ts": "1700000000.000100", "user": BOB,
                                                       "text": "Rolled back", "files": [{"name": "graph.png",
                                                       "permalink": "https://files.example/graph.png"}]}
    interactions.follow_channel_event({"type": "pin_added", "user": ALICE, "channel_id": CHANNEL,
                                       "item": {"type": "message", "message": {"ts": "1700000000.000100"}}})
    [pin] = [e for e in service.timeline(number) if e.kind == "pin"]
    assert (pin.author, pin.text, pin.at.timestamp()) == (BOB, "Rolled back", 1700000000.0001)
    assert pin.permalink.endswith("p1700000000000100")
    assert pin.files == ({"name": "graph.png", "url": "https://files.example/graph.png"},)


def test_pins_elsewhere_are_ignored_and_deleting_a_pinned_message_removes_it(slack, service):
    interactions, gateway, number = slack
    interactions.follow_channel_event({"type": "pin_added", "channel_id": "C0ELSEWHR",
                                       "item": {"message": {"ts": "1.1", "text": "x"}}})
    assert gateway.calls == []
    interactions.follow_channel_event({"type": "pin_added", "user": ALICE, "channel_id": CHANNEL, "item": {
        "message": {"ts": "1700000001.000100", "text": "Failover done", "user": BOB}}})
    assert [e.text for e in service.timeline(number) if e.kind == "pin"] == ["Failover done"]
    interactions.follow_channel_event({"type": "message", "subtype": "message_deleted", "channel": CHANNEL,
                                       "deleted_ts": "1700000001.000100"})
    assert [e for e in service.timeline(number) if e.kind == "pin"] == []


def test_channel_rename_follows(slack, service):
    interactions, _, number = slack
    interactions.follow_channel_event({"type": "channel_rename", "channel": {"id": CHANNEL, "name": "inc-1-cards"}})
    assert service.get(number).channel_name == "inc-1-cards"


def test_slash_command_opens_the_modal_or_says_how_to_declare_by_hand(slack):
    interactions, gateway, _ = slack
    assert interactions.on_interaction("slash_commands", {"text": "DB down", "trigger_id": "t1",
                                                          "channel_id": "C0GENERAL"}) is None
    view = gateway.calls[-1][1][1]
    assert {b["block_id"]: b for b in view["blocks"]}["title"]["element"]["initial_value"] == "DB down"
    gateway.refuse["open_view"] = "expired_trigger_id"
    ack = interactions.on_interaction("slash_commands", {"text": "DB down", "trigger_id": "t2"})
    assert "incident declare DB down" in ack["text"] and ack["response_type"] == "ephemeral"


def submission(callback, metadata, user=BOB, **values):
    state = {field: {"value": {"type": "plain_text_input", "value": value}} for field, value in values.items()
             if field in ("title", "summary", "impact")}
    if "severity" in values:
        state["severity"] = {"value": {"selected_option": {"value": values["severity"]}}}
    if "lead" in values:
        state["lead"] = {"value": {"selected_user": values["lead"]}}
    return {"type": "view_submission", "user": {"id": user}, "trigger_id": "t",
            "view": {"callback_id": callback, "private_metadata": metadata, "state": {"values": state}}}


def test_modal_field_errors_and_nothing_declared(slack, service):
    interactions, _, _ = slack
    ack = interactions.on_interaction("interactive", submission(blocks.DECLARE_VIEW, "{}", title="x" * 301,
                                                                severity="apocalyptic"))
    assert ack["response_action"] == "errors" and set(ack["errors"]) == {"title", "severity"}
    assert len(service.list("all")) == 1


def test_edit_applies_each_change_and_a_held_lead_is_offered_not_overwritten(slack, service):
    interactions, _, number = slack
    service.assign_role(number, "scribe", CAROL, ALICE)  # a role holder (not the lead, not the reporter)
    ack = interactions.on_interaction("interactive", submission(
        blocks.EDIT_VIEW, f'{{"number": {number}}}', user=CAROL, title="Card payments fail", summary="since 10:31",
        severity="critical", lead=CAROL))
    assert ack is None
    inc = service.get(number)
    assert (inc.title, inc.summary, inc.severity, inc.roles["lead"]) == ("Card payments fail", "since 10:31",
                                                                       "critical", ALICE)
    [handover] = service.handovers(number)  # she asked the lead for the role: it moves when Alice accepts
    assert (handover.role, handover.to_user, handover.awaiting) == ("lead", CAROL, ALICE)


def test_an_outsider_can_neither_edit_nor_take_the_empty_lead_nor_close(slack, service, db_snapshot):
    """What the audit did: someone with no role, who did not report it, used the headline's Edit form to set
    the title, summary and severity and take the empty lead, then closed it with the Close form."""
    interactions, gateway, _ = slack
    number = service.declare("Nobody leads this", ALICE).incident.number
    before = db_snapshot()
    ack = interactions.on_interaction("interactive", submission(
        blocks.EDIT_VIEW, f'{{"number": {number}}}', user=BOB, title="Nothing to see", summary="all fine",
        severity="trivial", lead=BOB))
    assert ack["response_action"] == "errors"
    [(field, refusal)] = ack["errors"].items()
    assert field == "title" and refusal.startswith(f"`summary` of incident {number} is for the incident's role "
                                                   "holders, its reporter and bot admins.")
    closing = submission(blocks.CLOSE_VIEW, f'{{"number": {number}}}', user=BOB)
    closing["view"]["state"]["values"]["reason"] = {"value": {"selected_option": {"value": "resolved"}}}
    ack = interactions.on_interaction("interactive", closing)
    assert "`close` of incident" in ack["errors"]["reason"]
    for action_id in (blocks.EDIT, blocks.CLOSE, blocks.PAGE_ONCALL, blocks.CREATE_CHANNEL):
        interactions.on_interaction("interactive", click(action_id, str(number), user=BOB))
    interactions.on_interaction("interactive", click(blocks.TAKE_ROLE, f"{number}:lead", user=BOB))
    interactions.on_interaction("interactive", click(blocks.PAGE_TEAM, f"{number}:webops", user=BOB))
    assert gateway.calls == []  # no form opened
    told = [item for item in db_snapshot()["OutboxItem"] if item not in before["OutboxItem"]]
    assert len(told) == 6 and {t["kind"] for t in told} == {"tell"}  # each click told to Bob where he clicked
    assert all(f'"user": "{BOB}"' in t["payload"] and "is for the incident" in t["payload"] for t in told)
    after = db_snapshot()
    del before["OutboxItem"], after["OutboxItem"]
    assert after == before  # nothing else changed: no title, severity, lead, page, channel or close
    inc = service.get(number)
    assert (inc.title, inc.severity, inc.roles.get("lead"), inc.status) == ("Nobody leads this", None, None, "open")


def test_an_unpin_that_overtakes_its_pin_wins(slack, service):
    interactions, _, number = slack
    message = {"ts": "1700000002.000100", "text": "Wrong graph", "user": BOB}
    interactions.follow_channel_event({"type": "pin_removed", "user": BOB, "channel_id": CHANNEL,
                                       "event_ts": "1700000010.000200", "item": {"message": message}})
    # the older event, handled later
    interactions.follow_channel_event({"type": "pin_added", "user": BOB, "channel_id": CHANNEL,
                                       "event_ts": "1700000009.000100", "item": {"message": message}})
    assert [e for e in service.timeline(number) if e.kind == "pin"] == []
    # pinned again, later: it counts
    interactions.follow_channel_event({"type": "pin_added", "user": BOB, "channel_id": CHANNEL,
                                       "event_ts": "1700000011.000100", "item": {"message": message}})
    assert [e.text for e in service.timeline(number) if e.kind == "pin"] == ["Wrong graph"]
    # an older unpin arriving late changes nothing
    interactions.follow_channel_event({"type": "pin_removed", "user": BOB, "channel_id": CHANNEL,
                                       "event_ts": "1700000010.500000", "item": {"message": message}})
    assert [e.text for e in service.timeline(number) if e.kind == "pin"] == ["Wrong graph"]


# -- inputs nobody declared a handler for: logged, acked, nothing changes ---------------------------
def click(action_id, value, user=ALICE):
    return {"type": "block_actions", "user": {"id": user}, "channel": {"id": CHANNEL}, "trigger_id": "t",
            "actions": [{"action_id": action_id, "value": value}]}


def test_a_button_nobody_handles_is_acked_and_changes_nothing(slack, db_snapshot):
    interactions, gateway, number = slack
    before = db_snapshot()
    with logged("opg_incident_slack.buttons", 20) as lines:
        assert interactions.on_interaction("interactive", click("opg_retired_button", str(number))) is None
    assert db_snapshot() == before and gateway.calls == []
    assert any("opg_retired_button" in line for line in lines)
    # the same click on a button that is handled does change the record (an outbox job)
    assert interactions.on_interaction("interactive", click(blocks.PAGE_ONCALL, str(number))) is None
    assert db_snapshot() != before


def test_an_event_or_a_modal_nobody_handles_is_acked_and_changes_nothing(slack, db_snapshot):
    interactions, gateway, number = slack
    before = db_snapshot()
    message = {"ts": "1700000003.000100", "text": "Rolled back", "user": BOB}
    with logged("opg_incident_slack", 20) as lines:
        interactions.follow_channel_event({"type": "star_added", "user": BOB, "channel_id": CHANNEL,
                                           "item": {"message": message}})
        interactions.follow_channel_event({"type": "message", "subtype": "pin_added", "channel": CHANNEL,
                                           "message": message})
        ack = interactions.on_interaction("interactive", submission("opg_retired_form", f'{{"number": {number}}}',
                                                                    title="Renamed", severity="critical"))
    assert ack is None and db_snapshot() == before and gateway.calls == []
    assert [n for n in ("star_added", "pin_added", "opg_retired_form") if any(n in line for line in lines)] == [
        "star_added", "pin_added", "opg_retired_form"]
    interactions.follow_channel_event({"type": "pin_added", "user": BOB, "channel_id": CHANNEL,
                                       "item": {"message": message}})  # the same, handled: it changes the record
    assert db_snapshot() != before


def test_a_complete_pin_elsewhere_is_ignored_without_a_look_up_or_a_call(slack, service):
    """A pin whose event carries the message and its link goes straight to record_pin (no has_channel first):
    in a channel of no incident that changes nothing, asks Slack nothing, and raises nothing."""
    interactions, gateway, number = slack
    interactions.follow_channel_event({"type": "pin_added", "user": ALICE, "channel_id": "C0ELSEWHR", "item": {
        "message": {"ts": "1700000002.000100", "text": "Elsewhere", "user": BOB, "permalink": "https://p/1"}}})
    assert gateway.calls == []
    assert [e for e in service.timeline(number) if e.kind == "pin"] == []
    interactions.follow_channel_event({"type": "pin_added", "user": ALICE, "channel_id": CHANNEL, "item": {
        "message": {"ts": "1700000003.000100", "text": "Here", "user": BOB, "permalink": "https://p/2"}}})
    assert gateway.calls == []
    assert [(e.text, e.permalink) for e in service.timeline(number) if e.kind == "pin"] == [("Here", "https://p/2")]
