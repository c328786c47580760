"""The fake Slack behaves like Slack for the real clients: slack_sdk's WebClient, its built-in
SocketModeClient, and signature checks (slack_sdk SignatureVerifier, slackeventsapi)."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse

from tests.fake_slack import ALL_SCOPES, ALL_SUBSCRIPTIONS, FakeSlack, Manifest

ALICE, BOB = "U0ALICE001", "U0BOB00001"
CLASSIC = {"apps", "bot", "bot:basic", "client", "files:write:user", "identify", "post", "read"}
MODAL = {"type": "modal", "callback_id": "declare", "title": {"type": "plain_text", "text": "Declare"},
         "submit": {"type": "plain_text", "text": "Declare"},
         "blocks": [{"type": "input", "block_id": "title",
                     "label": {"type": "plain_text", "text": "Title"},
                     "element": {"type": "plain_text_input", "action_id": "value"}},
                    {"type": "input", "block_id": "sev", "label": {"type": "plain_text", "text": "Sev"},
                     "element": {"type": "static_select", "action_id": "choice", "options": [
                         {"text": {"type": "plain_text", "text": "Major"}, "value": "major"}]}}]}
BUTTONS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Incident*"}},
           {"type": "actions", "block_id": "steps", "elements": [
               {"type": "button", "action_id": "create_channel", "value": "inc-1",
                "text": {"type": "plain_text", "text": "Create comms channel"}}]}]


def seed(fake: FakeSlack) -> str:
    fake.add_user(ALICE, "alice", real_name="Alice A", email="alice@example.com")
    fake.add_user(BOB, "bob")
    return fake.add_channel("general", members=[ALICE, BOB])


BROAD = Manifest.granting(ALL_SCOPES, ALL_SUBSCRIPTIONS)  # these tests use more of Slack than the app


@pytest.fixture
def fake():
    with FakeSlack(manifest=BROAD, relax=("rate_limits",)) as fake:
        seed(fake)
        yield fake
        assert not fake.internal_errors


@pytest.fixture
def web(fake):
    return WebClient(token=fake.bot_token, base_url=fake.api_url)


def api_error(call, *args, **kwargs) -> str:
    with pytest.raises(SlackApiError) as info:
        call(*args, **kwargs)
    return info.value.response["error"]


# --- Web API ----------------------------------------------------------------------------------------
def test_auth_test_sends_lower_case_granular_scopes_like_slack(fake, web):
    response = web.auth_test()
    assert response["user_id"] == fake.bot_user_id and response["bot_id"]
    scopes = set(response.headers["x-oauth-scopes"].split(","))  # errbot indexes exactly this key
    assert {"chat:write", "pins:read"} <= scopes and not scopes <= CLASSIC


def test_tokens_are_checked(fake, web):
    assert api_error(WebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test) == "invalid_auth"
    assert api_error(WebClient(base_url=fake.api_url).api_call, "auth.test") == "not_authed"
    app = WebClient(token=fake.app_token, base_url=fake.api_url)
    assert app.apps_connections_open(app_token=fake.app_token)["url"].startswith("ws://127.0.0.1:")
    assert api_error(web.apps_connections_open, app_token=fake.bot_token) == "not_allowed_token_type"
    assert api_error(app.chat_postMessage, channel="general", text="x") == "not_allowed_token_type"
    assert api_error(web.api_call, "no.such_method") == "unknown_method"
    assert web.bots_info(bot=web.auth_test()["bot_id"])["bot"]["user_id"] == fake.bot_user_id
    assert api_error(web.views_open, trigger_id="", view=MODAL) == "invalid_arguments"


def test_channel_lifecycle_keeps_state_and_slack_errors(fake, web):
    created = web.conversations_create(name="inc-42-db-down")["channel"]
    assert created["is_member"] and fake.members(created["id"]) == {fake.bot_user_id}
    assert api_error(web.conversations_create, name="inc-42-db-down") == "name_taken"
    assert api_error(web.conversations_create, name="Inc 42") == "invalid_name_specials"
    assert api_error(web.conversations_create, name="x" * 81) == "invalid_name_maxlength"
    web.conversations_invite(channel=created["id"], users=[ALICE, BOB])
    assert fake.members("inc-42-db-down") == {fake.bot_user_id, ALICE, BOB}
    assert api_error(web.conversations_invite, channel=created["id"], users=ALICE) == "already_in_channel"
    assert api_error(web.conversations_invite, channel=created["id"],
                     users=fake.bot_user_id) == "cant_invite_self"
    assert api_error(web.conversations_invite, channel=created["id"], users="U404") == "user_not_found"
    web.conversations_setTopic(channel=created["id"], topic="DB down | doc: http://x")
    assert fake.topic("inc-42-db-down") == "DB down | doc: http://x"
    assert api_error(web.conversations_setTopic, channel=created["id"], topic="x" * 251) == "too_long"
    web.conversations_archive(channel=created["id"])
    assert fake.channels["inc-42-db-down"].is_archived
    assert api_error(web.chat_postMessage, channel=created["id"], text="hi") == "is_archived"
    assert api_error(web.conversations_create, name="inc-42-db-down") == "name_taken"
    assert api_error(web.conversations_unarchive, channel=created["id"]) == "not_in_channel"  # bot token
    admin = WebClient(token=fake.add_user_token(ALICE), base_url=fake.api_url)
    admin.conversations_unarchive(channel=created["id"])
    web.conversations_rename(channel=created["id"], name="inc-42-resolved")
    assert "inc-42-resolved" in fake.channels and "inc-42-db-down" not in fake.channels
    assert api_error(web.conversations_info, channel="C404") == "channel_not_found"
    names = [c["name"] for c in web.conversations_list(limit=1000)["channels"]]
    assert names == ["general", "inc-42-resolved"]


def test_messages_threads_updates_and_membership(fake, web):
    outsider = fake.add_channel("random", members=[ALICE], bot_member=False)
    assert api_error(web.chat_postMessage, channel=outsider, text="hi") == "not_in_channel"
    assert api_error(web.chat_postMessage, channel="general") == "no_text"
    parent = web.chat_postMessage(channel="general", text="headline")
    reply = web.chat_postMessage(channel=parent["channel"], text="in thread", thread_ts=parent["ts"])
    assert float(reply["ts"]) > float(parent["ts"]) and reply["message"]["thread_ts"] == parent["ts"]
    assert [m["text"] for m in fake.messages("general", thread_ts=parent["ts"])] == \
        ["headline", "in thread"]
    web.chat_update(channel=parent["channel"], ts=parent["ts"], text="headline v2", blocks=BUTTONS)
    assert fake.message("general", parent["ts"])["blocks"][1]["block_id"] == "steps"
    human = fake.post_message("general", ALICE, "hello")
    assert api_error(web.chat_update, channel=human["channel"], ts=human["ts"],
                     text="x") == "cant_update_message"
    assert api_error(web.chat_delete, channel=human["channel"], ts="1.000001") == "message_not_found"
    history = web.conversations_history(channel=human["channel"])["messages"]
    assert [m["text"] for m in history] == ["hello", "headline v2"]  # newest first, no replies
    link = web.chat_getPermalink(channel=human["channel"], message_ts=human["ts"])["permalink"]
    assert link.endswith("/p" + human["ts"].replace(".", ""))
    web.chat_postEphemeral(channel=human["channel"], user=ALICE, text="just you")
    assert fake.ephemeral_for("alice")[0]["text"] == "just you"


def test_block_kit_limits(fake, web):
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    assert api_error(web.chat_postMessage, channel="general", text="t", blocks=[section] * 51) \
        == "invalid_blocks"
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    with pytest.raises(SlackApiError) as info:
        web.chat_postMessage(channel="general", text="t", blocks=[long_section])
    assert info.value.response["errors"] == [
        "failed to match all allowed schemas [json-pointer:/blocks/0/text]",
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
    web.chat_postMessage(channel="general", text="t", blocks=[section] * 50)


def test_pins_and_reactions(fake, web):
    posted = fake.post_message("general", ALICE, "the DB is down")
    web.pins_add(channel=posted["channel"], timestamp=posted["ts"])
    assert api_error(web.pins_add, channel=posted["channel"], timestamp=posted["ts"]) == "already_pinned"
    item = web.pins_list(channel=posted["channel"])["items"][0]
    assert item["message"]["text"] == "the DB is down" and item["created_by"] == fake.bot_user_id
    fake.unpin("general", posted["ts"], ALICE)
    assert fake.pins("general") == []
    web.reactions_add(channel=posted["channel"], timestamp=posted["ts"], name="eyes")
    assert api_error(web.reactions_add, channel=posted["channel"], timestamp=posted["ts"],
                     name="eyes") == "already_reacted"
    assert fake.message("general", posted["ts"])["reactions"][0]["users"] == [fake.bot_user_id]


def test_trigger_ids_are_single_use_and_expire(fake, web):
    assert api_error(web.views_open, trigger_id="123.456.nope", view=MODAL) == "invalid_trigger_id"
    trigger = fake.workspace.issue_trigger(ALICE)
    view = web.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert fake.views[view["id"]]["callback_id"] == "declare"
    assert api_error(web.views_open, trigger_id=trigger, view=MODAL) == "exchanged_trigger_id"
    fake.workspace.trigger_ttl = 0.05
    late = fake.workspace.issue_trigger(ALICE)
    time.sleep(0.1)
    assert api_error(web.views_open, trigger_id=late, view=MODAL) == "expired_trigger_id"
    assert api_error(web.views_update, view_id=view["id"], hash="stale", view=MODAL) == "hash_conflict"
    bad = dict(MODAL, title={"type": "plain_text", "text": "x" * 25})
    assert api_error(web.views_update, view_id=view["id"], view=bad) == "invalid_arguments"


def test_rate_limits_and_server_errors(fake, web):
    fake.fail_next("conversations.create", retry_after=0)
    with pytest.raises(SlackApiError) as info:
        web.conversations_create(name="inc-1")
    assert info.value.response.status_code == 429 and info.value.response["error"] == "ratelimited"
    assert info.value.response.headers["retry-after"] == "0"
    patient = WebClient(token=fake.bot_token, base_url=fake.api_url,
                        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    fake.fail_next("conversations.create", retry_after=0)
    assert patient.conversations_create(name="inc-1")["ok"]
    assert [c.status for c in fake.calls_of("conversations.create")] == [429, 429, 200]
    fake.fail_next("users.info", status=503)
    with pytest.raises(SlackApiError) as info:
        web.users_info(user=ALICE)
    assert info.value.response.status_code == 503
    fake.fail_next("users.info", error="fatal_error")
    assert api_error(web.users_info, user=ALICE) == "fatal_error"
    fake.delay_next("auth.test", 0.5)
    with pytest.raises(TimeoutError):
        WebClient(token=fake.bot_token, base_url=fake.api_url, timeout=0.1).auth_test()
    fake.rate_limit("team.info", 1, period=60)
    web.team_info()
    assert api_error(web.team_info) == "ratelimited"


def test_dms_pagination_and_file_uploads(fake, web):
    dm = web.conversations_open(users=ALICE)["channel"]["id"]
    assert dm.startswith("D") and fake.dm_channel("alice") == dm
    fake.post_message(dm, ALICE, "help")
    web.chat_postMessage(channel=ALICE, text="in your DM")  # a user id means the DM with them
    assert [m["text"] for m in fake.messages(dm)] == ["help", "in your DM"]
    for i in range(3):
        fake.add_user(f"U0EXTRA{i:03d}", f"extra{i}")
    pages = list(web.users_list(limit=2))  # slack_sdk follows next_cursor
    assert [len(page["members"]) for page in pages] == [2, 2, 2]
    upload = web.files_upload_v2(channel=dm, content="# RCA", filename="rca.md", title="RCA")
    assert upload["files"][0]["title"] == "RCA" and fake.files[upload["files"][0]["id"]]["content"] == b"# RCA"
    assert fake.messages(dm)[-1]["files"][0]["name"] == "rca.md"
    lobby = fake.add_channel("lobby", members=[BOB], bot_member=False)
    assert web.conversations_join(channel=lobby)["channel"]["is_member"]
    assert web.conversations_members(channel=lobby)["members"] == sorted([BOB, fake.bot_user_id])


def test_get_with_query_string(fake):
    url = f"{fake.api_url}users.info?user={ALICE}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {fake.bot_token}"})
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["user"]["profile"]["email"] == "alice@example.com"
    assert fake.calls_of("users.info")[0].http_method == "GET"


# --- Socket Mode --------------------------------------------------------------------------------------
class App:
    """A Socket Mode app on slack_sdk's built-in client that records requests and acks them."""

    def __init__(self, fake: FakeSlack, ack=True, answer=None):
        self.requests, self.ack, self.answer = [], ack, answer
        self.client = SocketModeClient(app_token=fake.app_token, ping_interval=1,
                                       web_client=WebClient(token=fake.bot_token, base_url=fake.api_url))
        self.client.socket_mode_request_listeners.append(self.on_request)
        self.client.connect()

    def on_request(self, client, req) -> None:
        self.requests.append(req)
        if self.ack:
            payload = self.answer(req) if self.answer else None
            client.send_socket_mode_response(SocketModeResponse(req.envelope_id, payload=payload))

    def last(self, payload_type: str) -> dict:
        return [r.payload for r in self.requests if r.payload.get("type") == payload_type][-1]

    def last_of(self, kind: str) -> dict:
        return [r.payload for r in self.requests if r.type == kind][-1]

    def events(self, kind=None) -> list:
        return [r.payload["event"] for r in self.requests if r.type == "events_api"
                and (kind is None or r.payload["event"]["type"] == kind)]


@pytest.fixture
def apps(fake):
    started = []
    yield lambda **kw: started.append(App(fake, **kw)) or started[-1]
    for app in started:  # closing is quick once the server side has gone
        app.client.auto_reconnect_enabled, app.client.closed = False, True
        app.client.message_queue.put(None)  # wakes its message loop now, not after its 1 s queue timeout
    fake.drop_connections()
    for app in started:
        app.client.close()


def test_socket_mode_hello_events_and_acks(fake, apps):
    app = apps()
    fake.wait_until_connected()
    posted = fake.post_message("general", ALICE, f"<@{fake.bot_user_id}> summary DB down")
    fake.wait_for(lambda: app.events("app_mention"))
    message = app.events("message")[0]
    assert (message["ts"], message["user"], message["channel_type"]) == (posted["ts"], ALICE, "channel")
    assert message["blocks"][0]["elements"][0]["elements"][0] == {"type": "user",
                                                                 "user_id": fake.bot_user_id}
    fake.wait_for(lambda: len(fake.acks) == 2)
    assert all(ack.latency < 1 for ack in fake.acks)
    web = app.client.web_client
    web.chat_postMessage(channel=posted["channel"], text="ack", thread_ts=posted["ts"])
    echo = fake.wait_for(lambda: [e for e in app.events("message") if e.get("bot_id")])[0]
    assert echo["user"] == fake.bot_user_id and echo["thread_ts"] == posted["ts"]
    fake.pin("general", posted["ts"], BOB)
    pinned = fake.wait_for(lambda: app.events("pin_added"))[0]
    assert pinned["item"]["message"]["text"] == posted["text"] and pinned["channel_id"] == posted["channel"]


def test_unacked_events_are_redelivered_with_retry_attempt(fake, apps):
    fake.ack_timeout = 0.3
    app = apps(ack=False)
    fake.wait_until_connected()
    envelope_id = fake.send_event({"type": "app_mention", "user": ALICE, "text": "hi",
                                   "channel": "C1", "ts": "1.000001", "event_ts": "1.000001"})
    fake.wait_for(lambda: len(app.requests) == 4, timeout=5)  # the original + 3 retries
    assert [r.retry_attempt for r in app.requests] == [0, 1, 2, 3]
    assert {r.retry_reason for r in app.requests[1:]} == {"timeout"}
    assert {r.envelope_id for r in app.requests} == {envelope_id}
    assert len({r.payload["event_id"] for r in app.requests}) == 1
    time.sleep(0.5)
    assert len(app.requests) == 4 and not fake.delivery(envelope_id).acked


def test_forced_redelivery_and_duplicate_acks_are_recorded(fake, apps):
    app = apps()
    fake.wait_until_connected()
    envelope_id = fake.send_event({"type": "reaction_added", "user": ALICE, "reaction": "eyes"})
    fake.wait_ack(envelope_id)
    fake.redeliver(envelope_id)
    fake.wait_for(lambda: len(fake.delivery(envelope_id).acks) == 2)
    assert [r.retry_attempt for r in app.requests] == [0, 1]
    assert fake.delivery(envelope_id).duplicate_acks


def test_disconnect_makes_the_client_reconnect(fake, apps):
    app = apps()
    fake.wait_until_connected()
    fake.disconnect("refresh_requested", close_after=0.2)
    fake.wait_until_connected(total=2)
    assert len(fake.calls_of("apps.connections.open")) == 2
    fake.post_message("general", ALICE, "after the refresh")
    fake.wait_for(lambda: app.events("message") and fake.acks)
    assert [ack.connection_id for ack in fake.acks] == [2]


def test_envelopes_are_spread_over_connections(fake, apps):
    first, second = apps(), apps()
    fake.wait_until_connected(count=2)
    for i in range(4):
        fake.post_message("general", ALICE, f"message {i}")
    fake.wait_for(lambda: len(first.requests) + len(second.requests) == 4)
    assert len(first.requests) == len(second.requests) == 2


def test_slash_command_modal_submission_and_buttons(fake, apps):
    def answer(req):
        if req.type == "slash_commands":
            web.views_open(trigger_id=req.payload["trigger_id"], view=MODAL)
            return {"text": "Opening the form"}
        if req.payload["type"] == "view_submission":
            title = req.payload["view"]["state"]["values"]["title"]["value"]["value"]
            return {"response_action": "errors", "errors": {"title": "Too short"}} if len(title) < 3 else None
        if req.payload["type"] == "block_actions":
            web.chat_update(channel=req.payload["channel"]["id"], ts=req.payload["message"]["ts"],
                            text="channel created")
    app = apps(answer=answer)
    web = app.client.web_client
    fake.wait_until_connected()
    ack = fake.slash_command("/opg-incident", "DB down", ALICE, "general")
    assert ack.payload == {"text": "Opening the form"} and ack.latency < 3
    assert fake.ephemeral_for(ALICE)[-1]["text"] == "Opening the form"
    command = app.requests[0].payload
    assert command["command"] == "/opg-incident" and command["response_url"].startswith(fake.base_url)
    view_id = next(iter(fake.views))
    ack = fake.submit_view(view_id, {"title": "DB", "sev": "major"})
    assert ack.payload["response_action"] == "errors" and fake.view(view_id)["open"]
    assert fake.view(view_id)["errors"] == {"title": "Too short"}
    fake.submit_view(view_id, {"title": "DB down", "choice": "major"})
    state = app.last("view_submission")["view"]["state"]["values"]
    assert state["sev"]["choice"]["selected_option"]["value"] == "major"
    assert fake.views == {}
    headline = web.chat_postMessage(channel="general", text="incident", blocks=BUTTONS)
    fake.click_button(("general", headline["ts"]), "create_channel", BOB)
    click = app.last("block_actions")
    assert click["actions"][0]["value"] == "inc-1" and click["container"]["message_ts"] == headline["ts"]
    assert fake.message("general", headline["ts"])["text"] == "channel created"
    status = urllib.request.urlopen(urllib.request.Request(
        click["response_url"], data=json.dumps({"text": "done", "response_type": "in_channel"}).encode(),
        headers={"Content-Type": "application/json"})).status
    assert status == 200 and fake.bot_messages("general")[-1]["text"] == "done"


def test_view_stack_response_actions_and_response_url_limits(fake, apps):
    second = dict(MODAL, callback_id="second", notify_on_close=True)
    def answer(req):
        payload = req.payload
        if req.type == "slash_commands":
            web.views_open(trigger_id=payload["trigger_id"], view=MODAL)
        elif payload["type"] == "view_submission":
            return {"response_action": "push", "view": second} \
                if payload["view"]["callback_id"] == "declare" else {"response_action": "clear"}
    app = apps(answer=answer)
    web = app.client.web_client
    fake.wait_until_connected()
    fake.slash_command("/opg-incident", "", ALICE, "general")
    first_id = next(iter(fake.views))
    fake.submit_view(first_id, {"title": "DB down"})
    second_id = [v for v in fake.views if v != first_id][0]
    assert fake.view(second_id)["previous_view_id"] == first_id
    assert api_error(web.views_push, trigger_id="x", view=MODAL) == "invalid_trigger_id"
    fake.submit_view(second_id, {"title": "More"})
    assert fake.views == {}
    fake.slash_command("/opg-incident", "", ALICE, "general")
    view_id = next(iter(fake.views))
    web.views_update(view_id=view_id, view=second)
    fake.close_view(view_id)
    assert app.last("view_closed")["view"]["callback_id"] == "second"
    hook = [r.payload for r in app.requests if r.type == "slash_commands"][-1]["response_url"]
    post = lambda: urllib.request.urlopen(urllib.request.Request(  # noqa: E731
        hook, data=b'{"text": "update"}', headers={"Content-Type": "application/json"})).status
    assert [post() for _ in range(5)] == [200] * 5
    with pytest.raises(urllib.error.HTTPError) as info:
        post()
    assert info.value.code == 404 and len(fake.ephemeral_for(ALICE)) == 5


MRKDWN_HEADER = [{"type": "header", "text": {"type": "mrkdwn", "text": "*not plain*"}}]


def test_answers_on_acks_and_response_urls_get_slacks_block_kit_checks(fake, apps):
    """Block Kit checks on a slash command's ack reply and on response_url answers, views.*'s checks on a
    view_submission's response_action update/push, and `errors` only for the view's input blocks: what
    Slack refuses is not shown, the view stays as it was, and the ledger has it."""
    answers = []

    def answer(req):
        if req.type == "slash_commands" and not fake.views:
            web.views_open(trigger_id=req.payload["trigger_id"], view=MODAL)
        return answers.pop(0)
    app = apps(answer=answer)
    web = app.client.web_client
    fake.wait_until_connected()
    answers.append({"text": "with a bad header", "blocks": MRKDWN_HEADER})
    fake.slash_command("/opg-incident", "DB down", ALICE, "general")
    assert fake.ephemeral_for(ALICE) == []  # Slack refused the reply on the ack
    assert [(p.method, p.error) for p in fake.unexpected_errors()] == [("ack of slash command", "invalid_blocks")]
    hook = app.last_of("slash_commands")["response_url"]
    post = lambda body: urllib.request.urlopen(urllib.request.Request(  # noqa: E731
        hook, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})).status
    with pytest.raises(urllib.error.HTTPError) as info:
        post({"text": "still bad", "blocks": MRKDWN_HEADER})
    assert (info.value.code, info.value.read()) == (400, b"invalid_blocks") and fake.ephemeral_for(ALICE) == []
    assert post({"text": "fine", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*ok*"}}]}) == 200
    assert [m["text"] for m in fake.ephemeral_for(ALICE)] == ["fine"]

    view_id = next(iter(fake.views))
    long_title = dict(MODAL, title={"type": "plain_text", "text": "a title longer than 24 chars"})
    answers.extend([{"response_action": "errors", "errors": {"value": "not a block_id"}},
                    {"response_action": "update", "view": long_title},
                    {"response_action": "push", "view": dict(MODAL, blocks=MRKDWN_HEADER)},
                    {"response_action": "errors", "errors": {"sev": "Pick one"}}])
    for _ in range(3):
        fake.submit_view(view_id, {"title": "DB down", "sev": "major"})
    assert fake.view(view_id)["open"] and fake.view(view_id)["title"] == MODAL["title"] and len(fake.views) == 1
    assert not fake.view(view_id).get("errors")
    assert sorted((p.method, p.error) for p in fake.unexpected_errors()) == [
        ("ack of slash command", "invalid_blocks"), ("response_action errors", "invalid_arguments"),
        ("response_action push", "invalid_arguments"), ("response_action update", "invalid_arguments"),
        ("response_url (commands)", "invalid_blocks")]
    fake.submit_view(view_id, {"title": "DB down", "sev": "major"})
    assert fake.view(view_id)["errors"] == {"sev": "Pick one"} and len(fake.unexpected_errors()) == 5


# --- HTTP mode ------------------------------------------------------------------------------------------
class Receiver(BaseHTTPRequestHandler):
    """A tiny app endpoint: verifies Slack's signature, records, answers per `responses`."""

    secret, requests, responses = "", [], []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        valid = SignatureVerifier(self.secret).is_valid_request(body, dict(self.headers))
        Receiver.requests.append((self.path, dict(self.headers), body, valid))
        status, text = Receiver.responses.pop(0) if Receiver.responses else (200, "")
        if status == "slow":
            time.sleep(1.2)
            status = 200
        self.send_response(status if valid else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def http_fake():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.secret, Receiver.requests, Receiver.responses = "s3cret", [], []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    with FakeSlack(mode="http", signing_secret="s3cret", ack_timeout=1.0, manifest=BROAD,
                   app_url=f"http://127.0.0.1:{server.server_address[1]}") as fake:
        seed(fake)
        yield fake
    server.shutdown()


def test_http_mode_signs_events_commands_and_interactions(http_fake):
    fake = http_fake
    Receiver.responses = [(200, ""), (200, json.dumps({"text": "hi Alice"}))]
    posted = fake.post_message("general", ALICE, "hello")
    fake.wait_for(lambda: Receiver.requests)
    path, headers, body, valid = Receiver.requests[0]
    assert (path, valid, headers["Content-Type"]) == ("/slack/events", True, "application/json")
    assert json.loads(body)["event"]["ts"] == posted["ts"]
    ack = fake.slash_command("/opg-incident", "status", ALICE, "general")
    assert (ack.status, ack.payload) == (200, {"text": "hi Alice"})
    path, headers, body, valid = Receiver.requests[1]
    assert path == "/slack/commands" and valid and parse_qs(body.decode())["text"] == ["status"]
    web = WebClient(token=fake.bot_token, base_url=fake.api_url)
    headline = web.chat_postMessage(channel="general", text="incident", blocks=BUTTONS)
    fake.click_button(("general", headline["ts"]), "create_channel", BOB)
    path, headers, body, valid = fake.wait_for(
        lambda: [r for r in Receiver.requests if r[0] == "/slack/interactive"])[0]
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    assert valid and payload["actions"][0]["action_id"] == "create_channel"


def test_http_mode_retries_failed_and_slow_events(http_fake):
    fake = http_fake
    Receiver.responses = [(500, ""), ("slow", ""), (200, "")]
    envelope_id = fake.send_event({"type": "app_mention", "user": ALICE, "text": "hi"})
    fake.wait_for(lambda: fake.delivery(envelope_id).acked, timeout=5)
    retries = [(h.get("X-Slack-Retry-Num"), h.get("X-Slack-Retry-Reason"))
               for _, h, _, _ in Receiver.requests]
    assert retries == [(None, None), ("1", "http_error"), ("2", "http_timeout")]
    assert all(valid for *_, valid in Receiver.requests)
    fake.redeliver(envelope_id)
    fake.wait_for(lambda: len(Receiver.requests) == 4)
    assert Receiver.requests[3][1]["X-Slack-Retry-Num"] == "3"


def test_http_mode_passes_slackeventsapi_checks(http_fake):
    from flask import Flask
    from slackeventsapi import SlackEventAdapter
    from werkzeug.serving import make_server

    flask_app, seen = Flask("receiver"), []
    adapter = SlackEventAdapter("s3cret", "/slack/events", flask_app)
    adapter.on("message", seen.append)
    server = make_server("127.0.0.1", 0, flask_app, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        http_fake.app_url = f"http://127.0.0.1:{server.server_port}"
        assert http_fake.verify_url().payload == {"challenge": "fake-challenge-123"}
        http_fake.post_message("general", BOB, "over HTTP")
        assert http_fake.wait_for(lambda: seen)[0]["event"]["text"] == "over HTTP"
    finally:
        server.shutdown()
