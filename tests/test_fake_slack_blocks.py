"""Block Kit as Slack checks it (fake_slack/blocks.py): one test per rule, with Slack's error name.

Messages answer `invalid_blocks` (with json-pointers in `errors`) or `msg_blocks_too_long`; views
answer `invalid_arguments`.
"""
from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from fake_slack import FakeSlack

ALICE = "U0ALICE001"
CHANNEL = "C0GENERAL1"


def plain(text):
    return {"type": "plain_text", "text": text}


def mrkdwn(text):
    return {"type": "mrkdwn", "text": text}


def button(action_id="go", text=None, **extra):
    return {"type": "button", "action_id": action_id, "text": text or plain("Go"), **extra}


def select(options, **extra):
    return {"type": "static_select", "action_id": "pick", "placeholder": plain("Pick"), "options": options, **extra}


def option(text="One", value="one", kind=plain):
    return {"text": kind(text), "value": value}


def section(text="hi"):
    return {"type": "section", "text": mrkdwn(text)}


def modal(**overrides):
    view = {"type": "modal", "callback_id": "c", "title": plain("Declare"), "submit": plain("Save"),
            "close": plain("Cancel"), "blocks": [{"type": "input", "block_id": "t", "label": plain("Title"),
                                                  "element": {"type": "plain_text_input", "action_id": "v"}}]}
    view.update(overrides)
    return view


@pytest.fixture(scope="module")
def env():
    with FakeSlack(relax=("rate_limits",)) as fake:  # many posts into one channel here
        fake.add_user(ALICE, "alice")
        fake.add_channel("general", members=[ALICE], channel_id=CHANNEL)
        yield fake, WebClient(token=fake.bot_token, base_url=fake.api_url)
        assert not fake.internal_errors


def post(env, *blocks) -> dict:
    """Slack's answer to posting `blocks` (ok or the error body)."""
    try:
        return env[1].chat_postMessage(channel=CHANNEL, text="fallback", blocks=list(blocks)).data
    except SlackApiError as exc:
        return exc.response.data


def refused(env, *blocks) -> str:
    """The json-pointer errors of an invalid_blocks answer (the post must be refused)."""
    body = post(env, *blocks)
    assert body["error"] == "invalid_blocks", body
    return " ".join(body["errors"])


def open_view(env, view) -> dict:
    fake, web = env
    try:
        return web.views_open(trigger_id=fake.workspace.issue_trigger(ALICE), view=view).data
    except SlackApiError as exc:
        return exc.response.data


def test_plain_text_where_slack_requires_it_in_messages(env):
    assert "/blocks/0/text/type" in refused(env, {"type": "header", "text": mrkdwn("*Incident*")})
    assert "/blocks/0/elements/0/text/type" in refused(env, {"type": "actions", "elements": [button(text=mrkdwn("*Go*"))]})
    assert "/options/0/text/type" in refused(env, {"type": "actions", "elements": [select([option(kind=mrkdwn)])]})
    assert "/placeholder/type" in refused(env, {"type": "actions", "elements": [select([option()], placeholder=mrkdwn("p"))]})
    confirm = {"title": mrkdwn("Sure?"), "text": plain("Really"), "confirm": plain("Yes"), "deny": plain("No")}
    assert "/confirm/title/type" in refused(env, {"type": "actions", "elements": [button(confirm=confirm)]})
    radio = {"type": "radio_buttons", "action_id": "r", "options": [option(kind=mrkdwn)]}
    assert post(env, {"type": "actions", "elements": [radio]})["ok"]  # radio buttons may use mrkdwn


def test_plain_text_where_slack_requires_it_in_modals(env):
    assert open_view(env, modal())["ok"]
    for key in ("title", "submit", "close"):
        body = open_view(env, modal(**{key: mrkdwn("*x*")}))
        assert body["error"] == "invalid_arguments" and f"/view/{key}/type" in body["response_metadata"]["messages"][0]
    view = modal()
    view["blocks"][0]["label"] = mrkdwn("*Title*")
    body = open_view(env, view)
    assert body["error"] == "invalid_arguments" and "/view/blocks/0/label/type" in str(body)
    assert open_view(env, modal(title=plain("x" * 25)))["error"] == "invalid_arguments"  # 24 at most


def test_unknown_block_and_element_types_are_refused(env):
    assert "/blocks/0/type" in refused(env, {"type": "sectoin", "text": mrkdwn("typo")})
    assert "/blocks/0/elements/0/type" in refused(env, {"type": "actions", "elements": [{"type": "buton"}]})
    # an element in a block that does not take it: an image in an actions block, a button as input
    assert "unsupported type: image" in refused(env, {"type": "actions", "elements": [
        {"type": "image", "image_url": "https://x/y.png", "alt_text": "y"}]})
    assert "unsupported type: button" in refused(env, {"type": "input", "label": plain("L"), "element": button()})


def test_action_ids_are_unique_within_a_block(env):
    twice = {"type": "actions", "elements": [button("page", value="1"), button("page", value="2")]}
    assert "/blocks/0/elements/1/action_id" in refused(env, twice)
    once_each = [{"type": "section", "text": mrkdwn(n), "accessory": button("page", value=n)} for n in "12"]
    assert post(env, *once_each)["ok"]  # the same action_id in two blocks is fine


def test_option_label_url_and_value_lengths(env):
    def actions(*elements):
        return {"type": "actions", "elements": list(elements)}
    assert "/options/0/text/text" in refused(env, actions(select([option("x" * 76)])))
    assert "/options/0/value" in refused(env, actions(select([option(value="v" * 151)])))
    assert post(env, actions(select([option("x" * 75, "v" * 150)])))["ok"]
    assert "/elements/0/text/text" in refused(env, actions(button(text=plain("x" * 76))))
    assert "/elements/0/value" in refused(env, actions(button(value="v" * 2001)))
    assert "/elements/0/url" in refused(env, actions(button(url="https://x/" + "a" * 3000)))
    label = {"type": "input", "label": plain("x" * 2001), "element": {"type": "plain_text_input", "action_id": "v"}}
    assert "/blocks/0/label/text" in refused(env, label)
    assert "/options" in refused(env, actions({"type": "overflow", "action_id": "o", "options": [option()]}))  # 2-5
    assert "/initial_option" in refused(env, actions(select([option()], initial_option=option("Two", "two"))))


def test_section_text_is_at_most_3000_characters(env):
    assert "/blocks/0/text/text" in refused(env, section("x" * 3001))
    assert post(env, section("x" * 3000))["ok"]


def test_at_most_50_blocks_in_a_message(env):
    assert "no more than 50 items allowed" in refused(env, *[section(str(i)) for i in range(51)])
    assert post(env, *[section(str(i)) for i in range(50)])["ok"]


def test_too_much_text_in_blocks_is_msg_blocks_too_long(env):
    assert post(env, *[section("x" * 2900) for _ in range(5)])["error"] == "msg_blocks_too_long"  # 14,500
    assert post(env, *[section("x" * 2900) for _ in range(4)])["ok"]  # 11,600
